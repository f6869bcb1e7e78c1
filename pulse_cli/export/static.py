"""Paddle static graphs on disk: written with ``paddle.jit.save``, run with ``paddle.jit.load`` or
Paddle Inference (``paddle.inference``, oneDNN on CPU when Paddle has it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import paddle

from pulse_cli.devices import on_gpu, onednn_available
from pulse_cli.export.graphs import ExportGraph
from pulse_cli.graphs import tracing
from pulse_cli.quiet import captured_output
from pulse_cli.threads import kept, openmp_threads


def save(graph: ExportGraph, prefix: Path, runtime: str = tracing.PADDLE) -> list[Path]:
    """Trace ``graph`` as an export for ``runtime`` (``pulse_cli.graphs.tracing``: Paddle's ops
    only, in the forms that runtime runs best) and write ``prefix.json`` and
    ``prefix.pdiparams``; the files written."""
    graph.layer.eval()
    with tracing.tracing_export(runtime):
        paddle.jit.save(graph.layer, str(prefix), input_spec=graph.input_spec)
    return [Path(f"{prefix}.json"), Path(f"{prefix}.pdiparams")]


class JitGraph:
    """A saved graph loaded back with ``paddle.jit.load``: numpy in, numpy out."""

    def __init__(self, prefix: Path, input_names: Sequence[str]) -> None:
        self.layer = paddle.jit.load(str(prefix))
        self.input_names = list(input_names)

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with paddle.no_grad():
            outputs = self.layer(*[paddle.to_tensor(feed[name]) for name in self.input_names])
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [out.numpy() for out in outputs]


class InferenceGraph:
    """A saved graph run by a Paddle Inference predictor, with oneDNN on CPU when ``onednn``, on
    ``threads`` CPU threads (default: the OpenMP count in force, ``pulse_cli.threads``, which
    each run leaves as it found: Paddle Inference sets it to 1 for every op after it too)."""

    def __init__(self, prefix: Path, onednn: bool = True, threads: int | None = None) -> None:
        from paddle import inference

        threads = threads or openmp_threads()

        config = inference.Config(f"{prefix}.json", f"{prefix}.pdiparams")
        if on_gpu():
            config.enable_use_gpu(256, 0)
        elif onednn and onednn_available():
            config.enable_mkldnn()
        else:
            config.disable_mkldnn()
        if threads:
            config.set_cpu_math_library_num_threads(threads)
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.input_names = self.predictor.get_input_names()

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        for name in self.input_names:
            self.predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(feed[name]))
        with captured_output(), kept():  # its oneDNN kernel checks print to stdout
            self.predictor.run()
        return [
            self.predictor.get_output_handle(name).copy_to_cpu() for name in self.predictor.get_output_names()
        ]
