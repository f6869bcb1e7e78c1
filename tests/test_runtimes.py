"""Without PaddlePaddle or onnxruntime, ``pulse`` says which is missing and how to install it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pulse_cli.runtimes import missing_runtimes, missing_runtimes_message

# A fresh interpreter in which these modules cannot be imported (None in sys.modules: not found).
PULSE_WITHOUT = """
import sys
for module in sys.argv[1].split(","):
    sys.modules[module] = None
sys.argv = ["pulse", "models", "list"]
from pulse_cli.cli import main
main()
"""


def pulse_without(*modules: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", PULSE_WITHOUT, ",".join(modules)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_pulse_without_runtimes_exits_2_with_one_line_naming_both_extras() -> None:
    run = pulse_without("paddle", "onnxruntime")
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: PaddlePaddle and onnxruntime are not installed (pulse needs both)")
    assert 'pip install -e ".[cpu]"' in lines[0] and '".[gpu]"' in lines[0]


@pytest.mark.parametrize("module", ["paddle", "onnxruntime"])
def test_one_missing_runtime_is_named_alone(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    name = {"paddle": "PaddlePaddle", "onnxruntime": "onnxruntime"}[module]
    assert missing_runtimes() == [name]
    assert missing_runtimes_message().startswith(f"{name} is not installed (pulse needs both); ")


def test_nothing_is_missing_where_both_runtimes_are_installed() -> None:
    assert missing_runtimes() == [] and missing_runtimes_message() is None
