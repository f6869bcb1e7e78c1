"""The ``pulse`` command line: parses arguments, calls the library, reports."""

from __future__ import annotations

import sys
import warnings

from pulse_cli.cli.console import USAGE_ERROR, error_line
from pulse_cli.runtimes import missing_runtimes_message

# Before the commands import Paddle: a missing runtime is one line, not an ImportError traceback.
if (missing := missing_runtimes_message()) is not None:
    error_line(missing)
    sys.exit(USAGE_ERROR)

# Paddle warns on import that it cannot find ccache (for compiling C++ extensions, unused here).
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)

# Each command module registers its commands on ``app`` when imported.
from pulse_cli.cli import (  # noqa: E402, F401
    bench,
    demo,
    export,
    faces,
    fit_gaussian,
    models,
    niqe,
    plugins,
    report,
    upsample,
)
from pulse_cli.cli.app import app  # noqa: E402


def main() -> None:
    """Entry point of the ``pulse`` console script."""
    app()
