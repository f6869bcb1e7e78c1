"""Shared test fixtures: where the reference fixtures live, and a quiet Paddle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def reference_root() -> Path:
    """``PULSE_REFERENCE_DIR``, or ``../shared/reference`` beside the project root."""
    return Path(os.environ.get("PULSE_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference fixtures folder; tests that use it skip, saying why, when it is absent."""
    root = reference_root()
    if not (root / "README.md").is_file():
        pytest.skip(f"reference fixtures not found at {root} (set PULSE_REFERENCE_DIR)")
    return root


@pytest.fixture(autouse=True, scope="session")
def _cpu_paddle() -> None:
    import paddle

    paddle.set_device("cpu")
