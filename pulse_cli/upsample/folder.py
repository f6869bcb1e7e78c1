"""The output folder of a job: made and checked writable before any search starts, and locked
so that two jobs never write into it at once."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
from datetime import datetime, timezone
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


class FolderLock:
    """One job at a time in an output folder (one per shard of it): ``path`` is a lock file
    holding who has the lock (``pid``, ``host``, ``started``), locked with ``flock`` while the job
    runs. The kernel drops the lock when its process ends however it ends, so the file a dead
    run left behind (a stale lock) is simply taken over; a live holder is named in the error.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or ``UpsampleError`` saying who holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise UpsampleError(
                    f"output folder {self.path.parent} is in use by another run ({holder}, lock file "
                    f"{self.path.name}); wait for it to finish or choose another folder"
                ) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file as we opened it: lock the one there now
        os.ftruncate(fd, 0)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.write(fd, (json.dumps(record) + "\n").encode())
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and let the lock go."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(fd: int) -> str:
    """Who holds a lock, from its file: ``pid 12 on host, started 2026-01-01T10:00:00+00:00``."""
    try:
        record = json.loads(os.pread(fd, 4096, 0))
        return f"pid {record['pid']} on {record['host']}, started {record['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a run that has not written its name yet"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), path.stat())
    except FileNotFoundError:
        return False
