"""An export folder: writing a model's graphs all-or-nothing, and opening them again.

``export_model`` builds everything in a hidden temporary folder beside the target, saves each
graph as a Paddle static graph and as ONNX, runs each in every runtime against eager Paddle, and
only then writes ``manifest.json`` and renames the folder into place. A failed or interrupted
export leaves the target as it was. ``open_graph`` checks a file's SHA-256 against the manifest
before any runtime reads it, so a damaged file is a one-line error, not a crash in a runtime.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulse_cli import plugins
from pulse_cli.errors import first_line
from pulse_cli.export import ExportError, static
from pulse_cli.export import onnx as onnx_export
from pulse_cli.export.graphs import ExportGraph, downsample_graph, scorer_graph, synthesis_graph
from pulse_cli.export.manifest import (
    MANIFEST,
    ExportedFileError,
    check_file,
    file_hashes,
    read_manifest,
    versions,
    write_manifest,
)
from pulse_cli.export.verify import ATOL, RTOL, ParityCheck, Runner, check_parity
from pulse_cli.graphs.generator import Generator
from pulse_cli.graphs.objective import Objective
from pulse_cli.options import SearchOptions

RUNTIMES = ("paddle.jit.load", "paddle.inference", "onnxruntime")


@dataclass
class ExportResult:
    """What ``export_model`` wrote: the folder, its manifest, and every parity check."""

    folder: Path
    manifest: dict[str, Any]
    checks: list[ParityCheck]


def default_resolution_lr(resolution: int) -> int:
    """The low-resolution side exported when none is asked for: PULSE's 32 px, or R/4 for small models."""
    return min(32, resolution // 4)


def _factor(generator: Generator, resolution_lr: int) -> int:
    factor = generator.resolution // resolution_lr if resolution_lr > 0 else 0
    if factor < 1 or factor * resolution_lr != generator.resolution:
        raise ExportError(
            f"--resolution-lr {resolution_lr} does not divide the {generator.resolution} px output "
            f"of {generator.name}"
        )
    return factor


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).is_file():
        raise ExportError(
            f"{target}: folder is not empty and holds no earlier export; choose a new or empty folder"
        )


def _move_into_place(built: Path, target: Path) -> None:
    """Rename ``built`` to ``target``; an earlier export there is replaced, an empty folder removed."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        built.rename(target)
        return
    old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
    target.rename(old)
    built.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _runners(folder: Path, graph: ExportGraph) -> dict[str, Runner]:
    prefix = folder / graph.name
    input_names = [spec.name for spec in graph.inputs]
    return {
        "paddle.jit.load": static.JitGraph(prefix, input_names),
        "paddle.inference": static.InferenceGraph(prefix),
        "onnxruntime": onnx_export.OnnxGraph(folder / f"{graph.name}.onnx"),
    }


def _write_graph(folder: Path, graph: ExportGraph, opset: int) -> list[str]:
    files = static.save(graph, folder / graph.name)
    files.append(onnx_export.save_model(onnx_export.graph_to_onnx(graph, opset), folder / graph.name))
    return [path.name for path in files]


def export_model(
    generator: Generator,
    out_dir: str | Path,
    resolution_lr: int | None = None,
    options: SearchOptions | None = None,
    opset: int = onnx_export.OPSET,
    check_batch: int = 2,
    on_progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``generator``'s synthesis, bicubic downscale to ``resolution_lr`` and scorer (with
    ``options``' loss string and eps) to ``out_dir``, each verified in every runtime first.

    Raises ``ExportError`` (a ``ParityError`` with the numbers when a runtime disagrees with
    eager Paddle); ``out_dir`` is then left as it was.
    """
    if opset < 13:
        raise ExportError(f"opset {opset} is too old: ONNX opset 13 or newer is needed")
    options = options or SearchOptions()
    target = Path(out_dir)
    _check_target(target)
    resolution_lr = resolution_lr or default_resolution_lr(generator.resolution)
    factor = _factor(generator, resolution_lr)
    generator.eval()
    graphs = [
        synthesis_graph(generator),
        downsample_graph(generator.resolution, factor),
        scorer_graph(
            Objective.from_loss_str(
                generator, factor, options.loss_str, options.eps, plugins.available("losses")
            )
        ),
    ]
    progress = on_progress or (lambda message: None)
    target.parent.mkdir(parents=True, exist_ok=True)
    built = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    built.mkdir()
    try:
        files: list[str] = []
        checks: list[ParityCheck] = []
        described: dict[str, Any] = {}
        for graph in graphs:
            progress(f"{graph.name}: saving the Paddle static graph and converting it to ONNX")
            written = _write_graph(built, graph, opset)
            progress(f"{graph.name}: checking {', '.join(RUNTIMES)} against eager Paddle")
            batch = check_batch if generator.capabilities.any_batch else 1  # one image at a time
            graph_checks = check_parity(graph, _runners(built, graph), batch=batch)
            checks += graph_checks
            files += written
            described[graph.name] = {
                "inputs": [spec.to_dict() for spec in graph.inputs],
                "outputs": [spec.to_dict() for spec in graph.outputs],
                "paddle": {"program": f"{graph.name}.json", "params": f"{graph.name}.pdiparams"},
                "onnx": f"{graph.name}.onnx",
                "parity": [check.to_dict() for check in graph_checks],
            }
        manifest = {
            "model": {
                "name": generator.name,
                "source": generator.source,
                "resolution": generator.resolution,
                "latent_layers": generator.num_layers,
                "latent_dim": generator.latent_dim,
                "noise_resolutions": list(generator.noise_resolutions),
            },
            "resolution_lr": resolution_lr,
            "factor": factor,
            "loss": {
                "loss_str": options.loss_str,
                "eps": options.eps,
                "terms": graphs[2].layer.objective.term_names,
            },
            "opset": opset,
            "parity_tolerance": {"rtol": RTOL, "atol": ATOL},
            "versions": versions(),
            "graphs": described,
            "files": file_hashes(built, files),
        }
        manifest = write_manifest(built, manifest)
        _move_into_place(built, target)
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise
    return ExportResult(target, manifest, checks)


def open_graph(folder: str | Path, name: str, runtime: str = "onnxruntime") -> Runner:
    """Graph ``name`` of an export folder, loaded in ``runtime`` (one of ``RUNTIMES``) after its
    files are checked against the manifest; ``ExportedFileError`` when one is missing or damaged."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    entry = manifest.get("graphs", {}).get(name)
    if entry is None:
        raise ExportedFileError(
            f"{folder / MANIFEST}: no graph {name!r}; it has {', '.join(manifest['graphs'])}"
        )
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    if runtime == "onnxruntime":
        path = check_file(folder, manifest, entry["onnx"])
    else:
        path = check_file(folder, manifest, entry["paddle"]["program"])
        check_file(folder, manifest, entry["paddle"]["params"])
    prefix = folder / name
    try:
        if runtime == "onnxruntime":
            return onnx_export.OnnxGraph(path)
        if runtime == "paddle.inference":
            return static.InferenceGraph(prefix)
        return static.JitGraph(prefix, [spec["name"] for spec in entry["inputs"]])
    except Exception as exc:  # the runtimes raise their own many kinds on unreadable files
        raise ExportedFileError(f"{path}: {runtime} cannot load it ({first_line(exc)})") from exc
