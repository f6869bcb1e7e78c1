"""The allocator setting: what it changes (page faults of a big freed block), what it leaves alone
(results, the user's own malloc settings, non-glibc systems), and that ``pulse`` applies it first."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from ci import assert_fails_in_ci_and_skips_outside, skip_outside_ci

from pulse_cli import allocator


def _run(code: str, mode: str) -> str:
    env_code = f"from pulse_cli import allocator; allocator.apply({mode!r})\n{code}"
    done = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, check=True)
    return done.stdout


def require_glibc() -> None:
    """Skip where the tuning does not apply (not glibc); in CI fail instead: there it would be
    ``allocator._glibc`` missing glibc, which these tests would hide."""
    if allocator._glibc() is None:
        skip_outside_ci("not glibc: the tuning does not apply")


def test_in_ci_glibc_not_found_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    assert_fails_in_ci_and_skips_outside(monkeypatch, require_glibc, "not glibc: the tuning does not apply")


@pytest.fixture
def clean_malloc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)


# Page faults of 10 malloc + fill + free rounds of a 64 MiB block (one 1024 px StyleGAN layer).
FAULTS = """
import ctypes, resource
libc = ctypes.CDLL(None)  # the malloc every library gets: a preloaded one, else glibc's
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
size = 64 << 20
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    block = libc.malloc(size)
    libc.memset(block, 1, size)
    libc.free(block)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_tuned_mode_keeps_a_freed_big_block_mapped(clean_malloc_env: None) -> None:
    require_glibc()
    pages = (64 << 20) // 4096
    default_faults = int(_run(FAULTS, "default"))
    tuned_faults = int(_run(FAULTS, "tuned"))
    assert default_faults >= 10 * pages  # faulted in again every round
    assert tuned_faults <= 2 * pages  # faulted in once, then reused


def test_tuned_mode_says_it_is_in_force_on_glibc(clean_malloc_env: None) -> None:
    require_glibc()
    state = allocator.apply("tuned")
    assert state.tuned and state.mode == "tuned"
    assert "mallopt" in state.description


def test_default_mode_changes_nothing() -> None:
    state = allocator.apply("default")
    assert not state.tuned
    assert state.description.startswith("default")


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown allocator mode 'fast'"):
        allocator.apply("fast")


def test_malloc_settings_from_the_environment_are_left_alone(
    clean_malloc_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LD_PRELOAD", "libjemalloc.so.2")
    state = allocator.apply("tuned")
    assert not state.tuned
    assert "LD_PRELOAD" in state.description


def test_without_glibc_nothing_is_tuned(clean_malloc_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    state = allocator.apply("tuned")
    assert not state.tuned
    assert "not glibc" in state.description


def test_mode_comes_from_pulse_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(allocator.ENV_MODE, raising=False)
    assert allocator.requested_mode() == "tuned"
    monkeypatch.setenv(allocator.ENV_MODE, "Default")
    assert allocator.requested_mode() == "default"


# A 128 px StyleGAN's forward and its gradients to the latents and noise (tensors of MiBs).
STEP = """
import json, paddle
from pulse_cli.graphs.stylegan import GSynthesis
paddle.seed(3)
network = GSynthesis(resolution=128, fmap_base=1024, fmap_max=64)
latent = paddle.randn([1, network.num_layers, 512])
noise = [paddle.randn([1, 1, r, r]) for r in network.noise_resolutions]
for tensor in [latent, *noise]:
    tensor.stop_gradient = False
image = network(latent, noise)
(image * image).mean().backward()
print(json.dumps([t.numpy().ravel().tolist() for t in (image, latent.grad, noise[-1].grad)]))
"""


def test_results_are_bit_identical_with_and_without_the_tuning(clean_malloc_env: None) -> None:
    default = json.loads(_run(STEP, "default"))
    tuned = json.loads(_run(STEP, "tuned"))
    for a, b in zip(default, tuned):
        assert np.array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def _command_faults(mode: str) -> int:
    """Page faults of the FAULTS rounds run as the command of ``pulse``'s entry point."""
    code = f"import pulse_cli.cli as cli\ncli.app = lambda: exec({FAULTS!r})\ncli.main()"
    env = {**os.environ, allocator.ENV_MODE: mode}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return int(done.stdout)


def test_the_pulse_entry_point_applies_the_setting_before_the_command(clean_malloc_env: None) -> None:
    require_glibc()
    assert _command_faults("tuned") * 5 < _command_faults("default")


def test_the_cli_refuses_an_unknown_pulse_allocator_in_one_line() -> None:
    env_code = "import sys; sys.argv = ['pulse', '--help']; from pulse_cli.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", env_code],
        capture_output=True,
        text=True,
        env={**os.environ, allocator.ENV_MODE: "fast"},
    )
    assert done.returncode == 2
    assert "PULSE_ALLOCATOR: unknown allocator mode 'fast'" in done.stderr
    assert "Traceback" not in done.stderr


TCMALLOC = "libtcmalloc_minimal.so.4"


def test_a_child_for_the_tuned_mode_gets_tcmalloc_and_one_for_the_default_mode_loses_it(
    clean_malloc_env: None,
) -> None:
    base = {"PATH": "/usr/bin", allocator.ENV_MODE: "tuned"}
    tuned = allocator.environment_for("tuned", base, library=TCMALLOC)
    assert tuned["LD_PRELOAD"] == TCMALLOC and tuned[allocator.PRELOADED] == TCMALLOC
    assert allocator.environment_for("default", tuned, library=TCMALLOC) == base
    assert allocator.environment_for("tuned", tuned, library=TCMALLOC) == tuned


def test_a_users_own_preload_or_malloc_setting_is_never_replaced() -> None:
    for name, value in [("LD_PRELOAD", "libjemalloc.so.2"), ("MALLOC_MMAP_THRESHOLD_", "1048576")]:
        env = {"PATH": "/usr/bin", name: value}
        assert allocator.environment_for("tuned", env, library=TCMALLOC) == env


# What the restarted ``pulse`` process runs as its command: the setting in force, and the FAULTS.
RESTARTED = (
    "import sys, pulse_cli.cli as cli\n"
    "from pulse_cli import allocator\n"
    "sys.argv = ['pulse']\n"
    "cli.app = lambda: print(allocator.apply('tuned').description, flush=True) or exec({faults!r})\n"
    "from pulse_cli.__main__ import main\n"
    "main()"
)


def test_pulse_restarts_once_with_tcmalloc_where_it_is_installed(clean_malloc_env: None) -> None:
    require_glibc()
    library = allocator.tcmalloc_library()
    if library is None:
        pytest.skip("tcmalloc (Debian's libtcmalloc-minimal4) is not installed: mallopt is used")
    env = {**os.environ, allocator.ENV_MODE: "tuned"}
    code = RESTARTED.format(faults=FAULTS)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    description, faults = done.stdout.splitlines()
    assert description == f"tuned: tcmalloc ({library}, preloaded)"
    assert int(faults) <= 2 * (64 << 20) // 4096  # the freed block is reused, as with mallopt
    assert done.stderr == ""  # no "large alloc" report, no second restart's output
