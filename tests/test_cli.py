"""The ``pulse`` command line: exit codes, one-line errors, the JSON summary, plugins and models."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import paddle
import pytest
import typer
from file_modes import run_obeying_file_modes
from PIL import Image
from typer.testing import CliRunner

from pulse_cli.backends import DEFAULT
from pulse_cli.cli import app
from pulse_cli.errors import INTERRUPTED_MESSAGE
from pulse_cli.faces.sizes import searched_sizes
from pulse_cli.images import valid_sides
from pulse_cli.models.mobile_stylegan import DEFAULT_BACKEND, DEFAULT_LAYOUT
from pulse_cli.models.registry import DEFAULT_MODEL, get_spec
from pulse_cli.upsample import FolderLock
from pulse_cli.weights import read_weights

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
DCGAN = ["--model", "dcgan-digiface"]  # small and fast; the default is the 1024 px MobileStyleGAN
FAST = [*DCGAN, "--steps", "2", "--seed", "3"]


def write_faces(folder: Path, sides: dict[str, int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name, side in sides.items():
        Image.fromarray((rng.random((side, side, 3)) * 255).astype(np.uint8)).save(folder / name)
    return folder


def invoke(*args: str):
    return runner.invoke(app, [str(arg) for arg in args])


def assert_one_line_error(result, *fragments: str, only: bool = True) -> None:
    """Each of ``fragments`` is on an ``error:`` line of stderr, with no traceback; with ``only``,
    stderr holds nothing but error lines (no progress: nothing was attempted)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert "Traceback" not in result.stdout + result.stderr
    assert errors and (not only or errors == lines), result.stderr
    for fragment in fragments:
        assert any(fragment in line for line in errors), result.stderr


def test_upsample_writes_outputs_report_and_sheet_and_exits_0(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16, "b.png": 8, "c.png": 32})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a.png", "b.png", "c.png", "contact_sheet.png", "report.json"]
    assert all(Image.open(out / f"{n}.png").size == (64, 64) for n in "abc")
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["name"] == "dcgan-digiface" and report["summary"]["ok"] == 3
    assert "3 upsampled" in result.stdout
    roles = "backend dygraph: gradient steps: Paddle dygraph; forward-only scoring: Paddle dygraph"
    assert roles in result.stdout.splitlines()


def test_a_failed_image_gets_one_error_line_and_exit_1(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"good.png": 16, "odd.png": 12})
    (inputs / "empty.jpg").write_bytes(b"")
    result = invoke("upsample", inputs, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 1
    odd, empty = f"{inputs / 'odd.png'}: a 12x12 input", f"{inputs / 'empty.jpg'}: empty file"
    assert_one_line_error(result, odd, empty, only=False)
    assert (tmp_path / "out" / "good.png").is_file()


def test_json_prints_one_machine_readable_summary(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16, "b.png": 16})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", *FAST, "--json", "--duplicates", "2")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["summary"]["ok"] == 4 and summary["report"] == str(tmp_path / "out" / "report.json")
    assert [image["name"] for image in summary["images"]] == ["a_1", "a_2", "b_1", "b_2"]
    assert summary["options"]["steps"] == 2 and summary["options"]["duplicates"] == 2


def test_onnx_backend_json_says_what_ran_where_and_holds_the_onnxruntime_scores(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", *FAST, "--backend", "onnx", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["roles"]["gradient steps"] == "Paddle dygraph"
    assert summary["roles"]["forward-only scoring"].startswith("onnxruntime (")
    image = summary["images"][0]
    assert image["rescore"]["runtime"] == summary["roles"]["forward-only scoring"]
    # onnxruntime scores the latent: the generator's image, before the faithful strategy's consistency
    assert image["rescore"]["l2"] == pytest.approx(image["search_l2"], rel=1e-4)
    assert image["rescore"]["total"] == pytest.approx(image["total"], rel=1e-4)


def test_the_progress_line_gives_the_consistent_l2_and_the_generators(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "report.json").read_text())["images"][0]
    line = next(line for line in result.output.splitlines() if line.startswith("a: L2 "))
    shown, searched = re.match(r"a: L2 (\S+) \(eps (?:not )?met, (\S+) before consistency\)", line).groups()
    assert float(shown) == pytest.approx(record["l2"], rel=0.06, abs=5e-5)
    assert float(searched) == pytest.approx(record["search_l2"], rel=0.06, abs=5e-5)


def test_search_flags_map_onto_search_options(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    result = invoke(
        "upsample", inputs, "-o", tmp_path / "out", *DCGAN, "--json", "--steps", "3", "--eps", "0.01",
        "--seed", "5",
        "--loss-str", "10*L2+1*L1", "--noise-type", "fixed", "--num-trainable-noise-layers", "2",
        "--tile-latent", "--bad-noise-layers", "1.2", "--opt-name", "sgdm", "--learning-rate", "0.1",
        "--lr-schedule", "linear1cycle", "--batch-size", "2", "--starts", "2", "--early-stop",
        "--save-intermediate", "--save-latent",
    )
    assert result.exit_code == 0, result.output
    options = json.loads(result.stdout)["options"]
    assert options == {
        **options, "steps": 3, "eps": 0.01, "seed": 5, "loss_str": "10*L2+1*L1", "noise_type": "fixed",
        "num_trainable_noise_layers": 2, "tile_latent": True, "bad_noise_layers": "1.2", "opt_name": "sgdm",
        "learning_rate": 0.1, "lr_schedule": "linear1cycle", "batch_size": 2, "starts": 2, "early_stop": True,
        "save_intermediate": True, "backend": "dygraph",
    }
    assert (tmp_path / "out" / "a.npz").is_file() and (tmp_path / "out" / "a" / "HR").is_dir()


def test_shard_flag_takes_a_disjoint_slice(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {f"{n}.png": 8 for n in "abcde"})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", *FAST, "--shard", "1/2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("?.png")) == ["b.png", "d.png"]
    assert (tmp_path / "out" / "report_shard1of2.json").is_file()


def test_report_merge_writes_one_report_from_the_shards_reports(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {f"{n}.png": 8 for n in "abc"})
    for shard in ("0/2", "1/2"):
        assert invoke("upsample", inputs, "-o", tmp_path / "out", *FAST, "--shard", shard).exit_code == 0
    result = invoke("report", "merge", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "3 upsampled" in result.stdout and f"report: {tmp_path / 'out' / 'report.json'}" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [record["name"] for record in report["images"]] == ["a", "b", "c"]
    result = invoke("report", "merge", inputs)
    assert result.exit_code == 2
    assert_one_line_error(result, f"{inputs} holds no shard reports")


def test_ctrl_c_keeps_finished_images_and_exits_130(dcgan_cache, tmp_path, monkeypatch):
    import pulse_cli.upsample.run

    real_search, calls = pulse_cli.upsample.run.run_search, []

    def interrupted_second_search(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_search(*args, **kwargs)

    monkeypatch.setattr(pulse_cli.upsample.run, "run_search", interrupted_second_search)
    inputs = write_faces(tmp_path / "in", {"a.png": 16, "b.png": 16, "c.png": 16})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 130
    assert_one_line_error(result, INTERRUPTED_MESSAGE, only=False)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["summary"]["interrupted"] and [r["name"] for r in report["images"]] == ["a"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "report.json"]


def _wait_until_paddle_loads(process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Return once ``process`` has mapped one of Paddle's shared libraries: it is importing Paddle."""
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if "/paddle/" in maps.read_text():
                return
        except OSError:
            pass  # not started yet
        time.sleep(0.002)
    pytest.fail("the pulse process never started importing Paddle")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see Paddle load")
def test_ctrl_c_while_paddle_imports_exits_130_with_the_interrupt_line(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    pulse = Path(sys.executable).parent / "pulse"
    process = subprocess.Popen(
        [str(pulse), "upsample", str(inputs), "-o", str(tmp_path / "out"), *FAST],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_until_paddle_loads(process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == [f"error: {INTERRUPTED_MESSAGE}"], stderr


def test_ctrl_c_while_the_model_loads_exits_130_with_the_interrupt_line(dcgan_cache, tmp_path, monkeypatch):
    import pulse_cli.cli.common

    def interrupted_load(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pulse_cli.cli.common, "load_generator", interrupted_load)
    result = invoke("upsample", write_faces(tmp_path / "in", {"a.png": 16}), "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 130
    assert_one_line_error(result, INTERRUPTED_MESSAGE)


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--steps", "0"], ["steps must be at least 1"]),
        (["--eps", "nan"], ["eps must be a finite number of at least 0, got nan"]),
        (["--eps", "inf"], ["eps must be a finite number of at least 0, got inf"]),
        (["--learning-rate", "nan"], ["learning_rate must be a finite number above 0, got nan"]),
        (["--learning-rate", "inf"], ["learning_rate must be a finite number above 0, got inf"]),
        (["--learning-rate", "-0.4"], ["learning_rate must be a finite number above 0, got -0.4"]),
        (["--seed", "-1"], ["seed must be at least 0"]),
        (["--num-trainable-noise-layers", "-1"], ["num_trainable_noise_layers must be at least 0"]),
        (["--starts", "0"], ["starts must be at least 1"]),
        (["--shard", "2/2"], ["shard 2/2: need 0 <= K < N"]),
        (["--shard", "half"], ["expected K/N"]),
        (["--loss-str", "100*L3"], ["bad loss string '100*L3'"]),
        (["--opt-name", "lbfgs"], ["unknown optimizer 'lbfgs'"]),
        (["--model", "nope"], ["unknown generator 'nope'", "dcgan-digiface", "mobile-stylegan-ffhq"]),
        (["--tile-latent", "--latent-layout", "full"], ["--tile-latent is the tiled layout"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(dcgan_cache, tmp_path, args, fragments):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", *args)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, *fragments)


def test_missing_or_empty_input_folder_exits_2(dcgan_cache, tmp_path):
    result = invoke("upsample", tmp_path / "nowhere", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert_one_line_error(result, f"input folder {tmp_path / 'nowhere'} does not exist")
    (tmp_path / "empty").mkdir()
    result = invoke("upsample", tmp_path / "empty", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert_one_line_error(result, "has no files to upsample")


def test_an_output_folder_that_cannot_be_made_exits_2_before_any_search(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    (tmp_path / "file").write_text("a regular file")
    under_a_file = tmp_path / "file" / "out"
    result = invoke("upsample", inputs, "-o", under_a_file)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, f"output folder {under_a_file} cannot be made: not a directory")
    result = invoke("upsample", inputs, "-o", tmp_path / "file")
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, f"output folder {tmp_path / 'file'} is a file, not a folder")


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_read_only_output_folder_or_parent_exits_2_before_any_search(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    locked = tmp_path / "locked"
    (locked / "out").mkdir(parents=True)
    locked.chmod(0o555)
    (locked / "out").chmod(0o555)
    try:
        for output, cause in [(locked / "out", "is not writable"), (locked / "new", "cannot be made")]:
            child = run_obeying_file_modes(  # root too: its file-mode override is dropped
                [sys.executable, "-m", "pulse_cli", "upsample", str(inputs), "-o", str(output), *FAST]
            )
            assert child.returncode == 2, child.stderr
            errors = [line for line in child.stderr.splitlines() if line.startswith("error: ")]
            assert errors == [f"error: output folder {output} {cause}: permission denied"], child.stderr
            assert "Traceback" not in child.stderr
    finally:
        (locked / "out").chmod(0o755)
        locked.chmod(0o755)


def test_a_second_run_into_a_locked_output_folder_names_the_first_and_exits_2(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(out / ".pulse.lock"):
        started = json.loads((out / ".pulse.lock").read_text())["started"]
        result = invoke("upsample", inputs, "-o", out, *FAST)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, f"output folder {out} is in use by another run (pid {os.getpid()} on "
                          f"{socket.gethostname()}, started {started}")  # fmt: skip
    assert result.stderr.startswith("error: ")  # the one line, no empty line of a progress bar before it
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written, the first run's lock gone
    result = invoke("upsample", inputs, "-o", out, *FAST)
    assert result.exit_code == 0, result.output


def test_a_rerun_with_other_options_exits_2_naming_them_and_resume_keeps_old_images(dcgan_cache, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    out = tmp_path / "out"
    assert invoke("upsample", inputs, "-o", out, *FAST).exit_code == 0
    first = (out / "a.png").read_bytes()
    result = invoke("upsample", inputs, "-o", out, *FAST, "--learning-rate", "0.2")
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, "learning_rate 0.4 then, 0.2 now", "--overwrite remakes them")
    result = invoke("upsample", inputs, "-o", out, *FAST, "--learning-rate", "0.2", "--resume")
    assert result.exit_code == 0 and "1 skipped" in result.stdout, result.output
    assert (out / "a.png").read_bytes() == first
    result = invoke("upsample", inputs, "-o", out, *FAST, "--overwrite", "--resume")
    assert result.exit_code == 2
    assert_one_line_error(result, "choose one")


def test_stylegan_ffhq_without_weights_says_which_files_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_CACHE_DIR", str(tmp_path / "cache"))
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", "--model", "stylegan-ffhq")
    assert result.exit_code == 2
    assert_one_line_error(
        result, "stylegan-ffhq needs its weights", "synthesis.pt", "gaussian_fit.pt", "mapping.pt",
        str(tmp_path / "cache" / "stylegan-ffhq"), "--weights",
    )


@pytest.mark.parametrize("given", ["absent", "empty", "other files", "synthesis alone"])
def test_stylegan_ffhq_weights_path_without_weights_names_the_path_and_what_it_holds(
    tmp_path, monkeypatch, given
):
    monkeypatch.setenv("PULSE_CACHE_DIR", str(tmp_path / "cache"))
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    weights = tmp_path / "weights"
    if given != "absent":
        weights.mkdir()
    if given == "other files":
        for name in ("notes.txt", "model.ckpt"):
            (weights / name).touch()
    if given == "synthesis alone":
        weights = weights / "my_synthesis.pt"
        weights.touch()
    args = ["upsample", inputs, "-o", tmp_path / "out", "--model", "stylegan-ffhq", "--weights", weights]
    result = invoke(*args)
    assert result.exit_code == 2
    expected = {
        "absent": [f"{weights}: no such file or folder"],
        "empty": [f"in {weights} (it is empty)"],
        "other files": [f"in {weights} (it holds model.ckpt, notes.txt)"],
        "synthesis alone": [
            f"found {weights} but no gaussian fit",
            f"{tmp_path / 'cache' / 'stylegan-ffhq'} (it does not exist) or {weights.parent} "
            "(it holds my_synthesis.pt)",
        ],
    }[given]
    assert_one_line_error(result, *expected)


@pytest.mark.skipif(paddle.is_compiled_with_cuda(), reason="this Paddle has CUDA")
@pytest.mark.parametrize("device", ["gpu", "gpu:1"])  # a numbered GPU, as Paddle names it
def test_gpu_device_without_cuda_is_a_clear_error(tmp_path, device):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", "--device", device)
    assert result.exit_code == 2
    assert_one_line_error(result, "--device gpu: this Paddle was built without CUDA")


def test_a_device_paddle_does_not_name_is_a_usage_error(tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    result = invoke("upsample", inputs, "-o", tmp_path / "out", "--device", "gpu:one")
    assert result.exit_code == 2 and "expected cpu, gpu or gpu:N" in result.output


def _run_pulse(args: list[str], site: Path, **env: str) -> subprocess.CompletedProcess:
    """``pulse ARGS`` in a fresh interpreter with ``site`` (plugin folders) on its path."""
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    environment = {**os.environ, "PYTHONPATH": path, **env}
    command = [sys.executable, "-m", "pulse_cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)


def test_static_backend_keeps_third_party_logging_off_the_terminal_unless_verbose(
    dcgan_cache, tmp_path, monkeypatch
):
    """Paddle's glog lines (oneDNN, the PIR executor) and its Python warnings: none on a plain
    run's stderr, all of them with ``pulse --verbose``."""
    monkeypatch.delenv("GLOG_minloglevel", raising=False)  # importing pulse_cli.cli here set it
    inputs = write_faces(tmp_path / "in", {"a.png": 16, "b.png": 16})
    run = ["upsample", str(inputs), "--backend", "static", *FAST, "--json"]
    quiet = _run_pulse([*run, "-o", str(tmp_path / "quiet")], tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.splitlines() == []
    verbose = _run_pulse(["--verbose", *run, "-o", str(tmp_path / "verbose")], tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert len(verbose.stderr.splitlines()) > 0


def test_example_plugin_loss_runs_end_to_end(dcgan_cache, tv_plugin_site, tmp_path):
    inputs = write_faces(tmp_path / "in", {"a.png": 16})
    loss = "100*L2+0.05*GEOCROSS+0.01*TV"
    args = ["upsample", str(inputs), "-o", str(tmp_path / "out"), *FAST, "--loss-str", loss, "--json"]
    result = _run_pulse(args, tv_plugin_site)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["options"]["loss_str"] == loss and summary["summary"]["ok"] == 1
    assert (tmp_path / "out" / "a.png").is_file()

    disabled = _run_pulse(args + ["--overwrite"], tv_plugin_site, PULSE_PLUGINS="")
    assert disabled.returncode == 2
    assert_one_line_error(disabled, "unknown term 'TV'")


def test_plugins_list_shows_group_distribution_and_load_errors(tv_plugin_site, tmp_path):
    broken = tmp_path / "broken-site"
    info = broken / "pulse_broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pulse-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[pulse_cli.optimizers]\nbroken = pulse_broken:make\n")
    (broken / "pulse_broken.py").write_text("raise ImportError('needs lbfgs')\n")
    site = Path(os.pathsep.join([str(tv_plugin_site), str(broken)]))
    result = _run_pulse(["plugins", "list"], site, COLUMNS="200")
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[2].strip(): line for line in result.stdout.splitlines() if line.count("│") >= 4}
    assert "losses" in rows["TV"] and "pulse-tv-loss" in rows["TV"] and "loaded" in rows["TV"]
    assert "optimizers" in rows["broken"] and "pulse-broken" in rows["broken"]
    assert "ImportError: needs lbfgs" in rows["broken"]
    assert "pulse-cli" in rows["GEOCROSS"] and "generators" in rows["dcgan-digiface"]


def test_models_list_and_info_describe_the_generators():
    listed = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert "mobile-stylegan-ffhq (default)" in listed.stdout and "dcgan-digiface" in listed.stdout
    info = invoke("models", "info", "stylegan-ffhq")
    assert info.exit_code == 0 and "1024x1024" in info.stdout and "16x16" in info.stdout
    unknown = invoke("models", "info", "nope")
    assert unknown.exit_code == 2
    assert_one_line_error(unknown, "unknown generator 'nope'")


@pytest.mark.parametrize(
    ("name", "layout", "backend"),
    [
        ("mobile-stylegan-ffhq", DEFAULT_LAYOUT, DEFAULT_BACKEND),
        ("stylegan-ffhq", "full", DEFAULT),  # PULSE: W+
    ],
)
def test_models_info_shows_the_default_latent_layout_backend_and_input_sizes(name, layout, backend):
    info = invoke("models", "info", name)  # stylegan-ffhq's weights are the user's: none needed here
    assert info.exit_code == 0, info.output
    resolution = get_spec(name).resolution
    sides = ", ".join(f"{side}x{side}" for side in valid_sides(resolution))
    searched = "/".join(str(side) for side in sorted(searched_sizes(resolution)))
    assert f"aligned square faces of {sides};" in info.stdout
    assert f"each searched at the largest of {searched} px its photo holds unless --input-size" in info.stdout
    assert "strategy faithful unless --strategy (latent layout full;" in info.stdout
    assert f"with --strategy pulse, latent layout {layout} unless --latent-layout" in info.stdout
    assert f"backend {backend} unless --backend" in info.stdout


def test_models_pull_makes_the_default_model_ready(dcgan_cache):
    result = invoke("models", "pull", "dcgan-digiface")
    assert result.exit_code == 0, result.output
    assert "dcgan-digiface is ready (64x64" in result.stdout


def test_models_convert_writes_pdparams_with_the_same_tensors(reference_dir, tmp_path):
    target = tmp_path / "small.pdparams"
    result = invoke("models", "convert", reference_dir / "stylegan_small_legacy.pt", "-o", target)
    assert result.exit_code == 0, result.output
    original, converted = read_weights(reference_dir / "stylegan_small.pt"), read_weights(target)
    assert original.keys() == converted.keys()
    assert all(np.array_equal(original[key], converted[key]) for key in original)
    bad = invoke("models", "convert", reference_dir / "stylegan_small.json", "-o", target)
    assert bad.exit_code == 2
    assert_one_line_error(bad, "stylegan_small.json: not a weights file")


def test_fit_gaussian_writes_a_fit_of_the_mapping_network(reference_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "fit.npz"
    result = invoke("fit-gaussian", reference_dir / "mapping.pt", "-o", target, "--samples", "256")
    assert result.exit_code == 0, result.output
    with np.load(target) as fit:
        assert fit["mean"].shape == fit["std"].shape == (512,)
        assert np.isfinite(fit["mean"]).all() and (fit["std"] > 0).all()


def _commands(group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """Every command registered on the app (Typer's click group), sub-commands of groups
    (``models list``) included."""
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, typer.core.TyperGroup):
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_the_help_test_sees_every_command():
    names = [" ".join(path) for path, _ in COMMANDS]
    assert {"upsample", "bench", "niqe", "export", "demo", "models list", "plugins list"} <= set(names)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_every_command_has_help_with_an_example(path, command):
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, path
    assert f"Example: pulse {' '.join(path)}" in result.stdout, path


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_help_texts_show_their_brackets(path, command):
    """Rich markup would eat ``[min–max]``: every bracketed text of a command's help and of its
    options' helps is shown as written."""
    texts = [command.help or "", *(param.help or "" for param in command.params if hasattr(param, "help"))]
    bracketed = [match.group(1) for text in texts for match in re.finditer(r"\\?(\[[^\]\n]*\])", text)]
    shown = " ".join(runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"}).stdout.split())
    for text in bracketed:
        assert " ".join(text.split()) in shown, (path, text)


def test_upsample_help_names_the_input_sides_the_default_model_takes():
    resolution = get_spec(DEFAULT_MODEL).resolution
    sides = valid_sides(resolution)
    shown = " ".join(runner.invoke(app, ["upsample", "--help"], env={"COLUMNS": "200"}).stdout.split())
    assert f"({min(sides)} to {max(sides)} px for the default {resolution} px model)" in shown


