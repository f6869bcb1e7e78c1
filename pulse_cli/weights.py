"""Reading pretrained weights without torch and without running code from the file.

PyTorch checkpoints (the zip format of torch >= 1.6, ``.tar`` files included, and the legacy
pre-1.6 format of PULSE's release files), Paddle ``.pdparams`` and ``.npz`` are read into numpy
arrays. Pickles go through an unpickler that only knows an explicit allowlist of tensor, storage,
array and container constructors, each replaced by a harmless stand-in: any other global (such as
``os.system`` or ``builtins.eval``) is refused before anything is called.

Reading a file may allocate at most ``EXPANSION_FACTOR`` times its size plus ``EXPANSION_SLACK``
(see ``_Budget``): a crafted file whose tensors reuse storage elements, whose pickle repeats one byte
string, or whose zip members inflate beyond what the file declares is refused before the memory is
taken, never materialised.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from pulse_cli.atomic import atomic_write

if TYPE_CHECKING:
    import paddle

TORCH_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PROTOCOL = 1001
PADDLE_METADATA_KEYS = ("StructuredToParameterName@@",)
ARRAY_KINDS = "biufc"  # bool, signed, unsigned, float, complex: no objects, strings or void
# A checkpoint holds each element once, so reading it allocates about twice its size (the stored
# blocks, then the arrays copied out of them); the rest is room for zip compression and for small
# expanded (stride-0) views, which torch.save writes as they are.
EXPANSION_FACTOR = 4
EXPANSION_SLACK = 16 * 2**20
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}  # inflated in bounded steps

BFLOAT16 = "bfloat16"
STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": BFLOAT16,
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}


class WeightsError(ValueError):
    """A weights file that cannot be read or does not fit the model; the message names the file."""


def _size(nbytes: int) -> str:
    """A byte count for a message: bytes below 1 MiB, else MiB or GiB."""
    if nbytes < 2**20:
        return f"{nbytes} bytes"
    return f"{nbytes / 2**20:.1f} MiB" if nbytes < 2**30 else f"{nbytes / 2**30:.1f} GiB"


class _Budget:
    """The memory that reading one file may take: ``EXPANSION_FACTOR`` × its size + ``EXPANSION_SLACK``.

    Every array, stored block and byte string the reader makes is charged here before it is
    allocated, so that strides reusing storage elements, many tensors over one storage, a pickle
    repeating one byte string, or a zip bomb are refused while they are still numbers.
    """

    def __init__(self, path: Path) -> None:
        self.source = str(path)
        self.file_bytes = path.stat().st_size
        self.limit = EXPANSION_FACTOR * self.file_bytes + EXPANSION_SLACK
        self.used = 0

    def charge(self, nbytes: int, what: str) -> None:
        """Account for ``nbytes`` about to be allocated for ``what``; refuse past the limit."""
        if self.used + nbytes > self.limit:
            raise WeightsError(
                f"{self.source}: {what} needs {_size(nbytes)}; reading this file ({_size(self.file_bytes)}) "
                f"may take at most {_size(self.limit)} in all, {_size(self.used)} of it taken already: "
                "refused as a possible memory bomb"
            )
        self.used += nbytes


class Sealed:
    """Refuses pickle's BUILD, so a stream cannot rewrite an object after the reader checked it."""

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"the state of a {type(self).__name__.lstrip('_')} cannot be set")


@dataclass(frozen=True)
class _StorageType(Sealed):
    """What ``torch.FloatStorage`` and its kin stand for here: the element type of a storage."""

    name: str
    dtype: str

    def stored_dtype(self, byteorder: str) -> np.dtype:
        """The numpy dtype of the raw elements (bfloat16 is read as its 16 raw bits)."""
        base = np.dtype("uint16" if self.dtype == BFLOAT16 else self.dtype)
        return base.newbyteorder("<" if byteorder == "little" else ">")


@dataclass(frozen=True)
class _Storage(Sealed):
    """A reference to a torch storage: ``numel`` elements from ``offset`` of the stored block ``key``."""

    key: str
    type: _StorageType
    numel: int
    offset: int = 0


@dataclass(frozen=True)
class _TensorRef(Sealed):
    """A torch tensor as its pickle describes it: a strided view into a storage."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class Allowlist:
    """``find_class`` over an allowlist: each allowed global resolves to a safe stand-in, any other
    is a ``WeightsError`` naming the file and saying what it may hold (``only``)."""

    source: str
    allowed: Mapping[tuple[str, str], Any]
    only: str

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise WeightsError(
                f"{self.source}: refused to load global '{module}.{name}': only {self.only}"
            ) from None


class _RestrictedUnpickler(Allowlist, pickle.Unpickler):
    """An unpickler that resolves only allowlisted globals, each to a safe stand-in.

    ``persistent`` handles persistent ids (torch storages); without it they are refused.
    """

    only = (
        "tensors, storages, arrays and containers are allowed (the file may be malicious or not a "
        "weights file)"
    )

    def __init__(
        self,
        file: IO[bytes],
        source: str,
        allowed: Mapping[tuple[str, str], Any],
        persistent: Callable[[Any], Any] | None = None,
        encoding: str = "ASCII",
    ) -> None:
        super().__init__(file, encoding=encoding)
        self.source = source
        self.allowed = allowed
        self.persistent = persistent

    def persistent_load(self, pid: Any) -> Any:
        if self.persistent is None:
            raise WeightsError(f"{self.source}: unexpected persistent id {brief(pid)} in a plain pickle")
        return self.persistent(pid)


def brief(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for naming what a file held in an error line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NumpyType(Sealed):
    """What ``numpy.ndarray`` stands for here: only a marker that array reconstruction expects."""


class NumpyDtype(Sealed):
    """A plain numeric numpy dtype being unpickled: ``numpy.dtype(code)``, then its byte order."""

    def __init__(self, code: Any, source: str) -> None:
        if not isinstance(code, str | bytes):
            raise WeightsError(f"{source}: array dtype {brief(code)} is not a type code")
        self.dtype = np.dtype(code.decode("latin1") if isinstance(code, bytes) else code)
        if self.dtype.kind not in ARRAY_KINDS or self.dtype.fields or self.dtype.subdtype:
            raise WeightsError(f"{source}: arrays of dtype {self.dtype} are not allowed in a weights file")
        self.source = source

    def __setstate__(self, state: Any) -> None:
        # numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|", "=")):
            raise WeightsError(f"{self.source}: malformed array dtype state {brief(state)}")
        if any(part is not None for part in state[2:5]):
            raise WeightsError(f"{self.source}: structured array dtypes are not allowed in a weights file")
        self.dtype = self.dtype.newbyteorder(state[1])


class _NumpyArray(Sealed):
    """A numpy array being unpickled: numpy's ``_reconstruct``, then its state filled from raw bytes
    here (numpy's own ``__setstate__`` is never given the untrusted state)."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        # numpy's state: ([version,] shape, dtype, is_fortran, raw bytes)
        if not (isinstance(state, tuple) and len(state) in (4, 5)) or self.array is not None:
            raise WeightsError(f"{self.budget.source}: malformed array state")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _array_from_bytes(raw, dtype, shape, "F" if fortran else "C", self.budget)


def _array_from_bytes(raw: Any, dtype: Any, shape: Any, order: Any, budget: _Budget) -> np.ndarray:
    """An independent native-order array from untrusted raw bytes, dtype and shape."""
    source = budget.source
    if isinstance(raw, str):  # Python 2 pickles hold the bytes as latin-1 text
        raw = raw.encode("latin1")
    valid_shape = isinstance(shape, tuple | list) and all(isinstance(n, int) and n >= 0 for n in shape)
    if not (isinstance(raw, bytes | bytearray) and isinstance(dtype, NumpyDtype) and valid_shape):
        raise WeightsError(f"{source}: malformed array (shape {brief(shape)}, dtype {brief(dtype)})")
    if order not in ("C", "F") or len(raw) != math.prod(shape) * dtype.dtype.itemsize:
        raise WeightsError(f"{source}: array data does not fit its shape {list(shape)} and dtype")
    budget.charge(len(raw), f"an array of shape {list(shape)}")  # memo references repeat one string
    flat = np.frombuffer(raw, dtype=dtype.dtype)
    return flat.reshape(shape, order=order).astype(dtype.dtype.newbyteorder("="), order="C")


def _numpy_allowlist(budget: _Budget) -> dict[tuple[str, str], Any]:
    """Stand-ins for the globals numpy arrays and scalars pickle with; only plain numeric dtypes."""
    source = budget.source

    def dtype(code: Any, *_: Any) -> NumpyDtype:
        return NumpyDtype(code, source)

    def reconstruct(subtype: Any, *_: Any) -> _NumpyArray:
        if not isinstance(subtype, NumpyType):
            raise WeightsError(f"{source}: array subtype {brief(subtype)} is not allowed")
        return _NumpyArray(budget)

    def scalar(dtype_: Any, raw: Any) -> np.generic:
        return _array_from_bytes(raw, dtype_, (), "C", budget)[()]

    def frombuffer(raw: Any, dtype_: Any, shape: Any, order: Any) -> np.ndarray:
        return _array_from_bytes(raw, dtype_, shape, order, budget)

    def encode(text: Any, encoding: Any = "utf-8") -> bytes:
        # Protocol 2 pickles of numpy arrays carry their bytes as latin-1 text.
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise WeightsError(f"{source}: malformed encoded bytes")
        budget.charge(len(text), "an encoded byte string")
        return text.encode("latin1")

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): NumpyType(),
        ("numpy", "dtype"): dtype,
        ("_codecs", "encode"): encode,
    }
    # numpy 2 moved numpy.core to numpy._core; pickles name either.
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


def _torch_allowlist(budget: _Budget) -> dict[tuple[str, str], Any]:
    """Stand-ins for what ``torch.save`` pickles: storages, tensors, parameters, OrderedDict, numpy."""
    source = budget.source

    def rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
        if not isinstance(storage, _Storage):
            raise WeightsError(f"{source}: a tensor refers to {brief(storage)} instead of a storage")
        dims = (size, stride)
        if not (isinstance(offset, int) and all(isinstance(d, tuple | list) for d in dims)):
            raise WeightsError(f"{source}: malformed tensor (offset {brief(offset)}, size {brief(size)})")
        if not all(isinstance(n, int) for n in (*size, *stride)) or len(size) != len(stride):
            raise WeightsError(f"{source}: malformed tensor (size {brief(size)}, stride {brief(stride)})")
        return _TensorRef(storage, offset, tuple(size), tuple(stride))

    def rebuild_parameter(data: Any, *_: Any) -> Any:
        return data

    allowed = _numpy_allowlist(budget)
    allowed[("collections", "OrderedDict")] = OrderedDict
    allowed[("torch._utils", "_rebuild_tensor")] = rebuild_tensor
    allowed[("torch._utils", "_rebuild_tensor_v2")] = rebuild_tensor
    allowed[("torch._utils", "_rebuild_parameter")] = rebuild_parameter
    allowed[("torch._utils", "_rebuild_parameter_with_state")] = rebuild_parameter
    for name, dtype in STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(name, dtype)
    return allowed


def _unpickle(unpickler: _RestrictedUnpickler) -> Any:
    """Run an unpickler, turning any failure inside the untrusted stream into a ``WeightsError``."""
    try:
        return unpickler.load()
    except WeightsError:
        raise
    except Exception as exc:  # the stream is untrusted: every failure means a malformed file
        cause = f"{type(exc).__name__}: {exc}"
        raise WeightsError(f"{unpickler.source}: malformed pickle data ({cause})") from exc


class _TorchReader:
    """Reads the objects of one torch checkpoint, resolving storages through ``read_block``."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.source = budget.source
        self.storages: dict[str, _Storage] = {}
        self.allowed = _torch_allowlist(budget)

    def unpickler(self, file: IO[bytes]) -> _RestrictedUnpickler:
        return _RestrictedUnpickler(file, self.source, self.allowed, persistent=self.storage)

    def storage(self, pid: Any) -> _Storage:
        """The storage a persistent id names: ``('storage', type, key, location, numel[, view])``."""
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise WeightsError(f"{self.source}: unsupported persistent id {brief(pid)}")
        storage_type, key, location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType):
            raise WeightsError(f"{self.source}: storage type {brief(storage_type)} is not supported")
        if not (isinstance(key, str) and isinstance(location, str) and isinstance(numel, int) and numel >= 0):
            raise WeightsError(f"{self.source}: malformed storage reference {brief(pid)}")
        root = self.storages.setdefault(key, _Storage(key, storage_type, numel))
        if root.type != storage_type:
            types = f"{root.type.name} and {storage_type.name}"
            raise WeightsError(f"{self.source}: storage {key} is read as both {types}")
        if root.numel != numel:  # every reference names the whole storage, views included
            sizes = f"{root.numel} and {numel} elements"
            raise WeightsError(f"{self.source}: storage {key} is declared with both {sizes}")
        if view is None:
            return root
        # Legacy files name a view of a storage as (view_key, element offset, view numel).
        if not (isinstance(view, tuple) and len(view) == 3 and all(isinstance(v, int) for v in view[1:])):
            raise WeightsError(f"{self.source}: malformed storage view {brief(view)}")
        return _Storage(key, storage_type, view[2], view[1])

    def materialize(self, obj: Any, read_block: Callable[[_Storage], np.ndarray]) -> Any:
        """``obj`` with every tensor replaced by its numpy array (storage blocks read once each)."""
        blocks: dict[str, np.ndarray] = {}

        def elements(storage: _Storage) -> np.ndarray:
            if storage.key not in blocks:
                blocks[storage.key] = read_block(storage)
            block = blocks[storage.key]
            if storage.offset < 0 or storage.offset + storage.numel > block.size:
                raise WeightsError(f"{self.source}: storage {storage.key} is shorter than its views need")
            return block[storage.offset : storage.offset + storage.numel]

        def array(ref: _TensorRef, name: str) -> np.ndarray:
            flat = elements(ref.storage)
            dtype = np.dtype("uint16" if ref.storage.type.dtype == BFLOAT16 else ref.storage.type.dtype)
            if any(n < 0 for n in ref.size) or any(s < 0 for s in ref.stride):
                raise WeightsError(f"{self.source}: tensor with negative size {ref.size} or strides")
            if math.prod(ref.size) == 0:
                return np.zeros(ref.size, dtype=_final_dtype(ref.storage.type))
            last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
            if ref.offset < 0 or last >= flat.size:
                raise WeightsError(
                    f"{self.source}: a tensor of shape {list(ref.size)} reads past the end of storage "
                    f"{ref.storage.key} ({flat.size} elements)"
                )
            # Strides may reuse elements (expanded views): what the copy takes is charged, not the storage.
            nbytes = math.prod(ref.size) * _final_dtype(ref.storage.type).itemsize
            shape = f"shape {list(ref.size)} and strides {list(ref.stride)}"
            self.budget.charge(nbytes, f"{name} ({shape} over a storage of {flat.size} elements)")
            view = np.lib.stride_tricks.as_strided(
                flat[ref.offset :],
                shape=ref.size,
                strides=[s * flat.itemsize for s in ref.stride],
                writeable=False,
            )
            result = np.array(view, dtype=dtype, order="C")
            if ref.storage.type.dtype == BFLOAT16:
                return (result.astype(np.uint32) << 16).view(np.float32)
            return result

        done: dict[int, Any] = {}  # by id: a shared tensor or container is converted once and stays shared

        def walk(item: Any, path: str) -> Any:
            """``item`` converted; ``path`` (``netG/main.0.weight``) names it in messages."""
            if id(item) in done:
                return done[id(item)]
            name = f"tensor {path!r}" if path else "the top-level tensor"
            if isinstance(item, _TensorRef):
                result: Any = array(item, name)
            elif isinstance(item, _Storage):
                self.budget.charge(item.numel * _final_dtype(item.type).itemsize, f"storage {path!r}")
                result = np.array(elements(item), dtype=_final_dtype(item.type))
            elif isinstance(item, _NumpyArray) and item.array is not None:
                result = item.array
            elif isinstance(item, dict):
                result = {key: walk(value, _inside(path, key)) for key, value in item.items()}
            elif isinstance(item, list | tuple):
                result = type(item)(walk(value, _inside(path, i)) for i, value in enumerate(item))
            else:
                return _checked_leaf(item, self.source)
            done[id(item)] = result
            return result

        try:
            return walk(obj, "")
        except WeightsError:
            raise
        except RecursionError:
            raise WeightsError(f"{self.source}: nested too deeply to be a checkpoint") from None
        except Exception as exc:  # the content is untrusted: any failure means a malformed file
            raise WeightsError(f"{self.source}: malformed tensor data ({type(exc).__name__}: {exc})") from exc


def _inside(path: str, key: Any) -> str:
    return f"{path}/{key}" if path else str(key)


def _final_dtype(storage_type: _StorageType) -> np.dtype:
    return np.dtype("float32" if storage_type.dtype == BFLOAT16 else storage_type.dtype)


def _checked_leaf(item: Any, source: str) -> Any:
    """A plain value or numeric numpy array/scalar; anything else means a malformed file."""
    if item is None or isinstance(item, bool | int | float | complex | str | bytes):
        return item
    if isinstance(item, np.ndarray | np.generic) and item.dtype.kind in ARRAY_KINDS:
        return item
    raise WeightsError(f"{source}: unexpected object of type {type(item).__name__} in a weights file")


def _charge_member(info: zipfile.ZipInfo, budget: _Budget) -> None:
    """Charge what a zip member inflates to, refusing methods whose inflating has no bound per step."""
    if info.compress_type not in ZIP_METHODS:  # bzip2 and lzma
        methods = " or ".join(ZIP_METHODS.values())
        method = f"zip compression method {info.compress_type}, not {methods}"
        raise WeightsError(f"{budget.source}: {info.filename} uses {method}")
    budget.charge(info.file_size, info.filename)


def _zip_member(archive: zipfile.ZipFile, name: str, budget: _Budget, expected: int | None = None) -> bytes:
    """The bytes of one member, charged to ``budget`` before they are inflated; with ``expected``,
    its size must be that (a storage's declared elements × item size)."""
    info = archive.getinfo(name)
    if expected is not None and info.file_size != expected:
        raise WeightsError(
            f"{budget.source}: {name} holds {_size(info.file_size)} but its tensors declare {_size(expected)}"
        )
    _charge_member(info, budget)
    with archive.open(info) as member:
        # Inflates in steps bounded by the count asked for, stops at the declared size, checks the CRC there.
        data = member.read(info.file_size)
    if len(data) != info.file_size:
        raise WeightsError(f"{budget.source}: {name} ends before its declared {_size(info.file_size)}")
    return data


def _torch_zip(path: Path, budget: _Budget) -> Any:
    """A torch >= 1.6 checkpoint: ``<prefix>/data.pkl`` and storages ``<prefix>/data/<key>``."""
    source = budget.source
    reader = _TorchReader(budget)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.rpartition("/")[2] == "data.pkl"]
            if not pickles:
                raise WeightsError(f"{source}: a zip file without data.pkl is not a PyTorch checkpoint")
            prefix = min(pickles, key=len)[: -len("data.pkl")]
            names = set(archive.namelist())
            byteorder = "little"
            if f"{prefix}byteorder" in names:
                raw = _zip_member(archive, f"{prefix}byteorder", budget)
                byteorder = raw.decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise WeightsError(f"{source}: unknown byte order {brief(byteorder)}")
            obj = _unpickle(reader.unpickler(io.BytesIO(_zip_member(archive, f"{prefix}data.pkl", budget))))

            def read_block(storage: _Storage) -> np.ndarray:
                name = f"{prefix}data/{storage.key}"
                if name not in names:
                    raise WeightsError(f"{source}: storage {storage.key} is missing from the archive")
                dtype = storage.type.stored_dtype(byteorder)
                declared = reader.storages[storage.key].numel * dtype.itemsize
                return np.frombuffer(_zip_member(archive, name, budget, expected=declared), dtype=dtype)

            return reader.materialize(obj, read_block)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise WeightsError(f"{source}: unreadable zip archive ({exc})") from exc


def _torch_legacy(path: Path, budget: _Budget) -> Any:
    """A pre-1.6 checkpoint: magic, protocol and sys_info pickles, the object pickle, the list of
    storage keys, then each storage as an 8-byte element count and its raw elements."""
    source = budget.source
    reader = _TorchReader(budget)
    header_allowed: dict[tuple[str, str], Any] = {}
    with open(path, "rb") as file:
        magic = _unpickle(_RestrictedUnpickler(file, source, header_allowed))
        if magic != TORCH_MAGIC:
            raise WeightsError(f"{source}: not a PyTorch checkpoint (no magic number)")
        protocol = _unpickle(_RestrictedUnpickler(file, source, header_allowed))
        if protocol != TORCH_LEGACY_PROTOCOL:
            raise WeightsError(f"{source}: unsupported legacy PyTorch protocol {brief(protocol)}")
        sys_info = _unpickle(_RestrictedUnpickler(file, source, header_allowed))
        little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
        byteorder = "little" if little else "big"
        obj = _unpickle(reader.unpickler(file))
        keys = _unpickle(_RestrictedUnpickler(file, source, header_allowed))
        if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
            raise WeightsError(f"{source}: malformed storage key list")
        blocks: dict[str, np.ndarray] = {}
        for key in keys:
            if key not in reader.storages:
                raise WeightsError(f"{source}: storage {key} is stored but no tensor uses it")
            numel = int.from_bytes(_read_exactly(file, 8, source), byteorder)
            declared = reader.storages[key].numel
            if numel != declared:
                counts = f"holds {numel} elements but its tensors declare {declared}"
                raise WeightsError(f"{source}: storage {key} {counts}")
            dtype = reader.storages[key].type.stored_dtype(byteorder)
            budget.charge(numel * dtype.itemsize, f"storage {key}")
            blocks[key] = np.frombuffer(_read_exactly(file, numel * dtype.itemsize, source), dtype=dtype)

    def read_block(storage: _Storage) -> np.ndarray:
        if storage.key not in blocks:
            raise WeightsError(f"{source}: storage {storage.key} is missing from the file")
        return blocks[storage.key]

    return reader.materialize(obj, read_block)


def _read_exactly(file: IO[bytes], size: int, source: str) -> bytes:
    remaining = os.fstat(file.fileno()).st_size - file.tell()
    data = file.read(size) if size <= remaining else b""  # never allocate what a bad count claims
    if len(data) != size:
        raise WeightsError(f"{source}: file ends in the middle of a storage (truncated download?)")
    return data


def _file_kind(path: Path) -> str:
    """'torch-zip', 'torch-legacy', 'npz', 'pickle' or 'unknown', from the file's content."""
    with open(path, "rb") as file:
        head = file.read(2)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return "unknown"
        if any(name.rpartition("/")[2] == "data.pkl" for name in names):
            return "torch-zip"
        if names and all(name.endswith(".npy") for name in names):
            return "npz"
        return "unknown"
    if not head.startswith(b"\x80"):  # pickle protocols 2 and up begin with PROTO
        return "unknown"
    # A legacy torch file is a series of pickles, the first being the magic number.
    with open(path, "rb") as file:
        try:
            first = _RestrictedUnpickler(file, str(path), allowed={}).load()
        except Exception:  # a global or a malformed stream: not the bare number torch writes first
            return "pickle"
    return "torch-legacy" if isinstance(first, int) and first == TORCH_MAGIC else "pickle"


def _existing(path: str | Path) -> Path:
    result = Path(path)
    if not result.is_file():
        raise WeightsError(f"{result}: no such weights file")
    return result


def read_torch_checkpoint(path: str | Path) -> dict[str, Any]:
    """A PyTorch checkpoint (zip, ``.tar`` zip or legacy format) as nested dicts and lists of numpy
    arrays and plain values, read without torch; tensors come back as independent C-order arrays
    (bfloat16 as float32)."""
    file = _existing(path)
    kind = _file_kind(file)
    if kind == "torch-zip":
        result = _torch_zip(file, _Budget(file))
    elif kind == "torch-legacy":
        result = _torch_legacy(file, _Budget(file))
    else:
        raise WeightsError(f"{file}: not a PyTorch checkpoint (neither the zip nor the legacy format)")
    if not isinstance(result, dict):
        raise WeightsError(f"{file}: holds a {type(result).__name__}, not a dict of tensors")
    return result


def _read_pickle(path: Path) -> Any:
    """A pickle of numpy arrays in containers, as Paddle's ``.pdparams`` are."""
    budget = _Budget(path)
    with open(path, "rb") as file:
        # latin-1, as paddle.load uses, so Python 2 era pickles of arrays read too.
        allowed = _numpy_allowlist(budget)
        obj = _unpickle(_RestrictedUnpickler(file, budget.source, allowed, encoding="latin1"))
    return _TorchReader(budget).materialize(obj, _no_storages)


def _no_storages(storage: _Storage) -> np.ndarray:
    raise AssertionError("plain pickles have no storages")  # persistent ids are refused earlier


def read_weights(path: str | Path, key: str | None = None) -> dict[str, np.ndarray]:
    """A flat state dict (name to array) from a PyTorch checkpoint, Paddle ``.pdparams`` or ``.npz``.

    The format is told from the content, not the extension. ``key`` picks a state dict that the
    checkpoint wraps (e.g. ``"netG_state_dict"``); without it the top level must be the state dict.
    """
    file = _existing(path)
    kind = _file_kind(file)
    if kind in ("torch-zip", "torch-legacy"):
        obj: Any = read_torch_checkpoint(file)
    elif kind == "pickle":
        obj = _read_pickle(file)
    elif kind == "npz":
        obj = _read_npz(file)
    else:
        raise WeightsError(f"{file}: not a weights file (expected a PyTorch checkpoint, .pdparams or .npz)")
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            available = ", ".join(map(str, obj)) if isinstance(obj, dict) else "none"
            raise WeightsError(f"{file}: has no entry {key!r} (top-level keys: {available})")
        obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsError(f"{file}: holds a {type(obj).__name__}, not a state dict")
    state = {name: value for name, value in obj.items() if name not in PADDLE_METADATA_KEYS}
    for name, value in state.items():
        if not isinstance(name, str):
            raise WeightsError(f"{file}: state dict key {brief(name)} is not a string")
        if isinstance(value, dict):
            raise WeightsError(f"{file}: entry {name!r} is nested, not an array (read it with key={name!r})")
        if not isinstance(value, np.ndarray):
            raise WeightsError(f"{file}: entry {name!r} is a {type(value).__name__}, not an array")
    return state


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    budget = _Budget(path)
    try:
        with zipfile.ZipFile(path) as archive:  # numpy inflates what the members declare: charge it first
            for info in archive.infolist():
                _charge_member(info, budget)
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except WeightsError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, MemoryError) as exc:
        raise WeightsError(f"{path}: unreadable .npz ({exc})") from exc
    for name, value in arrays.items():
        _checked_leaf(value, f"{path}: entry {name!r}")
    return arrays


def _shape(shape: Any) -> str:
    return str([int(n) for n in shape])


def load_state_dict(layer: paddle.nn.Layer, state: Mapping[str, np.ndarray], source: str | Path) -> None:
    """Set every parameter and persistable buffer of ``layer`` from ``state`` by name.

    The names and shapes must match exactly; otherwise a ``WeightsError`` names ``source``, the
    first offending key and the expected and found shapes, and the layer is left unchanged.
    """
    import paddle  # here, not at the top: reading weights needs numpy only

    expected = layer.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    if missing:
        name = missing[0]
        more = f"; {len(missing) - 1} more missing" if len(missing) > 1 else ""
        shape = _shape(expected[name].shape)
        raise WeightsError(f"{source}: missing key {name!r} (expected shape {shape}, found none{more})")
    if unexpected:
        name = unexpected[0]
        more = f"; {len(unexpected) - 1} more unexpected" if len(unexpected) > 1 else ""
        shape = _shape(np.shape(state[name]))
        raise WeightsError(f"{source}: unexpected key {name!r} (expected none, found shape {shape}{more})")
    for name, tensor in expected.items():
        found = np.shape(state[name])
        if tuple(found) != tuple(tensor.shape):
            shapes = f"expected {_shape(tensor.shape)}, found {_shape(found)}"
            raise WeightsError(f"{source}: shape mismatch for {name!r}: {shapes}")
    for name, tensor in expected.items():
        tensor.set_value(paddle.to_tensor(np.ascontiguousarray(state[name])).astype(tensor.dtype))


def save_pdparams(state: Mapping[str, np.ndarray], path: str | Path) -> None:
    """Write a state dict as a ``.pdparams`` that ``paddle.load`` and ``read_weights`` both read,
    atomically (see ``pulse_cli.atomic``)."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        array = np.ascontiguousarray(value)
        if array.dtype.kind not in ARRAY_KINDS:
            raise WeightsError(f"{path}: entry {name!r} of dtype {array.dtype} cannot be saved as weights")
        arrays[str(name)] = array
    with atomic_write(path, "wb") as file:
        pickle.dump(arrays, file, protocol=4)
