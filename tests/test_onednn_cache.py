"""The static backend gives back the layout copies Paddle's oneDNN kernels cache per program
(``pulse_cli.graphs.op.onednn_cache``): measured as the C heap's bytes in use after search steps,
against the same program with Paddle's cache left as it is, and with the same gradients."""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np
import paddle
import pytest
from test_ops import compiled_or_skip

from pulse_cli.backends import compiled
from pulse_cli.backends.compiled import CompiledSynthesis
from pulse_cli.devices import onednn_available
from pulse_cli.graphs import mobile_stylegan
from pulse_cli.graphs.op import onednn_cache
from pulse_cli.models.mobile_stylegan import MOBILE_STYLEGAN_FFHQ

# glibc's struct mallinfo2, in order
_MALLINFO2 = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (*_MALLINFO2, "keepcost")]


def _heap_in_use() -> int:
    """Bytes glibc's malloc has handed out and not had back (heap and mmapped blocks): oneDNN's
    copies come from malloc, outside Paddle's allocator and its statistics."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("no glibc mallinfo2 to count the bytes in use")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def _steps(synthesis, count: int) -> tuple[int, np.ndarray]:
    """Bytes in use added by ``count`` search steps (forward and backward) through a fresh
    ``CompiledSynthesis`` with oneDNN's backward (the first traces and builds it); and the
    latent's last gradient."""
    before = _heap_in_use()
    program = CompiledSynthesis(synthesis, onednn_backward=True)
    latent_np = np.random.default_rng(4).standard_normal((1, synthesis.num_layers, 512)).astype(np.float32)
    noise = synthesis.default_noise(1)

    def step() -> np.ndarray:
        latent = paddle.to_tensor(latent_np, stop_gradient=False)
        image = program(latent, noise)
        (image * image).mean().backward()
        return latent.grad.numpy()

    for _ in range(count):
        gradient = step()
    return _heap_in_use() - before, gradient


def test_static_steps_give_back_the_layout_copies_onednn_caches(monkeypatch):
    if not onednn_available():
        pytest.skip("Paddle has no oneDNN kernels here")
    compiled_or_skip(onednn_cache.NAME)
    channels = (32,) * 7  # 512 px: the last block's features are 32 × 256², 8 MiB
    synthesis = MOBILE_STYLEGAN_FFHQ.build(channels=channels, resolution=512, seed=2).synthesis
    for parameter in synthesis.parameters():
        parameter.stop_gradient = True
    released, gradient = _steps(synthesis, 3)
    with monkeypatch.context() as kept:  # Paddle's own behaviour: nothing given back
        kept.setattr(mobile_stylegan, "releasing", lambda x: x)
        kept.setattr(compiled, "release_last_program", lambda: False)
        held, kept_gradient = _steps(synthesis, 3)
    np.testing.assert_array_equal(gradient, kept_gradient)
    # Paddle's cache holds at least a copy of the last block's features (the input of its convs);
    # the trace and the program's own state, common to both, are the rest.
    features = channels[-1] * (synthesis.resolution // 2) ** 2 * 4
    assert held - released >= features, f"{released} bytes in use released, {held} kept"
