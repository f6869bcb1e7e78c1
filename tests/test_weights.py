"""Reading PyTorch, Paddle and .npz weights without torch, and refusing files that would run code."""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import pytest

from pulse_cli.weights import (
    WeightsError,
    load_state_dict,
    read_torch_checkpoint,
    read_weights,
    save_pdparams,
)

# --- A minimal torch.save stand-in, so the tests craft real-format checkpoints without torch. ---

TORCH_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_NAMES = {
    "float16": "HalfStorage",
    "float32": "FloatStorage",
    "float64": "DoubleStorage",
    "int8": "CharStorage",
    "int64": "LongStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


class Global:
    """A module-level name pickled as GLOBAL without importing it (e.g. ``torch._utils``)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: Any) -> Any:
        raise AssertionError("only pickled, never called")


class Reduce:
    """An object that pickles as ``func(*args)``, then ``state`` applied to it (pickle's BUILD)."""

    def __init__(self, func: Any, args: tuple, state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple:
        return self.func, self.args, self.state


class Storage:
    """A torch storage: raw elements under a key, saved out of band as torch does."""

    def __init__(self, key: str, data: np.ndarray, type_name: str = "", location: str = "cpu") -> None:
        self.key, self.data, self.location = key, np.ascontiguousarray(data).reshape(-1), location
        self.type_name = type_name or STORAGE_NAMES[str(self.data.dtype)]
        self.view: tuple | None = None


def tensor(storage: Storage, offset: int, size: tuple, stride: tuple) -> Reduce:
    """What torch pickles for a tensor: ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``."""
    rebuild = Global("torch._utils", "_rebuild_tensor_v2")
    return Reduce(rebuild, (storage, offset, size, stride, False, OrderedDict()))


class TorchPickler(pickle._Pickler):
    """A pure-Python pickler that writes ``Global`` markers and storages as torch.save does."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file: io.BytesIO, legacy: bool) -> None:
        super().__init__(file, protocol=2)
        self.legacy = legacy
        self.storages: dict[str, Storage] = {}

    def save_marker(self, obj: Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    dispatch[Global] = save_marker

    def persistent_id(self, obj: Any) -> tuple | None:
        if not isinstance(obj, Storage):
            return None
        self.storages[obj.key] = obj
        pid = ("storage", Global("torch", obj.type_name), obj.key, obj.location, obj.data.size)
        return (*pid, obj.view) if self.legacy else pid


def dumps(obj: Any, legacy: bool = False) -> tuple[bytes, dict[str, Storage]]:
    buffer = io.BytesIO()
    pickler = TorchPickler(buffer, legacy)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.storages


def write_zip_checkpoint(path: Path, obj: Any, prefix: str = "archive", byteorder: str = "little") -> Path:
    data, storages = dumps(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{prefix}/data.pkl", data)
        archive.writestr(f"{prefix}/byteorder", byteorder)
        for key, storage in storages.items():
            raw = storage.data.astype(storage.data.dtype.newbyteorder("<" if byteorder == "little" else ">"))
            archive.writestr(f"{prefix}/data/{key}", raw.tobytes())
        archive.writestr(f"{prefix}/version", "3\n")
    return path


def write_legacy_checkpoint(path: Path, obj: Any) -> Path:
    data, storages = dumps(obj, legacy=True)
    sizes = {"short": 2, "int": 4, "long": 4}
    header = [TORCH_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": sizes}]
    parts = [pickle.dumps(item, protocol=2) for item in header]
    parts += [data, pickle.dumps(list(storages), protocol=2)]
    for storage in storages.values():
        parts += [storage.data.size.to_bytes(8, "little"), storage.data.tobytes()]
    path.write_bytes(b"".join(parts))
    return path


# --- The reference checkpoints ---


def test_zip_and_legacy_reference_checkpoints_hold_identical_tensors(reference_dir: Path) -> None:
    zipped = read_torch_checkpoint(reference_dir / "stylegan_small.pt")
    legacy = read_torch_checkpoint(reference_dir / "stylegan_small_legacy.pt")
    assert list(zipped) == list(legacy)
    assert len(zipped) > 10
    for name, array in zipped.items():
        assert isinstance(array, np.ndarray) and array.dtype == np.float32, name
        assert array.shape == legacy[name].shape, name
        np.testing.assert_array_equal(array, legacy[name], err_msg=name)


def test_reference_state_dict_keys_and_shapes_match_the_key_listing(reference_dir: Path) -> None:
    import json

    listing = json.loads((reference_dir / "stylegan_1024_keys.json").read_text())
    mapping = read_weights(reference_dir / "mapping.pt")
    expected = listing["mapping"]
    assert {name: list(array.shape) for name, array in mapping.items()} == {
        name: list(shape) for name, shape in expected.items()
    }


def test_mapping_weights_reproduce_the_reference_mapping_output(reference_dir: Path) -> None:
    """PULSE's G_mapping written in numpy over the weights read here gives the reference w."""
    state = read_weights(reference_dir / "mapping.pt")
    io_ = np.load(reference_dir / "mapping_io.npz")
    x = io_["z"].astype(np.float64)
    x = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + 1e-8)
    lrmul = 0.01
    for i in range(8):
        weight, bias = state[f"dense{i}.weight"], state[f"dense{i}.bias"]
        x = x @ (weight * (np.sqrt(2) / np.sqrt(weight.shape[1]) * lrmul)).T + bias * lrmul
        x = np.maximum(x, 0.2 * x)
    np.testing.assert_allclose(x, io_["w"], atol=1e-4, rtol=0)


def test_real_gaussian_fit_reads_from_its_cuda_tagged_legacy_file(reference_dir: Path) -> None:
    path = reference_dir / "gaussian_fit.pt"
    raw = path.read_bytes()
    assert raw.startswith(b"\x80\x02\x8a\x0a") and b"cuda:0" in raw  # the legacy format, GPU storages
    fit = read_torch_checkpoint(path)
    assert set(fit) == {"mean", "std"}
    for array in fit.values():
        assert array.shape == (512,) and array.dtype == np.float32
        assert np.isfinite(array).all()
    assert (fit["std"] > 0).all()
    readme = (reference_dir / "README.md").read_text()
    stated = re.search(r"mean of `mean` ≈ (-?\d+\.\d+), mean of `std` ≈ (-?\d+\.\d+)", readme)
    assert stated, "README no longer states the fit's means"
    for array, value in zip(fit.values(), stated.groups(), strict=True):  # to the digits stated
        assert array.mean() == pytest.approx(float(value), abs=0.5 * 10.0 ** -len(value.split(".")[1]))
    assert read_weights(path).keys() == fit.keys()


def test_reference_files_read_as_torch_load_reads_them(reference_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    for name in ("stylegan_small.pt", "stylegan_small_legacy.pt", "mapping.pt", "gaussian_fit.pt"):
        ours = read_torch_checkpoint(reference_dir / name)
        theirs = torch.load(reference_dir / name, map_location="cpu", weights_only=True)
        assert list(ours) == list(theirs), name
        for key, value in theirs.items():
            np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=f"{name}: {key}")


# --- The format itself: views, dtypes, byte order, wrappers ---


def shared_storage_checkpoint() -> tuple[dict, dict[str, np.ndarray]]:
    """Tensors that view one storage at offsets and strides, with what each must read as."""
    base = np.arange(20, dtype=np.float32)
    storage = Storage("0", base, location="cuda:0")
    obj = {
        "full": tensor(storage, 0, (20,), (1,)),
        "offset": tensor(storage, 2, (2, 4), (4, 1)),
        "transposed": tensor(storage, 0, (5, 4), (1, 5)),
        "expanded": tensor(storage, 3, (3, 2), (0, 1)),
        "scalar": tensor(storage, 7, (), ()),
        "empty": tensor(storage, 0, (0, 3), (3, 1)),
        "nested": [{"epoch": 3, "lr": 0.5, "name": "g"}, tensor(storage, 19, (1,), (1,))],
    }
    expected = {
        "full": base,
        "offset": base[2:10].reshape(2, 4),
        "transposed": base.reshape(4, 5).T,
        "expanded": np.broadcast_to(base[3:5], (3, 2)),
        "scalar": np.float32(7),
        "empty": np.zeros((0, 3), np.float32),
    }
    return obj, expected


@pytest.mark.parametrize("writer", [write_zip_checkpoint, write_legacy_checkpoint], ids=["zip", "legacy"])
def test_tensors_honour_offsets_and_strides_into_a_shared_storage(tmp_path: Path, writer: Any) -> None:
    obj, expected = shared_storage_checkpoint()
    result = read_torch_checkpoint(writer(tmp_path / "shared.pt", obj))
    for name, want in expected.items():
        got = result[name]
        assert got.shape == np.shape(want) and got.dtype == np.float32, name
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert got.flags.c_contiguous and got.flags.writeable, name
    assert result["nested"][0] == {"epoch": 3, "lr": 0.5, "name": "g"}
    np.testing.assert_array_equal(result["nested"][1], [19.0])
    result["offset"][0, 0] = -1  # independent arrays: writing one changes no other
    assert result["full"][2] == 2


def test_legacy_storage_views_read_their_slice_of_the_root_storage(tmp_path: Path) -> None:
    root = Storage("root", np.arange(10, dtype=np.float64))
    view = Storage("root", root.data)
    view.view = ("view", 4, 3)  # elements 4..6 of the root storage
    path = write_legacy_checkpoint(tmp_path / "views.pt", {"v": tensor(view, 1, (2,), (1,))})
    np.testing.assert_array_equal(read_torch_checkpoint(path)["v"], [5.0, 6.0])


@pytest.mark.parametrize("dtype", ["float16", "float64", "int8", "int64", "uint8", "bool"])
def test_storage_types_keep_their_dtype(tmp_path: Path, dtype: str) -> None:
    values = (np.arange(6) % 2 == 1) if dtype == "bool" else np.arange(6).astype(dtype)
    obj = {"t": tensor(Storage("0", values), 0, (2, 3), (3, 1))}
    for writer in (write_zip_checkpoint, write_legacy_checkpoint):
        got = read_torch_checkpoint(writer(tmp_path / f"{writer.__name__}.pt", obj))["t"]
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, values.reshape(2, 3))


def test_bfloat16_reads_as_the_float32_it_encodes(tmp_path: Path) -> None:
    values = np.array([1.0, -2.5, 3.140625, 0.0], dtype=np.float32)  # exact in bfloat16
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)
    obj = {"t": tensor(Storage("0", bits, type_name="BFloat16Storage"), 0, (4,), (1,))}
    got = read_torch_checkpoint(write_zip_checkpoint(tmp_path / "bf16.pt", obj))["t"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, values)


def test_big_endian_zip_checkpoint_reads_native_values(tmp_path: Path) -> None:
    values = np.linspace(-1, 1, 6, dtype=np.float32)
    obj = {"t": tensor(Storage("0", values), 0, (6,), (1,))}
    got = read_torch_checkpoint(write_zip_checkpoint(tmp_path / "be.pt", obj, byteorder="big"))["t"]
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, values)


def test_parameters_and_ordered_dicts_read_as_arrays_and_dicts(tmp_path: Path) -> None:
    storage = Storage("0", np.ones(3, np.float32))
    rebuild = Global("torch._utils", "_rebuild_parameter")
    parameter = Reduce(rebuild, (tensor(storage, 0, (3,), (1,)), True, OrderedDict()))
    path = write_zip_checkpoint(tmp_path / "p.pt", OrderedDict(w=parameter))
    result = read_torch_checkpoint(path)
    assert type(result) is dict
    np.testing.assert_array_equal(result["w"], np.ones(3, np.float32))


def test_tar_checkpoint_wrapping_a_state_dict_reads_with_its_key(tmp_path: Path) -> None:
    weight = tensor(Storage("0", np.arange(4, dtype=np.float32)), 0, (2, 2), (2, 1))
    obj = {"netG_state_dict": OrderedDict([("main.0.weight", weight)]), "epoch": 7}
    path = write_zip_checkpoint(tmp_path / "weights.tar", obj, prefix="weights")
    nested = read_torch_checkpoint(path)
    assert nested["epoch"] == 7
    assert list(nested["netG_state_dict"]) == ["main.0.weight"]
    state = read_weights(path, key="netG_state_dict")
    np.testing.assert_array_equal(state["main.0.weight"], [[0, 1], [2, 3]])
    with pytest.raises(WeightsError, match=r"weights\.tar.*'netG_state_dict' is nested.*key="):
        read_weights(path)
    with pytest.raises(WeightsError, match=r"weights\.tar.*no entry 'netD'.*netG_state_dict, epoch"):
        read_weights(path, key="netD")


# --- Refusing what is not weights ---


def marker_payloads(marker: Path) -> dict[str, Any]:
    """Pickled calls that would create ``marker`` if anything ran them."""
    command = f"touch {marker}"
    return {
        "posix.system": Reduce(os.system, (command,)),
        "os.system": Reduce(Global("os", "system"), (command,)),
        "builtins.eval": Reduce(Global("builtins", "eval"), (f"open({str(marker)!r}, 'w')",)),
    }


def test_the_crafted_payloads_would_run_under_plain_pickle(tmp_path: Path) -> None:
    """The malicious files below are live: an unrestricted unpickler creates the marker."""
    marker = tmp_path / "ran"
    for name, payload in marker_payloads(marker).items():
        pickle.loads(dumps({"x": payload})[0])
        assert marker.exists(), name
        marker.unlink()


@pytest.mark.parametrize("writer", [write_zip_checkpoint, write_legacy_checkpoint], ids=["zip", "legacy"])
@pytest.mark.parametrize("call", ["posix.system", "os.system", "builtins.eval"])
def test_checkpoints_that_call_code_are_refused_and_nothing_runs(
    tmp_path: Path, writer: Any, call: str
) -> None:
    marker = tmp_path / "ran"
    payload = marker_payloads(marker)[call]
    weight = tensor(Storage("0", np.ones(2, np.float32)), 0, (2,), (1,))
    path = writer(tmp_path / "evil.pt", {"w": weight, "x": payload})
    with pytest.raises(WeightsError, match=rf"evil\.pt.*'{re.escape(call)}'"):
        read_torch_checkpoint(path)
    with pytest.raises(WeightsError, match=re.escape(call)):
        read_weights(path)
    assert not marker.exists()


def test_unknown_classes_are_refused_by_name(tmp_path: Path) -> None:
    path = write_zip_checkpoint(tmp_path / "model.pt", {"args": Reduce(Global("argparse", "Namespace"), ())})
    with pytest.raises(WeightsError, match=r"model\.pt.*'argparse\.Namespace'"):
        read_torch_checkpoint(path)


def test_pickled_pdparams_that_call_code_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps({"w": np.ones(2), "x": Reduce(os.system, (f"touch {marker}",))}))
    with pytest.raises(WeightsError, match=r"evil\.pdparams.*'posix\.system'"):
        read_weights(path)
    assert not marker.exists()


def test_a_stream_cannot_rewrite_a_tensor_after_it_was_checked(tmp_path: Path) -> None:
    checked = tensor(Storage("0", np.ones(4, np.float32)), 0, (4,), (1,))
    rewritten = Reduce(checked.func, checked.args, state={"size": (1000,)})
    with pytest.raises(WeightsError, match=r"sneaky\.pt.*cannot be set"):
        read_torch_checkpoint(write_zip_checkpoint(tmp_path / "sneaky.pt", {"t": rewritten}))


def test_pickled_numpy_arrays_read_in_any_byte_and_memory_order(tmp_path: Path) -> None:
    fortran = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    arrays = {"big_endian": np.arange(4, dtype=">i4"), "fortran": fortran}
    results = []
    for protocol in (2, 4, 5):
        path = tmp_path / f"arrays{protocol}.pdparams"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        results.append(read_weights(path))
    checkpoint = write_zip_checkpoint(tmp_path / "np.pt", {**arrays, "scalar": np.float32(2.5)})
    in_torch = read_torch_checkpoint(checkpoint)
    assert in_torch["scalar"] == np.float32(2.5) and in_torch["scalar"].dtype == np.float32
    for result in [*results, in_torch]:
        for name, want in arrays.items():
            assert result[name].dtype.isnative, name
            np.testing.assert_array_equal(result[name], want, err_msg=name)


def test_numpy_object_arrays_and_raw_array_construction_are_refused(tmp_path: Path) -> None:
    objects = tmp_path / "objects.pdparams"
    objects.write_bytes(pickle.dumps({"a": np.array([None, 1])}, protocol=4))
    with pytest.raises(WeightsError, match=r"objects\.pdparams: arrays of dtype object are not allowed"):
        read_weights(objects)
    # numpy.ndarray(shape, 'O', buffer) would turn raw bytes into object pointers
    raw = Reduce(Global("numpy", "ndarray"), ((1,), "O", b"\x01" * 8))
    pointers = write_zip_checkpoint(tmp_path / "pointers.pt", {"a": raw})
    with pytest.raises(WeightsError, match=r"pointers\.pt: malformed pickle data"):
        read_torch_checkpoint(pointers)


def test_tensors_reaching_past_their_storage_are_refused(tmp_path: Path) -> None:
    obj = {"t": tensor(Storage("0", np.ones(4, np.float32)), 2, (2, 2), (2, 1))}
    for writer in (write_zip_checkpoint, write_legacy_checkpoint):
        with pytest.raises(WeightsError, match="reads past the end of storage"):
            read_torch_checkpoint(writer(tmp_path / f"{writer.__name__}.pt", obj))


def test_truncated_legacy_checkpoint_is_refused(tmp_path: Path, reference_dir: Path) -> None:
    path = tmp_path / "cut.pt"
    path.write_bytes((reference_dir / "stylegan_small_legacy.pt").read_bytes()[:-100])
    with pytest.raises(WeightsError, match=r"cut\.pt.*truncated"):
        read_torch_checkpoint(path)


@pytest.mark.parametrize("count", [1, 2**60], ids=["fewer", "more than the file holds"])
def test_legacy_storage_whose_element_count_differs_from_its_declaration_is_refused(
    tmp_path: Path, count: int
) -> None:
    obj = {"t": tensor(Storage("0", np.ones(2)), 0, (1,), (1,))}
    path = write_legacy_checkpoint(tmp_path / "odd.pt", obj)
    raw = path.read_bytes()
    count_at = len(raw) - 2 * 8 - 8  # the element count precedes the storage's two float64s
    assert raw[count_at : count_at + 8] == (2).to_bytes(8, "little")
    path.write_bytes(raw[:count_at] + count.to_bytes(8, "little") + raw[count_at + 8 :])
    with pytest.raises(
        WeightsError, match=rf"odd\.pt: storage 0 holds {count} elements but its tensors declare 2"
    ):
        read_torch_checkpoint(path)


# --- Files crafted to exhaust memory: refused before the memory is taken ---

BOMB = 2**28  # bytes each crafted file below would expand to (256 MiB)
PEAK_BOUND = 100 * 2**20  # what reading one may add to the peak memory of the process that reads it

READ_AND_MEASURE = """
import resource, sys
from pulse_cli.weights import WeightsError, read_weights
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_weights(sys.argv[1])
    outcome = "read without error"
except WeightsError as error:
    outcome = str(error)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)  # Linux counts KiB
print(outcome)
"""


def read_in_a_fresh_process(path: Path) -> tuple[int, str]:
    """``read_weights(path)`` in a new interpreter: how far its peak memory rose, and the error."""
    done = subprocess.run(
        [sys.executable, "-c", READ_AND_MEASURE, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    growth, outcome = done.stdout.splitlines()[-2:]
    return int(growth), outcome


def assert_refused_in_bounded_memory(path: Path, *fragments: str) -> None:
    growth, message = read_in_a_fresh_process(path)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert growth < PEAK_BOUND, f"peak memory rose by {growth / 2**20:.0f} MiB: {message}"


def reused_storage_checkpoints() -> dict[str, dict]:
    """Tensors whose strides or numbers make a few stored bytes into ``BOMB`` bytes of arrays."""
    elements = BOMB // 4
    side = int(elements**0.5)
    shared = Storage("0", np.ones(elements // 1024, np.float32))
    return {
        "stride 0": {"w": tensor(Storage("0", np.ones(1, np.float32)), 0, (elements,), (0,))},
        "overlapping strides": {
            "w": tensor(Storage("0", np.ones(2 * side, np.float32)), 0, (side, side), (1, 1))
        },
        "many tensors over one storage": {
            f"w{i}": tensor(shared, 0, (elements // 1024,), (1,)) for i in range(1024)
        },
    }


@pytest.mark.parametrize("writer", [write_zip_checkpoint, write_legacy_checkpoint], ids=["zip", "legacy"])
@pytest.mark.parametrize("case", list(reused_storage_checkpoints()))
def test_tensors_reusing_storage_elements_beyond_the_files_size_are_refused_in_bounded_memory(
    tmp_path: Path, writer: Any, case: str
) -> None:
    path = writer(tmp_path / "reused.pt", reused_storage_checkpoints()[case])
    assert path.stat().st_size < 2**20
    assert_refused_in_bounded_memory(path, "tensor 'w", "refused as a possible memory bomb")


def zeros_member(archive: zipfile.ZipFile, name: str, size: int, head: bytes = b"") -> None:
    """``head`` then zeros up to ``size`` bytes, deflated as they are written (never held whole)."""
    with archive.open(name, "w") as member:
        member.write(head)
        chunk = bytes(2**20)
        for start in range(len(head), size, len(chunk)):
            member.write(chunk[: size - start])


def declared_storage(elements: int) -> Storage:
    """A float32 storage that declares ``elements`` elements without holding them."""
    storage = Storage("0", np.zeros(1, np.float32))
    storage.data = np.broadcast_to(storage.data, (elements,))
    return storage


def write_zip_bomb(path: Path, declared: int, inflated: int) -> Path:
    """A zip checkpoint whose float32 storage declares ``declared`` elements and whose member
    inflates to ``inflated`` bytes of zeros (about a thousandth of that on disk)."""
    data, _ = dumps({"w": tensor(declared_storage(declared), 0, (declared,), (1,))})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/byteorder", "little")
        zeros_member(archive, "archive/data/0", inflated)
    return path


def declare_member_size(path: Path, name: str, size: int) -> None:
    """Rewrite the uncompressed size the central directory gives ``name`` (the data stay as they are)."""
    raw = bytearray(path.read_bytes())
    at = next(
        i for i in range(len(raw)) if raw.startswith(b"PK\x01\x02", i)
        and raw[i + 46 : i + 46 + struct.unpack_from("<H", raw, i + 28)[0]] == name.encode()
    )  # fmt: skip
    struct.pack_into("<I", raw, at + 24, size)
    path.write_bytes(bytes(raw))


def test_zip_storage_inflating_beyond_its_declared_size_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = write_zip_bomb(tmp_path / "bomb.pt", declared=4, inflated=BOMB)
    assert path.stat().st_size < 2**20
    assert_refused_in_bounded_memory(path, "archive/data/0 holds 256.0 MiB but its tensors declare 16 bytes")


def test_zip_storage_whose_directory_understates_its_size_is_refused_in_bounded_memory(
    tmp_path: Path,
) -> None:
    path = write_zip_bomb(tmp_path / "liar.pt", declared=4, inflated=BOMB)
    declare_member_size(path, "archive/data/0", 16)  # the size checked, not the size inflated
    assert_refused_in_bounded_memory(path, "Bad CRC-32 for file 'archive/data/0'")


def test_zip_storage_declaring_far_more_than_the_file_holds_is_refused_in_bounded_memory(
    tmp_path: Path,
) -> None:
    path = write_zip_bomb(tmp_path / "honest.pt", declared=BOMB // 4, inflated=BOMB)
    assert_refused_in_bounded_memory(path, "archive/data/0 needs 256.0 MiB", "memory bomb")


def test_npz_member_inflating_far_beyond_the_file_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (BOMB // 4,)}
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        zeros_member(archive, "a.npy", len(header.getvalue()) + BOMB, head=header.getvalue())
    assert_refused_in_bounded_memory(path, "a.npy needs 256.0 MiB", "memory bomb")


def test_pickled_arrays_sharing_one_byte_string_are_refused_in_bounded_memory(tmp_path: Path) -> None:
    frombuffer = np._core.numeric._frombuffer  # what numpy pickles arrays with (protocol 5)
    raw = bytes(2**20)  # pickled once, then referenced from the memo by every array
    arrays = {
        f"a{i}": Reduce(frombuffer, (raw, np.dtype("<f4"), (2**18,), "C")) for i in range(BOMB // 2**20)
    }
    path = tmp_path / "shared.pdparams"
    path.write_bytes(pickle.dumps(arrays, protocol=4))
    assert path.stat().st_size < 2 * 2**20
    assert_refused_in_bounded_memory(path, "an array of shape [262144] needs 1.0 MiB", "memory bomb")


def test_files_that_are_not_weights_are_refused_naming_the_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(WeightsError, match=r"notes\.pt: not a PyTorch checkpoint"):
        read_torch_checkpoint(text)
    with pytest.raises(WeightsError, match=r"notes\.pt: not a weights file"):
        read_weights(text)
    with pytest.raises(WeightsError, match=r"absent\.pt: no such weights file"):
        read_weights(tmp_path / "absent.pt")
    npz = tmp_path / "arrays.npz"
    np.savez(npz, a=np.ones(2))
    with pytest.raises(WeightsError, match=r"arrays\.npz: not a PyTorch checkpoint"):
        read_torch_checkpoint(npz)


# --- Paddle files, .npz, and loading into a layer ---


def small_layer() -> paddle.nn.Layer:
    return paddle.nn.Sequential(paddle.nn.Linear(3, 4), paddle.nn.BatchNorm1D(4))


def test_paddle_saved_state_dict_reads_without_its_metadata(tmp_path: Path) -> None:
    layer = small_layer()
    paddle.save(layer.state_dict(), str(tmp_path / "model.pdparams"))
    state = read_weights(tmp_path / "model.pdparams")
    assert list(state) == list(layer.state_dict())
    for name, tensor_ in layer.state_dict().items():
        np.testing.assert_array_equal(state[name], tensor_.numpy(), err_msg=name)


def test_save_pdparams_round_trips_through_paddle_load_and_read_weights(tmp_path: Path) -> None:
    state = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], dtype=np.int64)}
    path = tmp_path / "converted.pdparams"
    save_pdparams(state, path)
    loaded = paddle.load(str(path))
    assert list(loaded) == ["a", "b"]
    for name, array in state.items():
        np.testing.assert_array_equal(loaded[name].numpy(), array)
        np.testing.assert_array_equal(read_weights(path)[name], array)
    assert [p.name for p in tmp_path.iterdir()] == ["converted.pdparams"]


def test_npz_reads_as_a_state_dict(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", mean=np.zeros(3, np.float32), std=np.ones(3, np.float32))
    state = read_weights(tmp_path / "w.npz")
    assert set(state) == {"mean", "std"} and state["std"].dtype == np.float32


def test_load_state_dict_sets_parameters_and_buffers_casting_dtype() -> None:
    layer = small_layer()
    names = layer.state_dict().items()
    state = {name: np.full(t.shape, i + 0.5, dtype=np.float64) for i, (name, t) in enumerate(names)}
    load_state_dict(layer, state, source="w.pt")
    for name, tensor_ in layer.state_dict().items():
        assert tensor_.dtype == paddle.float32
        np.testing.assert_array_equal(tensor_.numpy(), state[name].astype(np.float32), err_msg=name)
    np.testing.assert_array_equal(layer[1]._mean.numpy(), state["1._mean"])  # buffers are set too


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("0.bias"), r"w\.pt: missing key '0\.bias' \(expected shape \[4\], found none\)"),
        (
            lambda s: s.update(extra=np.zeros((2, 5))),
            r"w\.pt: unexpected key 'extra' \(expected none, found shape \[2, 5\]\)",
        ),
        (
            lambda s: s.update({"0.weight": np.zeros((4, 3))}),
            r"w\.pt: shape mismatch for '0\.weight': expected \[3, 4\], found \[4, 3\]",
        ),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_load_state_dict_mismatch_names_file_key_and_shapes(change: Any, message: str) -> None:
    layer = small_layer()
    before = {name: t.numpy().copy() for name, t in layer.state_dict().items()}
    state = {name: np.ones(t.shape, np.float32) for name, t in layer.state_dict().items()}
    change(state)
    with pytest.raises(WeightsError, match=message):
        load_state_dict(layer, state, source="w.pt")
    for name, t in layer.state_dict().items():
        np.testing.assert_array_equal(t.numpy(), before[name])  # nothing was set
