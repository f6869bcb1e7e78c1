"""Scratch arrays that NIQE's NumPy backend keeps between calls.

Touching fresh memory costs more than the arithmetic in this computation (a new page is
zero-filled by the kernel on first use), so the large temporaries are named, kept per thread,
and replaced only when an image of another size needs other shapes.
"""

from __future__ import annotations

import threading

import numpy as np


class Workspace:
    """Named scratch arrays, kept between calls and replaced only when a shape or dtype changes."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        """An uninitialised array of this shape and dtype, the same one as last time when it fits."""
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype)
        return array


_local = threading.local()


def workspace() -> Workspace:
    """This thread's workspace."""
    if not hasattr(_local, "workspace"):
        _local.workspace = Workspace()
    return _local.workspace
