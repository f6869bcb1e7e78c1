"""``manifest.json`` of an export folder: what each graph takes and gives, the versions that made
it, the parity check numbers, and the SHA-256 of every file so a damaged file is caught at load."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from pulse_cli.cache import sha256_file
from pulse_cli.export import ExportError

MANIFEST = "manifest.json"
FORMAT = "pulse-cli-export/1"


class ExportedFileError(ExportError):
    """An export folder, its manifest or one of its graph files that is missing or damaged."""


def versions() -> dict[str, str]:
    """The versions of the packages that shape an exported graph."""
    found = {}
    for name in ("pulse-cli", "paddlepaddle", "paddlepaddle-gpu", "paddle2onnx", "onnx", "onnxruntime"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def file_hashes(folder: Path, names: list[str]) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` inside ``folder``."""
    return {name: sha256_file(folder / name) for name in sorted(names)}


def write_manifest(folder: Path, content: dict[str, Any]) -> dict[str, Any]:
    """Write ``content`` with its ``format`` as ``folder/manifest.json``; the manifest written."""
    manifest = {"format": FORMAT, **content}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an export folder; an ``ExportedFileError`` saying what is wrong otherwise."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ExportedFileError(f"{path}: no manifest; {folder} is not a folder written by `pulse export`")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportedFileError(f"{path}: damaged manifest ({exc}); export the model again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportedFileError(f"{path}: not a {FORMAT} manifest; export the model again")
    return manifest


def check_file(folder: Path, manifest: dict[str, Any], name: str) -> Path:
    """``folder/name`` after checking it against the SHA-256 the manifest holds for it."""
    path = Path(folder) / name
    expected = manifest.get("files", {}).get(name)
    if expected is None:
        raise ExportedFileError(f"{path}: not listed in {folder / MANIFEST}")
    if not path.is_file():
        raise ExportedFileError(f"{path}: missing from the export folder; export the model again")
    got = sha256_file(path)
    if got != expected:
        raise ExportedFileError(
            f"{path}: damaged (sha256 {got[:16]}…, the manifest says {expected[:16]}…); "
            "export the model again"
        )
    return path
