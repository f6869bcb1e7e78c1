"""The folder job: PULSE's output layout, per-image failures, resume, interruption, report and NIQE."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from PIL import Image

from pulse_cli.backends import DEFAULT
from pulse_cli.backends.builtin import DygraphBackend
from pulse_cli.graphs.generator import Capabilities, Generator, LatentLayout
from pulse_cli.graphs.op import library
from pulse_cli.models.stylegan import FFHQ, StyleGAN
from pulse_cli.options import SearchOptions
from pulse_cli.upsample import FaceOptions, FolderLock, Listener, Shard, UpsampleError, upsample_folder
from pulse_cli.upsample.merge import merge_shard_reports
from pulse_cli.upsample.write import SHEET_COLUMNS

TOY_LATENT = 48  # a 4x4 RGB image


class ToySynthesis(paddle.nn.Layer):
    """A generator's synthesis in miniature: the latent as a 4×4 RGB image, enlarged, over a fixed
    texture. ``poison`` turns the second image of every batch into NaN."""

    def __init__(self, resolution: int, poison: bool = False) -> None:
        super().__init__()
        self.resolution = resolution
        self.poison = poison
        texture = np.random.default_rng(5).standard_normal((1, 3, resolution, resolution)).astype(np.float32)
        self.register_buffer("texture", paddle.to_tensor(texture))

    def forward(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        blocks = latent_in[:, 0].reshape([-1, 3, 4, 4])
        enlarged = F.interpolate(blocks, size=[self.resolution] * 2, mode="nearest")
        image = paddle.tanh(enlarged + 0.3 * self.texture)
        if self.poison:
            mask = np.where(np.arange(image.shape[0]) == 1, np.nan, 1.0).astype(np.float32)
            image = image * paddle.to_tensor(mask).reshape([-1, 1, 1, 1])
        return image


def toy_generator(resolution: int = 16, poison: bool = False, layout: str = "full") -> Generator:
    return Generator(
        ToySynthesis(resolution, poison), name="toy", resolution=resolution, num_layers=1,
        latent_dim=TOY_LATENT, latent_radius=math.sqrt(TOY_LATENT), source="test toy",
        latent_layout=LatentLayout(default=layout),
    )


def write_faces(folder: Path, names: list[str], side: int = 8, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        pixels = (rng.random((side, side, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / name)
    return folder


def read_report(folder: Path, name: str = "report.json") -> dict:
    return json.loads((folder / name).read_text())


def by_name(report: dict) -> dict[str, dict]:
    return {record["name"]: record for record in report["images"]}


OPTIONS = SearchOptions(steps=3, seed=7, loss_str="100*L2", eps=1e-4)


def test_outputs_are_named_and_laid_out_as_pulse_names_them(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png"])
    out = tmp_path / "out"
    options = OPTIONS.with_(duplicates=2, save_intermediate=True, batch_size=2)
    report = upsample_folder(toy_generator(), inputs, out, options, save_latent=True)

    names = ["a_1", "a_2", "b_1", "b_2"]
    assert sorted(p.name for p in out.glob("*.png")) == [*(f"{n}.png" for n in names), "contact_sheet.png"]
    for name in names:
        assert Image.open(out / f"{name}.png").size == (16, 16)
        for kind, side in (("HR", 16), ("LR", 8)):
            steps = sorted(p.name for p in (out / name / kind).iterdir())
            assert steps == [f"{name}_{j:02d}.png" for j in range(3)]
            assert Image.open(out / name / kind / steps[0]).size == (side, side)
        assert np.load(out / f"{name}.npz")["latent"].shape == (1, TOY_LATENT)
    written = read_report(out)
    records = by_name(written)
    assert set(records) == set(names) and report.summary()["ok"] == 4
    assert written["roles"] == {"gradient steps": "Paddle dygraph", "forward-only scoring": "Paddle dygraph"}
    record = records["a_2"]
    assert record["input"] == str(inputs / "a.png") and record["output"] == "a_2.png"
    assert record["model"] == "toy" and record["options"]["duplicates"] == 2
    assert record["steps_run"] == 3 and 0 <= record["best_step"] < 3
    assert record["l2"] > 0 and isinstance(record["eps_met"], bool) and record["seconds"] > 0
    assert record["latent"] == "a_2.npz" and record["error"] is None
    assert record["total"] == pytest.approx(100 * record["l2"]) and record["rescore"] is None
    assert (out / "a_1.png").read_bytes() != (out / "a_2.png").read_bytes()  # duplicates differ
    assert not list(out.rglob(".*.tmp"))


def test_contact_sheet_has_four_labelled_rows_and_one_column_per_output(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png", "c.png"])
    upsample_folder(toy_generator(), inputs, tmp_path / "out", OPTIONS)
    sheet = Image.open(tmp_path / "out" / "contact_sheet.png")
    cell, gap, title = 128, 4, 34  # the toy's 16 px outputs are shown at the 128 px minimum
    assert sheet.height == title + 4 * (cell + gap) + gap
    assert sheet.width > 3 * (cell + gap)
    assert read_report(tmp_path / "out")["contact_sheet"] == "contact_sheet.png"


def test_more_outputs_than_a_sheet_holds_are_paged_and_a_smaller_rerun_leaves_no_stale_page(tmp_path):
    names = [f"face{i:02d}.png" for i in range(SHEET_COLUMNS + 2)]
    inputs = write_faces(tmp_path / "in", names)
    out = tmp_path / "out"
    report = upsample_folder(toy_generator(), inputs, out, OPTIONS.with_(steps=1, batch_size=6))
    pages = [out / "contact_sheet_1.png", out / "contact_sheet_2.png"]
    assert report.contact_sheet_paths == pages and not (out / "contact_sheet.png").exists()
    widths = [Image.open(page).width for page in pages]
    cell, gap = 128, 4  # as the sheet shows the toy's 16 px outputs
    assert widths[0] - widths[1] == (SHEET_COLUMNS - 2) * (cell + gap)  # 16 columns, then 2
    assert read_report(out)["contact_sheets"] == ["contact_sheet_1.png", "contact_sheet_2.png"]

    for name in names[2:]:
        (inputs / name).unlink()
    again = upsample_folder(toy_generator(), inputs, out, OPTIONS.with_(steps=1), overwrite=True)
    assert again.contact_sheet_paths == [out / "contact_sheet.png"]
    assert sorted(p.name for p in out.glob("contact_sheet*.png")) == ["contact_sheet.png"]


def test_bad_inputs_are_recorded_one_line_each_and_the_batch_goes_on(tmp_path):
    inputs = write_faces(tmp_path / "in", ["good1.png", "good2.png"])
    (inputs / "zero.png").write_bytes(b"")
    (inputs / "cut.png").write_bytes((inputs / "good1.png").read_bytes()[:60])
    (inputs / "text.png").write_text("not pixels")
    Image.new("RGB", (8, 4)).save(inputs / "wide.png")
    Image.new("RGB", (6, 6)).save(inputs / "six.png")
    Image.new("RGB", (8, 8)).save(inputs / "good1.jpg")  # same stem as good1.png
    report = upsample_folder(toy_generator(), inputs, tmp_path / "out", OPTIONS.with_(batch_size=2))

    records = by_name(read_report(tmp_path / "out"))
    causes = {
        "zero": "empty file (0 bytes)",
        "cut": "truncated or corrupt",
        "text": "not an image in a supported format",
        "wide": "inputs must be square",
        "six": "a 6x6 input cannot be upsampled: a 16x16 model takes aligned square faces of 8/4/2 px",
        "good1": "clashes with good1.jpg's",
    }
    failed = {record["input"]: record for record in records.values() if record["status"] == "failed"}
    assert len(failed) == len(causes)
    for stem, cause in causes.items():
        path = str(inputs / f"{stem}.png")
        assert cause in failed[path]["error"] and failed[path]["error"].startswith(f"{path}: ")
        assert "\n" not in failed[path]["error"]
    assert records["good1.png"]["status"] == "failed" and records["zero.png"]["status"] == "failed"
    assert records["good1"]["input"] == str(inputs / "good1.jpg") and records["good1"]["status"] == "ok"
    assert records["good2"]["status"] == "ok" and (tmp_path / "out" / "good2.png").is_file()
    assert report.summary() == {**report.summary(), "ok": 2, "failed": 6}
    written = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert written == ["contact_sheet.png", "good1.png", "good2.png"]


def test_gif_and_tiff_inputs_are_upsampled_and_only_non_images_are_left_out(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png"])
    palette = Image.open(inputs / "a.png").convert("P")
    palette.save(inputs / "b.gif")
    palette.convert("RGB").save(inputs / "c.tif")
    (inputs / "notes.txt").write_text("not pixels")
    report = upsample_folder(toy_generator(), inputs, tmp_path / "out", OPTIONS)
    assert [(record.name, record.status) for record in report.images] == [(n, "ok") for n in "abc"]
    assert report.ignored == ["notes.txt"] and read_report(tmp_path / "out")["ignored"] == ["notes.txt"]


def test_rerun_skips_finished_outputs_keeps_their_records_and_overwrite_redoes_them(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png", "c.png"])
    out = tmp_path / "out"
    upsample_folder(toy_generator(), inputs, out, OPTIONS)
    first = by_name(read_report(out))
    (out / "b.png").unlink()

    class Counter(Listener):
        def __init__(self):
            self.searched = []

        def batch_started(self, names):
            self.searched.extend(names)

    counter = Counter()
    resumed = upsample_folder(toy_generator(), inputs, out, OPTIONS, listener=counter)
    assert counter.searched == ["b"]
    records = by_name(read_report(out))
    assert [records[n]["status"] for n in "abc"] == ["skipped", "ok", "skipped"]
    assert records["a"]["l2"] == first["a"]["l2"] and records["a"]["seed"] == first["a"]["seed"]
    assert resumed.summary()["skipped"] == 2 and not resumed.failed

    counter.searched.clear()
    upsample_folder(toy_generator(), inputs, out, OPTIONS, overwrite=True, listener=counter)
    assert counter.searched == ["a", "b", "c"]


def test_report_records_the_layout_searched_when_the_generators_default_was_used(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png"])
    generator = toy_generator(layout="tiled")  # not SearchOptions' or LatentLayout's own default
    report = upsample_folder(generator, inputs, tmp_path / "out", OPTIONS, save_latent=True)
    saved = read_report(tmp_path / "out")
    searched = str(np.load(tmp_path / "out" / "a.npz")["layout"])
    assert OPTIONS.latent_layout is None and searched == generator.latent_layout.default
    assert saved["options"]["latent_layout"] == searched == report.options["latent_layout"]
    assert by_name(saved)["a"]["options"]["latent_layout"] == searched
    # the toy generator declares no backend: the registry's default ran
    assert saved["options"]["backend"] == by_name(saved)["a"]["options"]["backend"] == DEFAULT


def test_seeded_outputs_do_not_depend_on_resume_or_sharding(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png", "c.png"])
    upsample_folder(toy_generator(), inputs, tmp_path / "all", OPTIONS)
    upsample_folder(toy_generator(), inputs, tmp_path / "half", OPTIONS, shard=Shard(1, 2))
    assert sorted(p.name for p in (tmp_path / "half").glob("?.png")) == ["b.png"]
    assert (tmp_path / "half" / "b.png").read_bytes() == (tmp_path / "all" / "b.png").read_bytes()
    assert by_name(read_report(tmp_path / "half", "report_shard1of2.json"))["b"]["status"] == "ok"


@pytest.mark.parametrize("batch_size", [2, 3])
def test_seeded_outputs_do_not_depend_on_batching_resume_or_sharding(dcgan_generator, tmp_path, batch_size):
    inputs = write_faces(tmp_path / "in", [f"{name}.png" for name in "abcde"])
    options = SearchOptions(steps=3, seed=5, batch_size=batch_size)

    def run(folder: str, options: SearchOptions = options, shard: Shard | None = None) -> None:
        upsample_folder(dcgan_generator, inputs, tmp_path / folder, options, shard=shard, contact_sheet=False)

    run("all")
    run("half", shard=Shard(1, 2))
    run("alone", options.with_(batch_size=1))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in "ae":
        (resumed / f"{name}.png").write_bytes((tmp_path / "all" / f"{name}.png").read_bytes())
    run("resumed")

    def outputs(folder: Path) -> dict[str, bytes]:
        return {path.stem: path.read_bytes() for path in folder.glob("?.png")}

    everything = outputs(tmp_path / "all")
    assert len(set(everything.values())) == 5  # each image its own start
    assert outputs(tmp_path / "half") == {name: everything[name] for name in "bd"}
    assert outputs(tmp_path / "alone") == everything
    assert outputs(resumed) == everything
    seeds = {record["name"]: record["seed"] for record in read_report(tmp_path / "all")["images"]}
    assert seeds == {record["name"]: record["seed"] for record in read_report(tmp_path / "alone")["images"]}


def test_a_rerun_with_other_options_or_inputs_says_what_differs_unless_told_to_resume_or_overwrite(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png"])
    out = tmp_path / "out"
    upsample_folder(toy_generator(), inputs, out, OPTIONS)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    with pytest.raises(UpsampleError) as error:
        upsample_folder(toy_generator(), inputs, out, OPTIONS.with_(steps=4, eps=1e-3))
    assert "2 of the outputs in" in str(error.value)
    assert "eps 0.0001 then, 0.001 now; steps 3 then, 4 now" in str(error.value)
    assert "--overwrite remakes them, --resume keeps them" in str(error.value)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # nothing touched

    # options that do not change an output are not compared
    same = upsample_folder(toy_generator(), inputs, out, OPTIONS.with_(batch_size=2, save_intermediate=True))
    assert [record.status for record in same.images] == ["skipped", "skipped"]

    kept = upsample_folder(toy_generator(), inputs, out, OPTIONS.with_(steps=4), resume=True)
    assert [record.status for record in kept.images] == ["skipped", "skipped"]
    assert [record.options["steps"] for record in kept.images] == [3, 3]  # each record keeps its own
    remade = upsample_folder(toy_generator(), inputs, out, OPTIONS.with_(steps=4), overwrite=True)
    assert [(record.status, record.options["steps"]) for record in remade.images] == [("ok", 4), ("ok", 4)]

    write_faces(inputs, ["b.png"], seed=9)  # another face under the same name
    with pytest.raises(UpsampleError, match=r"^1 of the outputs .*\(input b\.png changed\)"):
        upsample_folder(toy_generator(), inputs, out, OPTIONS.with_(steps=4))
    with pytest.raises(UpsampleError, match="choose one"):
        upsample_folder(toy_generator(), inputs, out, OPTIONS, overwrite=True, resume=True)


def test_merged_shard_reports_hold_what_one_unsharded_run_records(tmp_path):
    inputs = write_faces(tmp_path / "in", [f"{name}.png" for name in "abcde"])
    out = tmp_path / "out"
    for k in (1, 0):
        upsample_folder(toy_generator(), inputs, out, OPTIONS, shard=Shard(k, 2))
    whole = upsample_folder(toy_generator(), inputs, tmp_path / "whole", OPTIONS)

    merged = merge_shard_reports(out)
    assert merged.report_path == out / "report.json"
    assert merged.contact_sheet_paths == [out / "contact_sheet.png"]
    report = read_report(out)
    assert report["shard"] is None and report["summary"] == read_report(tmp_path / "whole")["summary"]
    keys = ("name", "status", "seed", "l2", "output")
    expected = [[getattr(record, key) for key in keys] for record in whole.images]
    assert [[record[key] for key in keys] for record in report["images"]] == expected

    with FolderLock(out / ".pulse_shard1of2.lock"):  # a worker still running
        with pytest.raises(UpsampleError, match="in use by another run"):
            merge_shard_reports(out)
    (out / "report_shard1of2.json").unlink()
    with pytest.raises(UpsampleError, match="no report_shard1of2.json; has every worker run"):
        merge_shard_reports(out)
    upsample_folder(toy_generator(), inputs, out, OPTIONS, shard=Shard(0, 3))
    with pytest.raises(UpsampleError, match="reports of runs in 2, 3 shards"):
        merge_shard_reports(out)
    with pytest.raises(UpsampleError, match="holds no shard reports"):
        merge_shard_reports(tmp_path / "whole")


def test_report_is_on_disk_before_each_image_is_announced(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png"])
    out = tmp_path / "out"
    seen: list[list[str]] = []

    class Watcher(Listener):
        def image_finished(self, record):
            seen.append([r["name"] for r in read_report(out)["images"]])

    upsample_folder(toy_generator(), inputs, out, OPTIONS, listener=Watcher())
    assert seen == [["a"], ["a", "b"]]


def test_interrupt_keeps_finished_images_and_the_report_of_them(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png", "c.png"])
    out = tmp_path / "out"

    class CtrlC(Listener):
        finished = 0

        def image_finished(self, record):
            self.finished += 1

        def step(self, report):
            if self.finished:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upsample_folder(toy_generator(), inputs, out, OPTIONS, listener=CtrlC())
    report = read_report(out)
    assert report["summary"]["interrupted"] is True
    assert [(r["name"], r["status"]) for r in report["images"]] == [("a", "ok")]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "report.json"]

    resumed = upsample_folder(toy_generator(), inputs, out, OPTIONS)
    assert [(r.name, r.status) for r in resumed.images] == [("a", "skipped"), ("b", "ok"), ("c", "ok")]


def test_nan_in_the_search_fails_that_image_not_its_batch(tmp_path):
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png"])
    out = tmp_path / "out"
    report = upsample_folder(toy_generator(poison=True), inputs, out, OPTIONS.with_(batch_size=2))
    records = by_name(read_report(out))
    assert records["a"]["status"] == "ok" and (out / "a.png").is_file()
    assert records["b"]["status"] == "failed" and "the loss became nan" in records["b"]["error"]
    assert not (out / "b.png").exists()
    assert [r.name for r in report.failed] == ["b"]


def test_job_level_mistakes_are_clear_errors(tmp_path):
    generator = toy_generator()
    with pytest.raises(UpsampleError, match="input folder .*missing does not exist"):
        upsample_folder(generator, tmp_path / "missing", tmp_path / "out", OPTIONS)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"x")
    with pytest.raises(UpsampleError, match="has no files to upsample"):
        upsample_folder(generator, tmp_path / "empty", tmp_path / "out", OPTIONS)
    inputs = write_faces(tmp_path / "in", ["a.png"])
    with pytest.raises(UpsampleError, match="must differ from the input folder"):
        upsample_folder(generator, inputs, inputs, OPTIONS)
    with pytest.raises(UpsampleError, match="bad loss string"):
        upsample_folder(generator, inputs, tmp_path / "out", OPTIONS.with_(loss_str="100*L3"))
    with pytest.raises(UpsampleError, match="unknown optimizer 'lbfgs'"):
        upsample_folder(generator, inputs, tmp_path / "out", OPTIONS.with_(opt_name="lbfgs"))
    assert not (tmp_path / "out").exists()


def test_niqe_scores_outputs_of_192_px_and_more_only(tmp_path):
    big = write_faces(tmp_path / "big", ["a.png"], side=64)
    report = upsample_folder(
        toy_generator(256), big, tmp_path / "out256", OPTIONS.with_(steps=1), niqe=True,
        faces=FaceOptions(input_size=64),  # searched at 64 px, not downscaled to the default 16
    )
    assert math.isfinite(report.images[0].niqe)
    small_inputs = write_faces(tmp_path / "small", ["a.png"])
    small = upsample_folder(toy_generator(), small_inputs, tmp_path / "small_out", OPTIONS, niqe=True)
    assert small.images[0].niqe is None


def test_stylegan_small_upsamples_through_the_library(reference_dir, tmp_path):
    config = json.loads((reference_dir / "stylegan_small.json").read_text())["config"]
    generator = StyleGAN.from_files(
        reference_dir / "stylegan_small.pt", gaussian_fit=reference_dir / "gaussian_fit.pt", **config
    )
    inputs = write_faces(tmp_path / "in", ["face.png"], side=16)
    report = upsample_folder(generator, inputs, tmp_path / "out", SearchOptions(steps=2, seed=1))
    record = by_name(read_report(tmp_path / "out"))["face"]
    assert record["status"] == "ok" and record["model"] == "stylegan" and record["steps_run"] == 2
    assert Image.open(tmp_path / "out" / "face.png").size == (128, 128)
    assert report.model["resolution"] == 128


def test_onnx_backend_report_holds_onnxruntime_scores_and_latents_that_remake_each_output(tmp_path):
    generator = FFHQ.build(resolution=32, fmap_base=64, fmap_max=16, seed=3)
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png"])
    out = tmp_path / "out"
    options = SearchOptions(steps=3, seed=2, batch_size=2, backend="onnx")
    upsample_folder(generator, inputs, out, options, save_latent=True)

    report = read_report(out)
    assert [record["status"] for record in report["images"]] == ["ok", "ok"], report["images"]
    onnxruntime = report["roles"]["forward-only scoring"]
    assert report["roles"]["gradient steps"] == "Paddle dygraph" and onnxruntime.startswith("onnxruntime (")
    for name, record in by_name(report).items():
        rescore = record["rescore"]
        assert rescore["runtime"] == onnxruntime
        assert rescore["total"] == pytest.approx(record["total"], rel=1e-4)
        assert rescore["l2"] == pytest.approx(record["l2"], rel=1e-4)
        saved = np.load(out / record["latent"])
        assert record["latent"] == f"{name}.npz"
        assert sorted(saved.files) == sorted(["latent", "layout", *(f"noise_{k}" for k in range(8))])
        with paddle.no_grad():
            latent = generator.map_latent(paddle.to_tensor(saved["latent"][None]))
            image = generator(latent, [paddle.to_tensor(saved[f"noise_{k}"][None]) for k in range(8)])
        written = np.asarray(Image.open(out / record["output"]), np.float32) / 255
        remade = np.clip(image.numpy()[0].transpose(1, 2, 0), 0, 1)
        np.testing.assert_allclose(remade, written, atol=0.5 / 255 + 1e-5)  # 8-bit rounding


class Notes(Listener):
    """A listener that keeps the notes a job makes."""

    def __init__(self):
        self.notes = []

    def note(self, text):
        self.notes.append(text)


def test_a_job_records_the_backend_it_ran_on_and_notes_a_first_use_cost_once(tmp_path, monkeypatch):
    monkeypatch.setattr(DygraphBackend, "first_use", "compiles on first use", raising=False)

    listener = Notes()
    inputs = write_faces(tmp_path / "in", ["a.png", "b.png"])
    options = OPTIONS.with_(batch_size=1)
    report = upsample_folder(toy_generator(), inputs, tmp_path / "out", options, listener=listener)
    assert report.options["backend"] == DEFAULT  # the toy declares no default backend
    assert listener.notes == [f"backend {DEFAULT}: compiles on first use"]


def test_a_job_notes_the_compiled_ops_first_build_for_a_generator_that_runs_them(tmp_path, monkeypatch):
    monkeypatch.setattr(library, "build_pending", lambda: True)

    generator = toy_generator()
    inputs = write_faces(tmp_path / "in", ["a.png"])
    for compiled_ops, expected in ((False, []), (True, [f"compiled ops: {library.FIRST_BUILD}"])):
        listener = Notes()
        generator.capabilities = Capabilities(compiled_ops=compiled_ops)
        upsample_folder(generator, inputs, tmp_path / f"out{compiled_ops}", OPTIONS, listener=listener)
        assert listener.notes == expected
