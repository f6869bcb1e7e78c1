"""Writing files atomically: a reader sees the old file or the whole new one, never a partial one."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from PIL import Image


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """A file object whose content replaces ``path`` when the ``with`` block ends without error.

    It writes a dot-prefixed temporary file beside ``path``, syncs it to disk and renames it over
    ``path``. If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    if "w" not in mode or any(flag in mode for flag in "ax+"):
        raise ValueError(f"atomic_write needs a write-only mode such as 'w' or 'wb', got {mode!r}")
    target = Path(path)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 lets the umask decide the final permissions, as a plain open() would.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable where the platform allows syncing a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save_image(image: Image.Image, path: str | Path, **params: Any) -> None:
    """Save ``image`` to ``path`` atomically, in the format its extension names (PNG for ``.png``)."""
    target = Path(path)
    image_format = Image.registered_extensions().get(target.suffix.lower())
    if image_format is None:
        raise ValueError(f"{target}: unknown image extension {target.suffix!r}; use .png or .jpg")
    with atomic_write(target, "wb") as file:
        image.save(file, format=image_format, **params)
