"""Reading joblib pickles of numpy arrays without joblib and without running code from the file.

``joblib.dump`` writes each array as a ``NumpyArrayWrapper`` (its shape, order and dtype) in the
pickle stream and the array's raw bytes right after that object's BUILD opcode, outside the pickle
opcodes (after an alignment padding byte and padding, in joblib >= 1.2). The stream is read with
the pure-Python unpickler, whose BUILD is extended here to read those bytes, and with the same
allowlist discipline as ``pulse_cli.weights``: only the wrapper, numpy's ``ndarray`` marker and
plain numeric dtypes resolve; any other global is refused before anything is called.
"""

from __future__ import annotations

import io
import math
import pickle
from typing import Any

import numpy as np

from pulse_cli.weights import Allowlist, NumpyDtype, NumpyType, Sealed, WeightsError, brief

WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
WRAPPER_FIELDS = {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}


class _ArrayWrapper(Sealed):
    """What ``NumpyArrayWrapper`` stands for here: the description of the array whose bytes follow."""

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, dict) and {"subclass", "shape", "order", "dtype"} <= set(state)):
            raise WeightsError(f"malformed joblib array header {brief(state)}")
        if not set(state) <= WRAPPER_FIELDS or not isinstance(state["subclass"], NumpyType):
            raise WeightsError(f"joblib array header {brief(state)} is not a plain numpy array")
        self.__dict__.update(state)


class _JoblibUnpickler(Allowlist, pickle._Unpickler):
    """joblib's unpickling protocol (array bytes after each wrapper) on an allowlist of globals."""

    dispatch = pickle._Unpickler.dispatch.copy()
    only = "numpy arrays are allowed in a joblib weights file"

    def __init__(self, file: io.BytesIO, source: str) -> None:
        super().__init__(file)
        self.source = source
        self.raw = file
        self.allowed: dict[tuple[str, str], Any] = {
            WRAPPER: _ArrayWrapper,
            ("numpy", "ndarray"): NumpyType(),
            ("numpy", "dtype"): lambda code, *_: NumpyDtype(code, source),
        }

    def persistent_load(self, pid: Any) -> Any:
        raise WeightsError(f"{self.source}: unexpected persistent id {brief(pid)}")

    def load_build(self) -> None:
        super().load_build()
        if isinstance(self.stack[-1], _ArrayWrapper):
            self.stack[-1] = self._array(self.stack[-1])

    dispatch[pickle.BUILD[0]] = load_build

    def _array(self, wrapper: _ArrayWrapper) -> np.ndarray:
        """The array whose bytes follow ``wrapper`` in the file (joblib commits the pickle frame first)."""
        if getattr(wrapper, "numpy_array_alignment_bytes", None) is not None:
            padding = self._read(1)[0]
            self._read(padding)
        shape, order = wrapper.shape, wrapper.order
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise WeightsError(f"{self.source}: malformed array shape {brief(shape)}")
        if not isinstance(wrapper.dtype, NumpyDtype) or order not in ("C", "F"):
            raise WeightsError(
                f"{self.source}: array of dtype {brief(wrapper.dtype)}, order {brief(order)}"
            )
        dtype = wrapper.dtype.dtype
        flat = np.frombuffer(self._read(math.prod(shape) * dtype.itemsize), dtype=dtype)
        return flat.reshape(shape, order=order).astype(dtype.newbyteorder("="), order="C")

    def _read(self, size: int) -> bytes:
        data = self.raw.read(size)
        if len(data) != size:
            raise WeightsError(f"{self.source}: file ends inside an array (truncated?)")
        return data


def read_joblib_arrays(data: bytes, source: str) -> Any:
    """The object a (decompressed) ``joblib.dump`` stream holds, its arrays as numpy arrays.

    Raises ``WeightsError`` naming ``source`` for a global outside the allowlist, a malformed
    stream, or bytes left over after the pickle's STOP.
    """
    file = io.BytesIO(data)
    try:
        result = _JoblibUnpickler(file, source).load()
    except WeightsError:
        raise
    except Exception as exc:  # the stream is untrusted: every failure means a malformed file
        raise WeightsError(f"{source}: malformed joblib pickle ({type(exc).__name__}: {exc})") from exc
    if file.tell() != len(data):
        raise WeightsError(
            f"{source}: {len(data) - file.tell()} bytes follow the pickle (not a joblib file?)"
        )
    return result
