"""The compute runtimes pulse needs, PaddlePaddle and onnxruntime: which are missing, and what to do.

Their CPU builds (``paddlepaddle``, ``onnxruntime``) and GPU builds (``paddlepaddle-gpu``,
``onnxruntime-gpu``) are different distributions that install the same modules, so installing both
leaves whichever was installed last (the CPU ``onnxruntime`` hides the GPU one). pulse-cli therefore
declares them as the extras ``cpu`` and ``gpu``, not as dependencies: the user installs one set.
"""

from __future__ import annotations

import importlib.util

RUNTIMES = {"paddle": "PaddlePaddle", "onnxruntime": "onnxruntime"}  # module: what it is called
INSTALL = (
    'install one set in the pulse-cli folder: pip install -e ".[cpu]" for the CPU builds, '
    'or ".[gpu]" for the CUDA builds (see the README)'
)


def missing_runtimes() -> list[str]:
    """The runtimes whose modules cannot be found, without importing them (Paddle's import takes seconds)."""
    return [name for module, name in RUNTIMES.items() if importlib.util.find_spec(module) is None]


def missing_runtimes_message() -> str | None:
    """One line saying which runtimes are missing and how to install them; ``None`` when none is."""
    missing = missing_runtimes()
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return f"{' and '.join(missing)} {verb} not installed (pulse needs both); {INSTALL}"
