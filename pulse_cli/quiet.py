"""Keeping what native libraries print (paddle2onnx, Paddle's kernels) out of the terminal."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

GLOG_LEVEL = "GLOG_minloglevel"  # glog, which Paddle logs through, reads it when Paddle is imported
GLOG_ERRORS_ONLY = "2"  # 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL
THIRD_PARTY_MODULES = r"(paddle|paddle2onnx|onnx|onnxruntime)(\.|$)"
# an installed package's own files, whichever of them logs (Paddle logs through the root logger)
THIRD_PARTY_FILES = re.compile(r"[/\\](site|dist)-packages[/\\](paddle|paddle2onnx|onnx|onnxruntime)[/\\]")


class _ThirdPartyRecords(logging.Filter):
    """Drops log records below ERROR written from third-party packages' files: Paddle logs its
    developer notes (``backward_utils.py: input provided by inputs has no use``, on every search
    under to_static) with ``logging.warning``, on the root logger every program shares."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not THIRD_PARTY_FILES.search(record.pathname)


THIRD_PARTY_RECORDS = _ThirdPartyRecords()


def quiet_third_party(verbose: bool = False) -> None:
    """Keep third-party logging out of the terminal, before Paddle is imported: glog's INFO and
    WARNING lines (oneDNN, the PIR executor, to_static), unless ``GLOG_minloglevel`` is set already,
    Python warnings raised inside Paddle, paddle2onnx and onnx, and what their files log below
    ERROR through the root logger. With ``verbose``, nothing is
    hidden but Paddle's note that it found no ccache (for C++ extensions, which are never built)."""
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    if verbose:
        return
    os.environ.setdefault(GLOG_LEVEL, GLOG_ERRORS_ONLY)
    warnings.filterwarnings("ignore", module=THIRD_PARTY_MODULES)
    logging.getLogger().addFilter(THIRD_PARTY_RECORDS)  # the same filter once, however often called


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """Send what native code prints on stdout/stderr to a buffer; the lines are in the list after."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield lines
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())
