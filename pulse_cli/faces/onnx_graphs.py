"""MTCNN's three networks as ONNX graphs for onnxruntime, built from the Paddle layers' weights.

The graphs are written node by node from ``pulse_cli.faces.networks``' state dicts (same layouts:
conv kernels [out, in, kh, kw], dense kernels [in, out]), in memory, when a detector starts: on
CPU onnxruntime runs these small convolutions about three times faster than Paddle. Pools that
Keras pads ``"same"`` use ``ceil_mode``, as the Paddle layers do.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17

# (kind, name, *arguments) in each network's order; the names are the Paddle layers' names
PNET = (
    ("conv", "conv1"), ("prelu", "prelu1"), ("pool", 2, 2, True),
    ("conv", "conv2"), ("prelu", "prelu2"), ("conv", "conv3"), ("prelu", "prelu3"),
)  # fmt: skip
RNET = (
    ("conv", "conv1"), ("prelu", "prelu1"), ("pool", 3, 2, True),
    ("conv", "conv2"), ("prelu", "prelu2"), ("pool", 3, 2, False),
    ("conv", "conv3"), ("prelu", "prelu3"), ("flatten",), ("dense", "fc4"), ("prelu", "prelu4"),
)  # fmt: skip
ONET = (
    ("conv", "conv1"), ("prelu", "prelu1"), ("pool", 3, 2, True),
    ("conv", "conv2"), ("prelu", "prelu2"), ("pool", 3, 2, False),
    ("conv", "conv3"), ("prelu", "prelu3"), ("pool", 2, 2, True),
    ("conv", "conv4"), ("prelu", "prelu4"), ("flatten",), ("dense", "fc5"), ("prelu", "prelu5"),
)  # fmt: skip
HEADS = {
    "pnet": (("offsets", "conv", "conv4_1"), ("probability", "conv", "conv4_2")),
    "rnet": (("offsets", "dense", "fc5_1"), ("probability", "dense", "fc5_2")),
    "onet": (
        ("offsets", "dense", "fc6_1"),
        ("landmarks", "dense", "fc6_2"),
        ("probability", "dense", "fc6_3"),
    ),
}
TRUNKS = {"pnet": PNET, "rnet": RNET, "onet": ONET}
INPUT_SIDE = {"pnet": None, "rnet": 24, "onet": 48}


class _Builder:
    """Collects the nodes and weights of one graph."""

    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        self.state = state
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []

    def weight(self, name: str, array: np.ndarray) -> str:
        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def layer(self, x: str, kind: str, *args: object, output: str | None = None) -> str:
        """One layer applied to the value ``x``; its output's name."""
        name = str(args[0]) if args else kind
        out = output or f"{name}_out_{len(self.nodes)}"
        if kind == "conv":
            w = self.weight(f"{name}.weight", self.state[f"{name}.weight"])
            return self.node("Conv", [x, w, self.weight(f"{name}.bias", self.state[f"{name}.bias"])], out)
        if kind == "dense":
            product = self.node(
                "MatMul", [x, self.weight(f"{name}.weight", self.state[f"{name}.weight"])], out + "_mm"
            )
            return self.node("Add", [product, self.weight(f"{name}.bias", self.state[f"{name}.bias"])], out)
        if kind == "prelu":
            slope = self.state[f"{name}._weight"]
            shape = (-1, 1, 1) if self._is_map(x) else (-1,)
            return self.node("PRelu", [x, self.weight(f"{name}._weight", slope.reshape(shape))], out)
        if kind == "pool":
            size, stride, ceil = args
            return self.node(
                "MaxPool", [x], out, kernel_shape=[size, size], strides=[stride, stride], ceil_mode=int(ceil)
            )
        if kind == "flatten":  # Keras flattens (width, height, channel): NCHW -> NWHC first
            return self.node(
                "Flatten", [self.node("Transpose", [x], out + "_t", perm=[0, 3, 2, 1])], out, axis=1
            )
        raise ValueError(f"unknown layer kind {kind!r}")

    def _is_map(self, value: str) -> bool:
        """Whether ``value`` is still a feature map (before the flatten)."""
        return not any(node.op_type == "Flatten" for node in self.nodes)


def network_graph(network: str, state: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """The ONNX model of ``network`` (``pnet``, ``rnet`` or ``onet``) with the Paddle layer's weights
    ``state``: input ``image`` [N, 3, H, W], outputs as the Paddle layer's (softmax probabilities of
    both classes in ``probability``)."""
    builder = _Builder(state)
    x = "image"
    for layer in TRUNKS[network]:
        x = builder.layer(x, *layer)
    for output, kind, name in HEADS[network]:
        if output == "probability":
            logits = builder.layer(x, kind, name)
            builder.node("Softmax", [logits], output, axis=1)
        else:
            builder.layer(x, kind, name, output=output)
    side = INPUT_SIDE[network]
    rank = 4 if side is None else 2  # P-net keeps its maps; the others end in dense layers
    outputs = [
        helper.make_tensor_value_info(output, TensorProto.FLOAT, [None] * rank)
        for output, *_ in HEADS[network]
    ]
    spatial = ["height", "width"] if side is None else [side, side]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, *spatial])]
    graph = helper.make_graph(builder.nodes, network, inputs, outputs, builder.weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model
