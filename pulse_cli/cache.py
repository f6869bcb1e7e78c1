"""Where pulse-cli keeps what it derives from the user's model files, and how files are keyed there."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK_BYTES = 1 << 20


def cache_dir() -> Path:
    """The cache folder, created on demand: ``$PULSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/pulse-cli``,
    else ``~/.cache/pulse-cli``."""
    if os.environ.get("PULSE_CACHE_DIR"):
        folder = Path(os.environ["PULSE_CACHE_DIR"]).expanduser()
    elif os.environ.get("XDG_CACHE_HOME"):
        folder = Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "pulse-cli"
    else:
        folder = Path.home() / ".cache" / "pulse-cli"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sha256_file(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks so large weight files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
