"""What this Paddle runs on: the device in use, a device named as Paddle names it (``cpu``,
``gpu``, ``gpu:N``), and whether oneDNN kernels are there for it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import paddle

_DEVICE = re.compile(r"(cpu|gpu)(?::(\d+))?")


class DeviceError(ValueError):
    """A device name that is not ``cpu``, ``gpu`` or ``gpu:N``, or a device Paddle cannot use."""


@dataclass(frozen=True)
class Device:
    """A device as Paddle names it: ``cpu``, or GPU number ``index`` (``gpu`` is ``gpu:0``)."""

    kind: str
    index: int = 0

    @classmethod
    def parse(cls, text: str) -> Device:
        """``"cpu"``, ``"gpu"`` or ``"gpu:N"`` → a ``Device``; ``DeviceError`` for anything else."""
        match = _DEVICE.fullmatch(text.strip().lower())
        if match is None or (match.group(1) == "cpu" and match.group(2) is not None):
            raise DeviceError(f"unknown device {text!r}: expected cpu, gpu or gpu:N")
        return cls(match.group(1), int(match.group(2) or 0))

    @property
    def is_gpu(self) -> bool:
        return self.kind == "gpu"

    def __str__(self) -> str:
        return f"gpu:{self.index}" if self.is_gpu else "cpu"


def check_device(device: Device) -> None:
    """``DeviceError`` when this Paddle cannot run on ``device`` (no CUDA build, no such GPU)."""
    if not device.is_gpu:
        return
    if not paddle.is_compiled_with_cuda():
        raise DeviceError(
            "--device gpu: this Paddle was built without CUDA; install the GPU build "
            "(pip install 'pulse-cli[gpu]') or use --device cpu"
        )
    count = paddle.device.cuda.device_count()
    if device.index >= count:
        seen = "no GPU" if count == 0 else f"only gpu:0 to gpu:{count - 1}"
        raise DeviceError(f"--device {device}: Paddle has CUDA support but sees {seen}")


def paddle_device() -> Device:
    """The device Paddle computes on now (``paddle.device.get_device()``)."""
    return Device.parse(paddle.device.get_device()) if on_gpu() else Device("cpu")


def on_gpu() -> bool:
    """Whether Paddle's current device is a GPU (a CUDA build pointed at one)."""
    return paddle.is_compiled_with_cuda() and paddle.device.get_device().startswith("gpu")


def onednn_available() -> bool:
    """Whether Paddle runs on the CPU here and has oneDNN kernels for it (the CPU wheels do)."""
    return not on_gpu() and bool(paddle.base.core.is_compiled_with_mkldnn())
