"""Tests that need the reference fixtures skip without them, except in CI, where they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NEEDS_FIXTURES = '''
import pytest


@pytest.fixture(autouse=True, scope="session")
def _cpu_paddle():
    """Overrides conftest's: this run needs no Paddle."""


def test_needing_the_fixtures(reference_dir):
    pass
'''


def run_pytest_without_fixtures(folder: Path, ci: str | None) -> subprocess.CompletedProcess:
    """pytest, with the project's conftest, on one test that needs the fixtures, which are absent."""
    for helper in ("conftest.py", "ci.py"):
        shutil.copy(Path(__file__).with_name(helper), folder / helper)
    (folder / "test_needs_fixtures.py").write_text(NEEDS_FIXTURES)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["PULSE_REFERENCE_DIR"] = str(folder / "absent")
    if ci is not None:
        env["CI"] = ci
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(folder)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder, timeout=120)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_absent_fixtures_fail_in_ci_naming_the_folder_and_the_variable(tmp_path: Path, ci: str) -> None:
    run = run_pytest_without_fixtures(tmp_path, ci)
    assert run.returncode == 1, run.stdout
    assert "1 error" in run.stdout and "skipped" not in run.stdout, run.stdout
    assert f"reference fixtures not found at {tmp_path / 'absent'}" in run.stdout
    assert "PULSE_REFERENCE_DIR" in run.stdout and "CI is set" in run.stdout


@pytest.mark.parametrize("ci", [None, "false"])
def test_absent_fixtures_skip_outside_ci_saying_why(tmp_path: Path, ci: str | None) -> None:
    run = run_pytest_without_fixtures(tmp_path, ci)
    assert run.returncode == 0, run.stdout
    assert "1 skipped" in run.stdout, run.stdout
    assert f"reference fixtures not found at {tmp_path / 'absent'}" in run.stdout
