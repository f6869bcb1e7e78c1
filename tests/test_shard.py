"""Sharding: ``--shard K/N`` and ``paddle.distributed.launch`` split a folder into disjoint slices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pulse_cli
from pulse_cli.upsample import Shard, UpsampleError
from pulse_cli.upsample.merge import merge_shard_reports


def test_shard_parses_k_of_n_counted_from_zero():
    assert Shard.parse("0/4") == Shard(0, 4) and str(Shard.parse("3/4")) == "3/4"
    for text in ("4/4", "-1/2", "1/0", "1", "a/b", "1/2/3"):
        with pytest.raises(UpsampleError):
            Shard.parse(text)


def test_shard_comes_from_paddle_launch_environment():
    assert Shard.from_env({"PADDLE_TRAINER_ID": "1", "PADDLE_TRAINERS_NUM": "3"}) == Shard(1, 3)
    assert Shard.from_env({"PADDLE_TRAINER_ID": "0", "PADDLE_TRAINERS_NUM": "1"}) is None
    assert Shard.from_env({}) is None


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_are_disjoint_and_cover_every_input(count):
    items = [f"face_{i:02d}" for i in range(10)]
    slices = [Shard(index, count).select(items) for index in range(count)]
    assert sorted(sum(slices, [])) == items
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_two_launched_cpu_workers_upsample_each_image_once(dcgan_cache, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(4)
    names = [f"face_{i}" for i in range(5)]
    for name in names:
        Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).save(inputs / f"{name}.png")
    out = tmp_path / "out"
    script = Path(pulse_cli.__file__).parent / "__main__.py"
    command = [
        sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
        str(tmp_path / "logs"), str(script), "upsample", str(inputs), "-o", str(out),
        "--model", "dcgan-digiface", "--steps", "2", "--seed", "1", "--json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    logs = "\n".join(p.read_text(errors="replace") for p in sorted((tmp_path / "logs").glob("workerlog.*")))
    assert result.returncode == 0, result.stderr[-2000:] + logs[-4000:]

    reports = [json.loads((out / f"report_shard{k}of2.json").read_text()) for k in range(2)]
    assert [report["shard"] for report in reports] == ["0/2", "1/2"]
    done = [record["name"] for report in reports for record in report["images"]]
    assert sorted(done) == names  # every image, each exactly once
    assert all(record["status"] == "ok" for report in reports for record in report["images"])
    assert sorted(p.stem for p in out.glob("face_*.png")) == names
    merged = merge_shard_reports(out)
    assert [record.name for record in merged.images] == names and merged.summary()["ok"] == len(names)
