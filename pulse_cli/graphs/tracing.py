"""What a graph is being built for, so that a layer can take the form that runs fastest there.

A layer answers two questions while it runs: is this a graph built for any batch size (an
export, where the batch is unknown), and is it being traced for onnxruntime (``pulse export``'s
``.onnx`` files and the ``onnx`` backend's scorer) rather than for Paddle. The forms differ in
speed, never in value: every exported graph is checked against eager Paddle before it is used
(``pulse_cli.export.verify``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import paddle

_FOR_ONNX: ContextVar[bool] = ContextVar("pulse_tracing_for_onnx", default=False)


def built_for_any_batch(x: paddle.Tensor) -> bool:
    """Whether ``x`` is in a graph built for any batch size (an export): to_static gives a
    variable dimension as a tensor, a known one as an int."""
    return not isinstance(x.shape[0], int)


@contextmanager
def tracing_for_onnx() -> Iterator[None]:
    """Graphs traced in this block are meant for paddle2onnx and onnxruntime."""
    token = _FOR_ONNX.set(True)
    try:
        yield
    finally:
        _FOR_ONNX.reset(token)


def traced_for_onnx(x: paddle.Tensor) -> bool:
    """Whether ``x`` is in an export being traced for onnxruntime (``tracing_for_onnx``)."""
    return _FOR_ONNX.get() and built_for_any_batch(x)
