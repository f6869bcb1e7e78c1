"""What a graph is being built for, so that a layer can take the form that runs there, and fast.

A layer answers three questions while it runs: is this a graph built for any batch size (an
export with a dynamic batch), is it being traced for export at all (``paddle.jit.save``: the
saved program may hold only Paddle's own ops, no compiled custom op), and is that export for
onnxruntime (``pulse export``'s ``.onnx`` files and the ``onnx`` backend's scorer) rather than
for Paddle. The forms differ in speed, never in value: every exported graph is checked against
eager Paddle before it is used (``pulse_cli.export.verify``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import paddle

PADDLE = "paddle"
ONNX = "onnx"
_EXPORT_FOR: ContextVar[str | None] = ContextVar("pulse_export_for", default=None)


def built_for_any_batch(x: paddle.Tensor) -> bool:
    """Whether ``x`` is in a graph built for any batch size (an export): to_static gives a
    variable dimension as a tensor, a known one as an int."""
    return not isinstance(x.shape[0], int)


@contextmanager
def tracing_export(runtime: str) -> Iterator[None]:
    """Graphs traced in this block are exports meant for ``runtime`` (``PADDLE`` or ``ONNX``)."""
    if runtime not in (PADDLE, ONNX):
        raise ValueError(f"unknown export runtime {runtime!r}")
    token = _EXPORT_FOR.set(runtime)
    try:
        yield
    finally:
        _EXPORT_FOR.reset(token)


def exporting() -> bool:
    """Whether a graph is being traced for export (``tracing_export``)."""
    return _EXPORT_FOR.get() is not None


def traced_for_onnx(x: paddle.Tensor) -> bool:
    """Whether ``x`` is in a graph built for any batch and traced for onnxruntime."""
    return _EXPORT_FOR.get() == ONNX and built_for_any_batch(x)
