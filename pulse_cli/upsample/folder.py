"""The output folder of a job: made, and checked writable, before any search starts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pulse_cli.upsample.plan import UpsampleError


def _cause(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def prepare_output_dir(folder: Path) -> None:
    """Make ``folder`` (and its parents) and prove a file can be written in it, by writing and
    removing one: ``UpsampleError`` naming the folder and the cause when either fails. Writing is
    the only test that holds for every case (modes, read-only mounts, root, ACLs)."""
    if folder.exists() and not folder.is_dir():
        raise UpsampleError(f"output folder {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UpsampleError(f"output folder {folder} cannot be made: {_cause(exc)}") from None
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".pulse-write-test-"):
            pass
    except OSError as exc:
        raise UpsampleError(f"output folder {folder} is not writable: {_cause(exc)}") from None
