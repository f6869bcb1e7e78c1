"""What every ``pulse`` command shares: where it prints, how it fails, which device Paddle uses."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

USAGE_ERROR = 2  # bad arguments, missing model files: nothing was attempted

# File names are printed as they are: no syntax highlighting, no :emoji: codes, no wrapping.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def error_line(message: str) -> None:
    """Print one error line on stderr (markup in ``message`` is shown literally)."""
    first = str(message).strip().splitlines()
    err.print(f"[bold red]error:[/] {escape(first[0] if first else 'unknown error')}")


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    """Print ``message`` as one error line and exit with ``code``."""
    error_line(message)
    raise typer.Exit(code)


def use_device(device: str | None) -> None:
    """Point Paddle at ``cpu`` or ``gpu``; a clear error when this Paddle has no usable GPU.

    ``None`` leaves Paddle's default (the GPU when Paddle was built with CUDA and sees one).
    """
    if device is None:
        return
    import paddle

    if device == "gpu":
        if not paddle.is_compiled_with_cuda():
            fail(
                "--device gpu: this Paddle was built without CUDA; install the GPU build "
                "(pip install 'pulse-cli[gpu]') or use --device cpu"
            )
        if paddle.device.cuda.device_count() == 0:
            fail("--device gpu: Paddle has CUDA support but sees no GPU; use --device cpu")
    paddle.set_device(device)
