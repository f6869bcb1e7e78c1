"""Skips that CI turns into failures: a CI run must never pass on tests it did not run."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
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


def assert_fails_in_ci_and_skips_outside(
    monkeypatch: pytest.MonkeyPatch, require: Callable[[], object], reason: str
) -> None:
    """``require()`` (a check that calls ``skip_outside_ci``) fails saying ``reason`` when ``CI`` is
    set, and skips saying it when it is not."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"{re.escape(reason)}; CI is set"):
        require()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=re.escape(reason)):
        require()
