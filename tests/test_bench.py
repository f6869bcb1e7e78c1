"""``pulse bench``: one row per backend with the figures it promises (never a speed assertion)."""

from __future__ import annotations

import json
import mmap
import resource

import numpy as np
import paddle
import pytest
from typer.testing import CliRunner

import pulse_cli.cli.bench  # noqa: F401  (registers the command)
from pulse_cli import allocator, threads
from pulse_cli.backends import DEFAULT, CompiledSynthesis, backend_names
from pulse_cli.bench import (
    NIQE_SIDE,
    SEARCH_STEPS,
    BenchConfig,
    BenchError,
    Timing,
    measure_backend,
    measure_niqe,
    niqe_test_image,
    run_bench,
)
from pulse_cli.cli.app import app
from pulse_cli.models.registry import build_generator
from pulse_cli.niqe import BACKENDS, VARIANTS, niqe


def _assert_timing(timing) -> None:
    assert 0 < timing.min <= timing.median <= timing.max


def test_every_backend_gets_a_row_measured_in_its_own_process():
    rows = run_bench(BenchConfig("dcgan-digiface", 64, batch=2, repeats=2), list(backend_names()))
    assert [row.backend for row in rows] == list(backend_names())
    for row in rows:
        _assert_timing(row.forward)
        assert row.peak_rss_mib > 50 and row.setup_seconds >= 0
        assert "weights: random" in row.notes
    for row in rows[:2]:
        _assert_timing(row.step)
        assert row.images_per_minute == pytest.approx(60 / (SEARCH_STEPS * row.step.median))
    onnx = rows[2]
    assert onnx.step is None and onnx.images_per_minute is None
    assert onnx.runs_on["forward-only scoring"].startswith("onnxruntime")
    assert onnx.runs_on["gradient steps"] == "Paddle dygraph"


def test_the_static_row_compiles_once_and_times_forward_and_steps_on_that_program(monkeypatch):
    compiled = []
    build = CompiledSynthesis.__init__

    def counted(self, *args, **kwargs):
        compiled.append(self)
        build(self, *args, **kwargs)

    monkeypatch.setattr(CompiledSynthesis, "__init__", counted)
    row = measure_backend(BenchConfig("dcgan-digiface", 64, repeats=1, warmup=1), "static")
    assert len(compiled) == 1
    assert row.step is not None and row.runs_on["gradient steps"] == row.runs_on["forward-only scoring"]
    assert row.setup_seconds > 0


def _hold_and_give_back(mib: int) -> None:
    """Make ``mib`` MiB resident on top of what the process holds, then unmap them: the process's
    peak stays. A mapping of its own, not malloc, whose freed memory a tuned allocator may keep."""
    chunk = b"\1" * 2**20
    with mmap.mmap(-1, mib * 2**20) as block:
        for i in range(mib):
            block[i * 2**20 : (i + 1) * 2**20] = chunk


def test_peak_memory_is_the_measurements_not_the_processs():
    _hold_and_give_back(700)
    lifetime = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = measure_backend(BenchConfig("dcgan-digiface", 64, repeats=1, warmup=0), "dygraph")
    assert row.peak_rss_scope == "measurement"
    assert row.rss_before_mib <= row.peak_rss_mib < lifetime - 500


def test_a_stylegan_runs_on_random_weights_without_any_file():
    row = measure_backend(BenchConfig("stylegan-ffhq", 16, repeats=1, warmup=0), "dygraph")
    assert row.step is not None and row.runs_on["gradient steps"] == "Paddle dygraph"


@pytest.mark.parametrize(
    ("config", "backends", "message"),
    [
        (BenchConfig("dcgan-digiface", 64), ["tpu"], "unknown backend 'tpu'"),
        (BenchConfig("dcgan-digiface", 48), ["dygraph"], "power of two"),
        (BenchConfig("dcgan-digiface", 64, repeats=0), ["dygraph"], "at least 1"),
        (BenchConfig("dcgan-digiface", 128), ["dygraph"], "makes 64 px images"),
        (BenchConfig("dcgan-digiface", 64, allocator="fast"), ["dygraph"], "unknown allocator mode 'fast'"),
        (BenchConfig("no-such-model", 64), ["dygraph"], "no random-weight twin"),
    ],
)
def test_a_benchmark_that_cannot_run_is_refused_in_one_line(config, backends, message):
    with pytest.raises(BenchError, match=message):
        run_bench(config, backends)


def test_bench_command_prints_json_rows():
    args = ["bench", "--backend", "onnx", "--model", "dcgan-digiface", "--repeats", "1", "--no-face"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["config"]["model"] == "dcgan-digiface" and data["config"]["resolution"] == 64
    assert [row["backend"] for row in data["rows"]] == ["onnx"]


def test_bench_command_prints_a_table_and_says_what_ran_where():
    env = {allocator.ENV_MODE: "default", "COLUMNS": "200"}  # wide enough for every column's title
    args = ["bench", "--backend", "dygraph", "--model", "dcgan-digiface", "--repeats", "1", "--no-face"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "forward ms/img" in result.output and "dygraph: gradient steps: Paddle dygraph" in result.output
    lines = result.output.splitlines()
    assert "device: cpu (Paddle and onnxruntime)" in lines
    assert f"malloc: {allocator.apply('default').description}" in lines  # PULSE_ALLOCATOR's mode
    assert any(line.startswith("threads: ") for line in lines)


def _threads_expected() -> int:
    """What a bench process started from here gets: the user's OMP_NUM_THREADS, else every core."""
    user = threads.user_setting()
    return int(user) if user is not None else threads.available_cores()


def test_allocator_both_measures_each_backend_with_default_then_tuned_malloc():
    arguments = ["bench", "--backend", "all", "--model", "dcgan-digiface", "--repeats", "1", "--warmup", "0"]
    arguments += ["--no-face"]
    result = CliRunner().invoke(app, [*arguments, "--allocator", "both", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["config"]["allocator"] == "both"
    rows = data["rows"]
    backends = list(backend_names())
    assert [(row["backend"], row["allocator"]) for row in rows] == [
        (backend, mode) for backend in backends for mode in ("default", "tuned")
    ]
    for row in rows:
        if row["allocator"] == "default":
            assert row["allocator_setting"] == allocator.apply("default").description
        else:  # tcmalloc where it is installed (the process is started with it), else mallopt
            assert row["allocator_setting"].startswith("tuned: ")
        assert row["threads"] == _threads_expected() and row["threads_setting"].startswith("threads: ")
        _assert_timing(Timing(**row["forward"]))


def test_paddle_and_onnxruntime_are_timed_on_the_device_asked_for():
    rows = run_bench(BenchConfig("dcgan-digiface", 64, repeats=1, device="cpu"), ["onnx"])
    assert rows[0].device == "cpu"
    assert rows[0].runs_on["forward-only scoring"] == "onnxruntime (CPUExecutionProvider)"


@pytest.mark.skipif(paddle.is_compiled_with_cuda(), reason="this Paddle has CUDA")
def test_a_gpu_this_paddle_cannot_use_is_refused_before_any_process_starts():
    with pytest.raises(BenchError, match="--device gpu: this Paddle was built without CUDA"):
        run_bench(BenchConfig("dcgan-digiface", 64, device="gpu:1"), ["onnx"])


def test_bench_command_reports_a_bad_backend_as_a_usage_error():
    """``--backend`` is a choice among the registry's backends (and ``all``), as for upsample."""
    result = CliRunner().invoke(app, ["bench", "--backend", "tpu"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "'tpu' is not one of 'dygraph', 'static', 'onnx', 'all'" in result.output


def test_a_backend_that_fails_gets_a_row_with_its_error(tmp_path):
    rows = run_bench(BenchConfig("dcgan-digiface", 64, weights=tmp_path / "missing.pdparams"), ["dygraph"])
    assert rows[0].forward is None and "missing.pdparams" in rows[0].error
    result = CliRunner().invoke(
        app, ["bench", "--backend", "dygraph", "--weights", str(tmp_path / "missing.pdparams")]
    )
    assert result.exit_code == 1 and "failed" in result.output


def test_niqe_is_timed_for_every_variant_and_backend():
    rows = measure_niqe(BenchConfig("dcgan-digiface", 64, repeats=2, warmup=1), side=192)
    assert [(row.variant, row.backend) for row in rows] == [(v, b) for v in VARIANTS for b in BACKENDS]
    for row in rows:
        assert row.error is None and row.setup_seconds > 0
        _assert_timing(row.seconds)


def test_the_niqe_test_image_is_fixed_by_the_seed_and_scores():
    image = niqe_test_image(192, seed=4)
    assert image.shape == (192, 192, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, niqe_test_image(192, seed=4))
    assert np.isfinite(niqe(image))


def test_bench_command_times_niqe_on_a_1024_image():
    args = ["bench", "--backend", "onnx", "--model", "dcgan-digiface", "--niqe", "--repeats", "1"]
    args += ["--warmup", "0", "--no-face"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["niqe"]["side"] == NIQE_SIDE == 1024
    assert [(row["variant"], row["backend"]) for row in data["niqe"]["rows"]] == [
        (v, b) for v in VARIANTS for b in BACKENDS
    ]
    assert all(row["seconds"]["median"] > 0 for row in data["niqe"]["rows"])


def test_mobile_stylegan_is_measured_at_1024_on_random_weights():
    row = measure_backend(BenchConfig("mobile-stylegan-ffhq", 1024, repeats=1, warmup=0), "dygraph")
    _assert_timing(row.forward)
    assert row.step is not None and "weights: random" in row.notes
    with pytest.raises(BenchError, match="makes 1024 px images"):
        run_bench(BenchConfig("mobile-stylegan-ffhq", 64), ["dygraph"])


def test_bench_command_times_one_face_of_the_demo_photo_end_to_end(mtcnn_cache):
    args = ["bench", "--backend", "dygraph", "--model", "dcgan-digiface", "--repeats", "1", "--warmup", "0"]
    result = CliRunner().invoke(app, [*args, "--face-steps", "2", "--json"])
    assert result.exit_code == 0, result.output
    face = json.loads(result.output.strip().splitlines()[-1])["face"]
    assert face["error"] is None and face["steps"] == 2
    assert face["backend"] == (build_generator("dcgan-digiface", resolution=64).default_backend or DEFAULT)
    assert 0 < face["search_seconds"] < face["seconds"]
    assert face["peak_rss_mib"] >= face["rss_before_mib"] > 0
