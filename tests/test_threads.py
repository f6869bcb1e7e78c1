"""oneDNN's thread count: Paddle's import leaves its OpenMP runtime at one thread, ``threads.apply``
gives it this process's cores (its share under paddle.distributed.launch), a count the user set in
OMP_NUM_THREADS stays, ``pulse`` applies it first, and results agree with one thread's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from ci import assert_fails_in_ci_and_skips_outside, skip_outside_ci

from pulse_cli import threads

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
needs_two_cores = pytest.mark.skipif(CORES < 2, reason="one core: one thread is all of them")

# The thread count Paddle's own OpenMP runtime (paddle/libs) gives a parallel region, read with ctypes.
READ_BACK = """
import ctypes, glob, os, paddle
runtime = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(paddle.__file__), "libs", "libiomp5*"))[0])
print(runtime.omp_get_max_threads())
"""


def _env(**settings: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != threads.ENV_THREADS}
    env = {key: value for key, value in env.items() if not key.startswith(("PADDLE_", "KMP_"))}
    env.update({key: value for key, value in settings.items() if value is not None})
    return env


def _stdout(code: str, cpus: set[int] | None = None, **settings: str | None) -> str:
    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(**settings),
        preexec_fn=pin if cpus else None,
        check=True,
    )
    return done.stdout


def _run(code: str, cpus: set[int] | None = None, **settings: str | None) -> list[str]:
    return _stdout(code, cpus, **settings).split()


def _applied(cpus: set[int] | None = None, **settings: str | None) -> tuple[int, bool, int]:
    """(threads.apply()'s count, whether pulse set it, the count read back from Paddle's runtime)."""
    code = "from pulse_cli import threads\nstate = threads.apply()\n"
    code += "print(state.threads, state.set_by_pulse)\n"
    count, by_pulse, read_back = _run(code + READ_BACK, cpus, **settings)
    return int(count), by_pulse == "True", int(read_back)


def require_openmp_runtime() -> None:
    """Skip where Paddle loads no OpenMP runtime (conftest has imported it); in CI fail instead:
    there it would be ``threads.openmp_runtimes`` missing Paddle's, which these tests would hide."""
    if not threads.openmp_runtimes():
        skip_outside_ci("this Paddle build loads no OpenMP runtime")


@pytest.fixture(scope="module")
def paddle_runtime_found() -> None:
    require_openmp_runtime()


def test_in_ci_no_openmp_runtime_found_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "openmp_runtimes", lambda: [])
    assert_fails_in_ci_and_skips_outside(monkeypatch, require_openmp_runtime, "loads no OpenMP runtime")


@needs_two_cores
def test_paddle_alone_runs_its_openmp_runtime_on_one_thread(paddle_runtime_found: None) -> None:
    assert _run(READ_BACK) == ["1"]  # what threads.apply is for


@needs_two_cores
def test_apply_gives_paddles_openmp_runtime_every_core_this_process_may_use(
    paddle_runtime_found: None,
) -> None:
    assert _applied() == (CORES, True, CORES)
    one_cpu = {min(os.sched_getaffinity(0))}
    assert _applied(cpus=one_cpu) == (1, True, 1)  # the affinity, not the machine's core count


@needs_two_cores
def test_threads_started_later_get_the_count_too(paddle_runtime_found: None) -> None:
    code = """
import threading
from pulse_cli import threads
threads.apply()
seen = []
worker = threading.Thread(target=lambda: seen.append(threads.openmp_threads()))
worker.start()
worker.join()
print(seen[0])
"""
    assert _run(code) == [str(CORES)]


BLOCKTIME = """
from pulse_cli import threads
threads.apply()
runtime = threads.openmp_runtimes()[0]
print(runtime.kmp_get_blocktime() if hasattr(runtime, "kmp_get_blocktime") else "none")
"""


def test_idle_openmp_workers_sleep_after_a_millisecond_unless_the_user_set_kmp_blocktime(
    paddle_runtime_found: None,
) -> None:
    if _run(BLOCKTIME) == ["none"]:
        pytest.skip("not Intel's or LLVM's OpenMP runtime")
    assert _run(BLOCKTIME) == [str(threads.BLOCKTIME_MS)] == ["1"]
    assert _run(BLOCKTIME, KMP_BLOCKTIME="50") == ["50"]


@pytest.mark.parametrize("user", ["1", "3"])
def test_omp_num_threads_set_by_the_user_is_left_in_force(paddle_runtime_found: None, user: str) -> None:
    assert _applied(OMP_NUM_THREADS=user) == (int(user), False, int(user))


def test_the_users_setting_is_found_after_paddle_was_imported(paddle_runtime_found: None) -> None:
    code = "import paddle\nfrom pulse_cli import threads\nprint(threads.user_setting())"
    assert _run(code) == ["None"]  # Paddle wrote OMP_NUM_THREADS=1; the user did not
    assert _run(code, OMP_NUM_THREADS="1") == ["1"]


def test_a_child_process_sees_omp_num_threads_as_the_user_left_it(paddle_runtime_found: None) -> None:
    code = """
import os, paddle
from pulse_cli import threads
print(os.environ["OMP_NUM_THREADS"], threads.user_environment(os.environ).get("OMP_NUM_THREADS"))
"""
    assert _run(code) == ["1", "None"]
    assert _run(code, OMP_NUM_THREADS="2") == ["2", "2"]


@pytest.mark.parametrize(
    ("cores", "environ", "share"),
    [
        (8, {}, 8),
        (8, {"PADDLE_LOCAL_SIZE": "2", "PADDLE_LOCAL_RANK": "1"}, 4),
        (5, {"PADDLE_LOCAL_SIZE": "2", "PADDLE_LOCAL_RANK": "0"}, 3),
        (5, {"PADDLE_LOCAL_SIZE": "2", "PADDLE_LOCAL_RANK": "1"}, 2),
        (2, {"PADDLE_LOCAL_SIZE": "4", "PADDLE_LOCAL_RANK": "3"}, 1),
        (6, {"PADDLE_TRAINERS_NUM": "3", "PADDLE_RANK_IN_NODE": "2"}, 2),  # the fleet launcher's names
    ],
)
def test_local_workers_of_a_distributed_launch_share_the_cores(
    cores: int, environ: dict[str, str], share: int
) -> None:
    assert threads.share_of_cores(cores, environ) == share


def test_the_shares_of_all_local_workers_add_up_to_the_cores() -> None:
    for cores in range(1, 9):
        for workers in range(1, cores + 1):
            ranks = [{"PADDLE_LOCAL_SIZE": str(workers), "PADDLE_LOCAL_RANK": str(r)} for r in range(workers)]
            shares = [threads.share_of_cores(cores, environ) for environ in ranks]
            assert sum(shares) == cores


@needs_two_cores
def test_a_distributed_worker_takes_its_share(paddle_runtime_found: None) -> None:
    share = threads.share_of_cores(CORES, {"PADDLE_LOCAL_SIZE": str(CORES), "PADDLE_LOCAL_RANK": "0"})
    assert _applied(PADDLE_LOCAL_SIZE=str(CORES), PADDLE_LOCAL_RANK="0") == (share, True, share)


# A stand-in for paddle.distributed.launch: imports Paddle (which writes OMP_NUM_THREADS=1), then
# starts a worker with a copy of its environment and the launcher's variables, as Paddle's does.
LAUNCHER = """
import os, subprocess, sys, paddle
worker = "from pulse_cli import threads\\nstate = threads.apply()\\nprint(state.threads, state.set_by_pulse)"
env = {**os.environ, "PADDLE_LOCAL_SIZE": "2", "PADDLE_LOCAL_RANK": "0", "PADDLE_TRAINERS_NUM": "2"}
done = subprocess.run([sys.executable, "-c", worker], env=env, capture_output=True, text=True)
sys.stdout.write(done.stdout)
"""


def test_a_launched_worker_takes_the_launchers_one_thread_for_paddles_not_the_users(
    paddle_runtime_found: None,
) -> None:
    share = threads.share_of_cores(CORES, {"PADDLE_LOCAL_SIZE": "2", "PADDLE_LOCAL_RANK": "0"})
    assert _run(LAUNCHER) == [str(share), "True"]
    assert _run(LAUNCHER, OMP_NUM_THREADS="1") == ["1", "False"]


def test_without_an_openmp_runtime_nothing_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "openmp_runtimes", lambda: [])
    state = threads.apply()
    assert state.threads is None and not state.set_by_pulse
    assert "no OpenMP runtime" in state.description


@needs_two_cores
def test_the_pulse_entry_point_applies_threads_before_the_command(paddle_runtime_found: None) -> None:
    code = f"import pulse_cli.cli as cli\ncli.app = lambda: exec({READ_BACK!r})\ncli.main()"
    assert _run(code) == [str(CORES)]
    assert _run(code, OMP_NUM_THREADS="1") == ["1"]


def test_a_paddle_inference_run_leaves_the_thread_count_as_it_found_it(
    paddle_runtime_found: None, tmp_path
) -> None:
    code = f"""
import numpy as np, paddle
from paddle.static import InputSpec
from pulse_cli import threads
from pulse_cli.export.static import InferenceGraph
threads.apply(2)
layer = paddle.nn.Conv2D(3, 4, 3)
layer.eval()
paddle.jit.save(layer, {str(tmp_path / "conv")!r}, input_spec=[InputSpec([1, 3, 8, 8], "float32", "image")])
from pathlib import Path
graph = InferenceGraph(Path({str(tmp_path / "conv")!r}))
graph.run({{"image": np.zeros((1, 3, 8, 8), np.float32)}})
print(threads.openmp_threads())
"""
    assert _run(code) == ["2"]


# Three static (to_static + oneDNN) search steps of a small StyleGAN: TOTAL per step and the image.
SEARCH = """
import json, numpy as np
from pulse_cli import threads
threads.apply()
from pulse_cli.models.stylegan import FFHQ
from pulse_cli.options import SearchOptions
from pulse_cli.search import search
generator = FFHQ.build(resolution=64, fmap_base=512, fmap_max=64, seed=3)
references = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
result = search(generator, references, SearchOptions(steps=3, seed=2, backend="static"))
print(json.dumps([result.log["TOTAL"].ravel().tolist(), result.best_image.ravel().tolist()]))
"""


@needs_two_cores
def test_a_search_on_every_core_agrees_with_one_threads(paddle_runtime_found: None) -> None:
    # The order of a reduction may depend on the thread count, and Adam at lr 0.4 on a sphere
    # amplifies that float noise step by step (the reference README: up to 0.5 % a step when only
    # PyTorch's thread count changes): the losses agree to 1e-4, the image to 1e-4 of its range.
    every_core = json.loads(_stdout(SEARCH).splitlines()[-1])
    one_thread = json.loads(_stdout(SEARCH, OMP_NUM_THREADS="1").splitlines()[-1])
    np.testing.assert_allclose(every_core[0], one_thread[0], rtol=1e-4)
    np.testing.assert_allclose(every_core[1], one_thread[1], rtol=0, atol=1e-4)
