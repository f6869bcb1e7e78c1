"""NIQE's block features run as an ONNX graph (exported from ``pulse_cli.niqe.graph``) in onnxruntime.

The graph is exported once per variant, channel count and package version and kept in the
user cache folder (``pulse_cli.cache.cache_dir()``); height and width are dynamic, so
one file serves every image size. The file name also carries a digest of the sources that
define the graph, so a changed implementation never reuses a stale export.
"""

from __future__ import annotations

import hashlib
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import pulse_cli
from pulse_cli.atomic import atomic_write
from pulse_cli.cache import cache_dir
from pulse_cli.export.onnx import OPSET, open_session
from pulse_cli.niqe.variants import Variant, get_variant
from pulse_cli.quiet import captured_output

if TYPE_CHECKING:
    import onnxruntime

INPUT = "image"
GRAPH_SOURCES = ("niqe/graph.py", "niqe/variants.py", "niqe/luma.py")


def onnx_block_features(array: np.ndarray, variant: Variant) -> np.ndarray:
    """The [blocks, 36] features of an image cropped to whole blocks (H×W or H×W×3, values in [0, 255])."""
    channels = 1 if array.ndim == 2 else 3
    image = np.ascontiguousarray(array.reshape(*array.shape[:2], channels), dtype=np.float64)
    (features,) = session(variant.name, channels).run(None, {INPUT: image})
    return features


@cache
def session(variant_name: str, channels: int) -> onnxruntime.InferenceSession:
    """An onnxruntime session of the cached graph, exporting it first when the cache lacks it; on
    the CPU, which runs its float64 operators."""
    path = graph_path(variant_name, channels)
    if not path.is_file():
        export_graph(get_variant(variant_name), channels, path)
    return open_session(path, on=["CPUExecutionProvider"])


def graph_path(variant_name: str, channels: int) -> Path:
    """Where the exported graph of this variant and channel count lives in the cache."""
    digest = hashlib.sha256()
    package = Path(pulse_cli.__file__).parent
    for source in GRAPH_SOURCES:
        digest.update((package / source).read_bytes())
    name = f"niqe-{variant_name}-{channels}ch-v{pulse_cli.__version__}-{digest.hexdigest()[:12]}.onnx"
    return cache_dir() / "niqe" / name


def export_graph(variant: Variant, channels: int, path: Path) -> Path:
    """Build ``NiqeFeatures`` in Paddle, save it as a static graph, convert it to ONNX at ``path``.

    Paddle and paddle2onnx print progress on the process's stdout and stderr; that output is
    held back (so that ``--json`` output stays clean) and shown only if the export fails.
    """
    import paddle
    import paddle2onnx

    from pulse_cli.niqe.graph import NiqeFeatures

    layer = NiqeFeatures(variant, channels)
    layer.eval()
    spec = [paddle.static.InputSpec([None, None, channels], "float64", INPUT)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        prefix = Path(folder) / "niqe"
        params = prefix.with_suffix(".pdiparams")
        onnx_file = prefix.with_suffix(".onnx")
        try:
            with captured_output() as printed:
                paddle.jit.save(layer, str(prefix), input_spec=spec)
                paddle2onnx.export(
                    str(prefix.with_suffix(".json")),
                    str(params) if params.exists() else "",
                    str(onnx_file),
                    opset_version=OPSET,
                    optimize_tool="None",
                )
        except Exception as error:
            output = "\n".join(printed)[-4000:]
            raise RuntimeError(f"exporting the NIQE graph to ONNX failed: {error}\n{output}") from error
        with atomic_write(path) as file:
            file.write(onnx_file.read_bytes())
    return path
