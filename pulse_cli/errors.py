"""How an exception becomes the one line a user sees."""

from __future__ import annotations


def first_line(exc: BaseException | str) -> str:
    """The first non-blank line of an exception's message (or of a text), else the exception's type
    name: libraries' multi-line messages and tracebacks never reach a one-line error."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if lines:
        return lines[0]
    return type(exc).__name__ if isinstance(exc, BaseException) else "unknown error"


def describe(exc: BaseException) -> str:
    """``Type: first line``, for errors whose kind matters (an unexpected failure in a library)."""
    line = first_line(exc)
    return line if line == type(exc).__name__ else f"{type(exc).__name__}: {line}"


INTERRUPTED = 130  # Ctrl-C's exit code, as a shell reports a process ended by SIGINT
INTERRUPTED_MESSAGE = "interrupted: finished images and the report of them are kept; run again to resume"
"""What Ctrl-C prints, at any moment of any command, before exit code ``INTERRUPTED``."""
