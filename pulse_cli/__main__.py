"""The ``pulse`` console script and ``python -m pulse_cli``: the command line, started so that
Ctrl-C at any moment, Paddle's import included, ends with one line and exit code 130."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from pulse_cli import allocator
from pulse_cli.errors import INTERRUPTED, INTERRUPTED_MESSAGE


def _exit_interrupted(signum: int, frame: FrameType | None) -> None:
    # Nothing is written before the commands run, so there is nothing to keep: exit at once. A
    # KeyboardInterrupt raised inside Paddle's import would come out as Paddle's own error lines
    # and an ImportError traceback instead.
    sys.stderr.write(f"error: {INTERRUPTED_MESSAGE}\n")
    sys.stderr.flush()
    os._exit(INTERRUPTED)


def main() -> None:
    """Restart once with tcmalloc preloaded where it is installed (``pulse_cli.allocator``),
    import the command line (Paddle with it) with Ctrl-C exiting at once, then run it with
    Ctrl-C raising KeyboardInterrupt, which the commands turn into the same line (keeping
    finished images and their report)."""
    allocator.restart_with_preload()
    previous = signal.signal(signal.SIGINT, _exit_interrupted)
    from pulse_cli.cli import main as run_command_line

    signal.signal(signal.SIGINT, previous)
    run_command_line()


if __name__ == "__main__":
    main()
