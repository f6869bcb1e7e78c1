"""Skips that CI turns into failures: a CI run must never pass on tests it did not run."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether ``CI`` says this is a CI run (``true``, ``1``…; unset, empty, ``0`` or ``false``: not)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_outside_ci(reason: str) -> NoReturn:
    """Skip the calling test (or fixture's tests), saying why; when ``CI`` is set, fail them instead."""
    if in_ci():
        pytest.fail(f"{reason}; CI is set, so this fails instead of skipping", pytrace=False)
    pytest.skip(reason)
