"""Paddle static graph → ONNX with paddle2onnx, the repairs its output needs, and onnxruntime sessions.

paddle2onnx 2.1.0 writes Paddle 3's ``leaky_relu`` with a garbage ``alpha`` (0 or a denormal): the
slopes are copied back from the Paddle program. The batch dimensions it names
``DynamicDimension.N`` are renamed ``batch`` and its ``fetch_name_N`` outputs get the graph's own
output names. Whatever it writes is still checked against Paddle before it is trusted
(``pulse_cli.export.verify``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import paddle

from pulse_cli.devices import Device, paddle_device
from pulse_cli.export import ExportError, static
from pulse_cli.export.graphs import ExportGraph, TensorSpec
from pulse_cli.graphs import tracing
from pulse_cli.quiet import captured_output

OPSET = 17
BATCH = "batch"


class OnnxExportError(ExportError):
    """paddle2onnx could not convert a graph, or wrote one that the ONNX checker refuses."""


def leaky_relu_slopes(model_prefix: Path) -> list[float]:
    """The ``negative_slope`` of every ``leaky_relu`` in a saved Paddle program, in program order."""
    program = paddle.jit.load(str(model_prefix)).program()
    return [
        float(op.attrs()["negative_slope"])
        for op in program.global_block().ops
        if op.name() == "pd_op.leaky_relu"
    ]


def _restore_leaky_relu_slopes(model: onnx.ModelProto, slopes: Sequence[float]) -> None:
    nodes = [node for node in model.graph.node if node.op_type == "LeakyRelu"]
    if len(nodes) != len(slopes):
        raise OnnxExportError(
            f"paddle2onnx wrote {len(nodes)} LeakyRelu nodes for {len(slopes)} leaky_relu ops; "
            "cannot restore their slopes"
        )
    for node, slope in zip(nodes, slopes):
        del node.attribute[:]
        node.attribute.append(onnx.helper.make_attribute("alpha", slope))


def _rename_value(model: onnx.ModelProto, old: str, new: str) -> None:
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def _name_dynamic_dims(values: Sequence[onnx.ValueInfoProto]) -> None:
    for value in values:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_param = BATCH


def _name_outputs(model: onnx.ModelProto, outputs: Sequence[TensorSpec]) -> None:
    if len(model.graph.output) != len(outputs):
        raise OnnxExportError(f"paddle2onnx wrote {len(model.graph.output)} outputs, expected {len(outputs)}")
    for value, spec in zip(model.graph.output, outputs):
        if value.name != spec.name:
            _rename_value(model, value.name, spec.name)
            value.name = spec.name


def paddle_to_onnx(model_prefix: Path, outputs: Sequence[TensorSpec], opset: int = OPSET) -> onnx.ModelProto:
    """Convert the Paddle program saved at ``model_prefix`` (``.json`` + ``.pdiparams``) to a
    checked ONNX model with named outputs, ``batch`` dimensions and correct leaky ReLU slopes."""
    import paddle2onnx

    json_file, params_file = f"{model_prefix}.json", f"{model_prefix}.pdiparams"
    with captured_output() as log:
        try:
            # optimize_tool "None": the default (polygraphy) would try to pip-install its dependencies
            data = paddle2onnx.export(
                json_file, params_file, None, opset_version=opset, auto_upgrade_opset=False,
                enable_onnx_checker=True, optimize_tool="None",
            )  # fmt: skip
        except Exception as exc:  # paddle2onnx logs its error and then fails on its own unset result
            data, failure = None, exc
    if not isinstance(data, bytes):
        details = [line for line in log if "ERROR" in line or "Error" in line] or log[-3:] or [str(failure)]
        raise OnnxExportError(f"paddle2onnx could not convert {json_file}: {details[-1].strip()}")
    model = onnx.load_from_string(data)
    _restore_leaky_relu_slopes(model, leaky_relu_slopes(model_prefix))
    _name_outputs(model, outputs)
    _name_dynamic_dims([*model.graph.input, *model.graph.output])
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise OnnxExportError(f"the ONNX model of {json_file} fails onnx.checker: {exc}") from None
    return model


def graph_to_onnx(graph: ExportGraph, opset: int = OPSET) -> onnx.ModelProto:
    """``graph`` as a checked ONNX model: traced for onnxruntime (the layers' ONNX forms,
    ``pulse_cli.graphs.tracing``) into a scratch Paddle program, then converted."""
    with tempfile.TemporaryDirectory(prefix="pulse-onnx-") as scratch:
        prefix = Path(scratch) / graph.name
        static.save(graph, prefix, runtime=tracing.ONNX)
        return paddle_to_onnx(prefix, graph.outputs, opset)


def save_model(model: onnx.ModelProto, prefix: Path) -> Path:
    """Write ``model`` as ``prefix.onnx``; the path written."""
    path = Path(f"{prefix}.onnx")
    onnx.save(model, str(path))
    return path


CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
Provider = str | tuple[str, dict[str, object]]


def providers(device: Device | None = None, available: Sequence[str] | None = None) -> list[Provider]:
    """onnxruntime execution providers for ``device`` (default: the one Paddle runs on), so both
    runtimes compute on the same device: on ``gpu:N``, CUDA with ``device_id`` N when this
    onnxruntime has it (``available``, default its own list), then the CPU; on the CPU, the CPU."""
    if device is None:
        device = paddle_device()
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    chosen: list[Provider] = []
    if device.is_gpu and CUDA in available:
        chosen.append((CUDA, {"device_id": device.index}))
    return [*chosen, CPU]


def open_session(path: Path, threads: int | None = None, on: Sequence[Provider] | None = None):
    """An onnxruntime session over the ONNX file at ``path``, quiet and fully optimized, on the
    execution providers ``on`` (default: ``providers()``, the device Paddle runs on)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # paddle2onnx leaves unused initializers that ORT warns about
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    chosen = list(on) if on is not None else providers()
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=chosen)


def session_device(session) -> str:
    """Which provider, and for CUDA which GPU, a session runs on: ``CUDAExecutionProvider on
    gpu:1`` or ``CPUExecutionProvider``."""
    provider = session.get_providers()[0]
    if provider != CUDA:
        return provider
    device_id = session.get_provider_options().get(CUDA, {}).get("device_id", "0")
    return f"{provider} on gpu:{device_id}"


class OnnxGraph:
    """An ONNX file run by onnxruntime: numpy in, numpy out."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.session = open_session(path, threads)
        self.input_names = [value.name for value in self.session.get_inputs()]
        self.provider = session_device(self.session)

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, {name: np.ascontiguousarray(feed[name]) for name in self.input_names})
