"""OpenVINO IR (``.xml`` + ``.bin``) read as data: the layer graph and its constants, nothing run.

Some pretrained networks ship only as OpenVINO IR. This reads the graph without OpenVINO: the XML
with ``defusedxml`` (no DTDs, entity expansion or external entities), each ``Const`` from the
``.bin`` by its ``offset``, ``size``, ``element_type`` and ``shape``, every one checked against the
file and its own output port. Anything unexpected is a ``WeightsError`` naming the file.
Models map the constants onto their layers by graph position (see ``IRGraph.order``).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml.ElementTree as DefusedET
import numpy as np
from defusedxml import DefusedXmlException

from pulse_cli.weights import WeightsError

# OpenVINO element types to numpy (little-endian, as OpenVINO writes them)
ELEMENT_TYPES = {
    "f32": np.dtype("<f4"),
    "f16": np.dtype("<f2"),
    "f64": np.dtype("<f8"),
    "i64": np.dtype("<i8"),
    "i32": np.dtype("<i4"),
    "i8": np.dtype("i1"),
    "u8": np.dtype("u1"),
}
MAX_XML_BYTES = 64 << 20  # the largest IR this is for has 0.4 MB of XML


@dataclass
class IRLayer:
    """One ``<layer>``: its id, name, type, ``<data>`` attributes, what feeds each input port
    (``(layer id, output port)``) and the shape of each output port, in port order."""

    id: int
    name: str
    type: str
    attrs: dict[str, str]
    inputs: list[tuple[int, int]] = field(default_factory=list)
    output_shapes: list[list[int]] = field(default_factory=list)
    output_ports: list[int] = field(default_factory=list)


@dataclass
class IRGraph:
    """A parsed IR: layers by id, the constants' values by layer id, and a topological order."""

    source: str
    layers: dict[int, IRLayer]
    constants: dict[int, np.ndarray]
    order: list[int]

    def producer(self, layer: IRLayer, port: int) -> IRLayer:
        """The layer feeding input ``port`` of ``layer``."""
        if port >= len(layer.inputs):
            raise WeightsError(f"{self.source}: layer {layer.name!r} has no input {port}")
        return self.layers[layer.inputs[port][0]]

    def constant(self, layer: IRLayer, port: int) -> np.ndarray:
        """The constant feeding input ``port`` of ``layer``; a ``WeightsError`` if it is not one."""
        src = self.producer(layer, port)
        if src.id not in self.constants:
            raise WeightsError(
                f"{self.source}: input {port} of {layer.name!r} is a {src.type}, not a constant"
            )
        return self.constants[src.id]

    def consumers(self, layer_id: int) -> list[IRLayer]:
        """The layers reading any output of layer ``layer_id``, in topological order."""
        return [
            self.layers[i] for i in self.order if any(src == layer_id for src, _ in self.layers[i].inputs)
        ]

    def of_type(self, kind: str) -> list[IRLayer]:
        """The layers of one type, in topological order."""
        return [self.layers[i] for i in self.order if self.layers[i].type == kind]


def _int(text: str | None, what: str, source: str) -> int:
    try:
        return int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise WeightsError(f"{source}: {what} is {text!r}, not an integer") from None


def _shape(text: str, source: str, name: str) -> list[int]:
    text = text.strip()
    if not text:
        return []  # a scalar
    dims = [_int(part.strip(), f"a dimension of {name!r}", source) for part in text.split(",")]
    if any(d < 0 for d in dims):
        raise WeightsError(f"{source}: constant {name!r} has a negative dimension {dims}")
    return dims


def _parse_xml(xml: Path) -> object:
    source = str(xml)
    if not xml.is_file():
        raise WeightsError(f"{xml}: no such OpenVINO IR file")
    if xml.stat().st_size > MAX_XML_BYTES:
        raise WeightsError(f"{xml}: {xml.stat().st_size} bytes is too large for an IR description")
    try:
        return DefusedET.parse(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True).getroot()
    except DefusedXmlException as exc:
        raise WeightsError(f"{source}: refused XML ({type(exc).__name__}: {exc})") from exc
    except DefusedET.ParseError as exc:
        raise WeightsError(f"{source}: malformed XML ({exc})") from exc


def _layers(root: object, source: str) -> dict[int, IRLayer]:
    if getattr(root, "tag", None) != "net" or root.find("layers") is None or root.find("edges") is None:
        raise WeightsError(f"{source}: not an OpenVINO IR (no <net> with <layers> and <edges>)")
    layers: dict[int, IRLayer] = {}
    input_port_ids: dict[int, list[int]] = {}
    for node in root.find("layers"):
        layer_id = _int(node.get("id"), "a layer id", source)
        if layer_id in layers:
            raise WeightsError(f"{source}: layer id {layer_id} appears twice")
        data = node.find("data")
        attrs = dict(data.attrib) if data is not None else {}
        layer = IRLayer(layer_id, node.get("name", ""), node.get("type", ""), attrs)
        output = node.find("output")
        for port in output if output is not None else []:
            layer.output_ports.append(_int(port.get("id"), f"an output port of {layer.name!r}", source))
            dims = [_int(d.text, f"a dimension of {layer.name!r}", source) for d in port.findall("dim")]
            layer.output_shapes.append(dims)
        input_ports = node.find("input")
        ports = [] if input_ports is None else list(input_ports)
        input_port_ids[layer_id] = [
            _int(p.get("id"), f"an input port of {layer.name!r}", source) for p in ports
        ]
        layer.inputs = [(-1, -1)] * len(ports)
        layers[layer_id] = layer
    for edge in root.find("edges"):
        frm = _int(edge.get("from-layer"), "an edge's from-layer", source)
        frm_port = _int(edge.get("from-port"), "an edge's from-port", source)
        to = _int(edge.get("to-layer"), "an edge's to-layer", source)
        to_port = _int(edge.get("to-port"), "an edge's to-port", source)
        if frm not in layers or to not in layers or frm_port not in layers[frm].output_ports:
            raise WeightsError(
                f"{source}: edge {frm}:{frm_port} -> {to}:{to_port} names no such layer or port"
            )
        if to_port not in input_port_ids[to]:
            raise WeightsError(f"{source}: edge into layer {to} names no input port {to_port}")
        index = input_port_ids[to].index(to_port)
        if layers[to].inputs[index] != (-1, -1):
            raise WeightsError(f"{source}: input port {to_port} of layer {to} is fed twice")
        layers[to].inputs[index] = (frm, layers[frm].output_ports.index(frm_port))
    for layer in layers.values():
        if (-1, -1) in layer.inputs:
            raise WeightsError(f"{source}: layer {layer.name!r} has an input nothing feeds")
    return layers


def _topological(layers: dict[int, IRLayer], source: str) -> list[int]:
    """Kahn's order, ties broken by layer id, so it is the file's own order where that is valid."""
    pending = {i: len({src for src, _ in layer.inputs}) for i, layer in layers.items()}
    readers: dict[int, set[int]] = {i: set() for i in layers}
    for i, layer in layers.items():
        for src, _ in layer.inputs:
            readers[src].add(i)
    ready = [i for i, n in pending.items() if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for reader in readers[i]:
            pending[reader] -= 1
            if pending[reader] == 0:
                heapq.heappush(ready, reader)
    if len(order) != len(layers):
        raise WeightsError(f"{source}: the layer graph has a cycle")
    return order


def _constants(layers: dict[int, IRLayer], weights: Path, source: str) -> dict[int, np.ndarray]:
    if not weights.is_file():
        raise WeightsError(f"{weights}: no such OpenVINO IR weights file")
    blob = np.fromfile(weights, dtype=np.uint8)
    constants: dict[int, np.ndarray] = {}
    for layer in layers.values():
        if layer.type != "Const":
            continue
        attrs, name = layer.attrs, layer.name
        kind = attrs.get("element_type")
        if kind not in ELEMENT_TYPES:
            raise WeightsError(f"{source}: constant {name!r} has unsupported element type {kind!r}")
        dtype = ELEMENT_TYPES[kind]
        shape = _shape(attrs.get("shape", ""), source, name)
        offset = _int(attrs.get("offset"), f"the offset of {name!r}", source)
        size = _int(attrs.get("size"), f"the size of {name!r}", source)
        if size != math.prod(shape) * dtype.itemsize:
            raise WeightsError(
                f"{source}: constant {name!r} of shape {shape} {kind} claims {size} bytes, "
                f"not {math.prod(shape) * dtype.itemsize}"
            )
        if offset < 0 or offset + size > blob.size:
            raise WeightsError(
                f"{weights}: constant {name!r} at bytes {offset}..{offset + size} lies outside the "
                f"file ({blob.size} bytes; truncated download?)"
            )
        if layer.output_shapes != [shape]:
            raise WeightsError(
                f"{source}: constant {name!r} has shape {shape} but outputs {layer.output_shapes}"
            )
        constants[layer.id] = blob[offset : offset + size].view(dtype).reshape(shape).copy()
    return constants


def read_ir(xml: str | Path, weights: str | Path | None = None) -> IRGraph:
    """The graph and constants of an OpenVINO IR; ``weights`` defaults to the ``.bin`` beside ``xml``."""
    xml = Path(xml)
    weights = xml.with_suffix(".bin") if weights is None else Path(weights)
    source = str(xml)
    layers = _layers(_parse_xml(xml), source)
    order = _topological(layers, source)
    return IRGraph(source, layers, _constants(layers, weights, source), order)
