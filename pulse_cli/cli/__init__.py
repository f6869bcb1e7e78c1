"""The ``pulse`` command line: parses arguments, calls the library, reports."""

from __future__ import annotations

from pulse_cli.cli.app import app


def main() -> None:
    """Entry point of the ``pulse`` console script."""
    app()
