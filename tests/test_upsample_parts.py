"""The parts of an upsampling job, each on its own: planning (names, clashes, resume, shard) and
loading inputs into batches, without a generator or a search."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pulse_cli.options import SearchOptions
from pulse_cli.upsample.folder import FolderLock
from pulse_cli.upsample.inputs import FaceOptions, InputReader
from pulse_cli.upsample.plan import Item, Shard, UpsampleError, make_plan
from pulse_cli.upsample.run import load_batches


def write_image(path: Path, side: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(path)
    return path


def test_plan_names_outputs_refuses_clashes_and_sets_aside_existing_outputs(tmp_path):
    for name in ("a.png", "a.jpg", "b.png", "c.png"):
        write_image(tmp_path / "in" / name, 8)
    write_image(tmp_path / "out" / "b_2.png", 64)  # made by an earlier run
    plan = make_plan(tmp_path / "in", tmp_path / "out", SearchOptions(duplicates=2))
    assert [item.name for item in plan.todo] == ["a_1", "a_2", "b_1", "c_1", "c_2"]
    assert [item.name for item in plan.done] == ["b_2"]
    assert [(path.name, "clashes" in cause) for path, cause in plan.refused] == [("a.png", True)]
    assert plan.report_path == tmp_path / "out" / "report.json"


def test_a_sharded_plan_takes_its_slice_and_names_its_report(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        write_image(tmp_path / "in" / name, 8)
    plan = make_plan(tmp_path / "in", tmp_path / "out", SearchOptions(), shard=Shard(1, 2))
    assert [item.name for item in plan.todo] == ["b"]
    assert plan.report_path.name == "report_shard1of2.json"


def test_output_name_clashes_are_planned_over_every_input_before_sharding(tmp_path):
    for name in ("a.jpg", "a.png", "b.png"):
        write_image(tmp_path / "in" / name, 8)
    plans = [make_plan(tmp_path / "in", tmp_path / "out", SearchOptions(), shard=Shard(k, 2)) for k in (0, 1)]
    todo = [(item.name, item.path.name) for plan in plans for item in plan.todo]
    assert sorted(todo) == [("a", "a.jpg"), ("b", "b.png")]  # one input per output name
    assert plans[0].refused == []
    assert [(path.name, "a.jpg" in cause) for path, cause in plans[1].refused] == [("a.png", True)]


def test_a_face_name_clashing_with_another_shards_input_is_refused_as_in_an_unsharded_plan(
    detector, reference_dir, tmp_path
):
    write_image(tmp_path / "in" / "astronaut_512_1.png", 16)  # the photo's face 1 is named so
    shutil.copy(reference_dir / "images" / "astronaut_512.png", tmp_path / "in")
    reader = InputReader(64, FaceOptions(), detector)
    whole = make_plan(tmp_path / "in", tmp_path / "out", SearchOptions(), reader=reader)
    assert [(path.name, "clashes with astronaut_512.png's" in cause) for path, cause in whole.refused] == [
        ("astronaut_512_1.png", True)
    ]
    shards = [make_plan(tmp_path / "in", tmp_path / "out", SearchOptions(), shard=Shard(k, 2), reader=reader)
              for k in (0, 1)]  # fmt: skip
    assert [plan.todo for plan in shards] == [whole.todo, []]  # the photo's faces, in shard 0
    assert [plan.refused for plan in shards] == [[], whole.refused]


def test_batches_hold_one_input_size_and_an_unreadable_input_is_refused_once(tmp_path):
    paths = [write_image(tmp_path / f"{name}.png", side) for name, side in (("a", 8), ("b", 8), ("c", 16))]
    broken = tmp_path / "d.png"
    broken.write_bytes(b"not an image")
    items = [Item(p.stem, p) for p in paths] + [Item("d_1", broken), Item("d_2", broken)]
    refused: list[str] = []
    batches = list(load_batches(items, 64, 4, lambda path, error: refused.append(path.name)))
    assert [([item.name for item in batch], refs.shape) for batch, refs in batches] == [
        (["a", "b"], (2, 3, 8, 8)),
        (["c"], (1, 3, 16, 16)),
    ]
    assert refused == ["d.png"]


def test_a_held_folder_lock_refuses_a_second_taker_naming_the_holder(tmp_path):
    path = tmp_path / ".pulse.lock"
    with FolderLock(path):
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(UpsampleError) as error:
            FolderLock(path).acquire()  # a second open file: flock refuses it as it would another process
    message = str(error.value)
    assert f"output folder {tmp_path} is in use by another run" in message
    assert f"pid {os.getpid()} on {socket.gethostname()}, started {holder['started']}" in message
    assert not path.exists()  # released: the file is gone


def test_a_stale_folder_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    path = tmp_path / ".pulse.lock"
    stale = {"pid": int(dead.stdout), "host": socket.gethostname(), "started": "2020-01-01T00:00:00+00:00"}
    path.write_text(json.dumps(stale))  # what a killed run leaves: the file, no lock on it
    lock = FolderLock(path)
    lock.acquire()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not path.exists()
