"""Where ``pulse`` prints and how it fails: one error line, the exit codes.

Kept free of Paddle and of the library, so the entry point can report a missing runtime or an
early Ctrl-C before anything heavy is imported.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from pulse_cli.errors import first_line

USAGE_ERROR = 2  # bad arguments, missing model files: nothing was attempted

# File names are printed as they are: no syntax highlighting, no :emoji: codes, no wrapping.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def error_line(message: str) -> None:
    """Print one error line on stderr (markup in ``message`` is shown literally)."""
    err.print(f"[bold red]error:[/] {escape(first_line(message))}")


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    """Print ``message`` as one error line and exit with ``code``."""
    error_line(message)
    raise typer.Exit(code)
