"""What this Paddle runs on: the device in use and whether oneDNN kernels are there for it."""

from __future__ import annotations

import paddle


def on_gpu() -> bool:
    """Whether Paddle's current device is a GPU (a CUDA build pointed at one)."""
    return paddle.is_compiled_with_cuda() and paddle.device.get_device().startswith("gpu")


def onednn_available() -> bool:
    """Whether Paddle runs on the CPU here and has oneDNN kernels for it (the CPU wheels do)."""
    return not on_gpu() and bool(paddle.base.core.is_compiled_with_mkldnn())
