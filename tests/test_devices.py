"""Devices named as Paddle names them (``cpu``, ``gpu``, ``gpu:N``), and onnxruntime put on the
same device as Paddle: the CUDA provider's ``device_id`` is the GPU's number. No GPU is needed:
the providers are built, never opened."""

from __future__ import annotations

import paddle
import pytest
import typer

from pulse_cli.cli.common import use_device
from pulse_cli.devices import Device, DeviceError, paddle_device
from pulse_cli.export import onnx as onnx_export
from pulse_cli.export.onnx import CPU, CUDA, providers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cpu", Device("cpu")),
        ("gpu", Device("gpu", 0)),
        ("gpu:0", Device("gpu", 0)),
        ("GPU:3", Device("gpu", 3)),
    ],
)
def test_devices_parse_as_paddle_names_them(text, expected):
    device = Device.parse(text)
    assert device == expected
    assert str(device) == ("cpu" if text == "cpu" else f"gpu:{expected.index}")


@pytest.mark.parametrize("text", ["", "tpu", "gpu:", "gpu:-1", "gpu:x", "cpu:1", "gpu:1:2"])
def test_a_device_paddle_would_not_know_is_refused(text):
    with pytest.raises(DeviceError, match="expected cpu, gpu or gpu:N"):
        Device.parse(text)


def test_onnxruntime_uses_the_cuda_provider_on_the_same_gpu_as_paddle():
    both = [CUDA, CPU]
    assert providers(Device("gpu", 2), available=both) == [(CUDA, {"device_id": 2}), CPU]
    assert providers(Device("gpu", 0), available=both) == [(CUDA, {"device_id": 0}), CPU]
    assert providers(Device("cpu"), available=both) == [CPU]  # Paddle on the CPU: so is onnxruntime
    assert providers(Device("gpu", 1), available=[CPU]) == [CPU]  # a CPU-only onnxruntime


def test_onnxruntime_follows_paddles_current_device(monkeypatch):
    assert paddle_device() == Device("cpu")
    assert providers(available=[CUDA, CPU]) == [CPU]
    monkeypatch.setattr(onnx_export, "paddle_device", lambda: Device("gpu", 1))
    assert providers(available=[CUDA, CPU]) == [(CUDA, {"device_id": 1}), CPU]


def test_a_gpu_paddle_does_not_see_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setattr(paddle, "is_compiled_with_cuda", lambda: True)
    monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(paddle, "set_device", lambda name: pytest.fail(f"set_device({name!r}) was called"))
    with pytest.raises(typer.Exit) as caught:
        use_device(Device("gpu", 1))
    assert caught.value.exit_code == 2
    assert "--device gpu:1: Paddle has CUDA support but sees only gpu:0 to gpu:0" in capsys.readouterr().err
