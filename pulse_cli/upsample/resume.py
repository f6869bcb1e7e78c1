"""Resuming into a folder made before: whether the outputs a job would keep were made as it
would make them, from the same inputs (their SHA-256) with the same model (its name and
resolution) and the options that shape an output.

Options that do not change an output are not compared: ``batch_size`` (each image searches from
its own seed, so it gets the same output in any batch), ``backend`` (the same search in another
runtime) and ``save_intermediate`` (more files, the same output). Every other option is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pulse_cli.upsample.plan import Item
from pulse_cli.upsample.report import previous_records

UNCOMPARED_OPTIONS = frozenset({"batch_size", "backend", "save_intermediate"})
COMPARED_MODEL = ("name", "resolution")  # not ``source``: the same weights load from a wheel or the cache


def input_digest(path: Path) -> str | None:
    """The SHA-256 of an input file (what its output was made from), or None when unreadable."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _previous_model(report_path: Path) -> Mapping[str, Any] | None:
    try:
        model = json.loads(report_path.read_text())["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return model if isinstance(model, dict) else None


def _then_now(name: str, then: Any, now: Any) -> str:
    return f"{name} {then!r} then, {now!r} now"


def differences(
    report_path: Path, kept: Sequence[Item], model: Mapping[str, Any], now: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """The outputs among ``kept`` that earlier runs (as ``report_path`` records them) made
    otherwise, and how they differ (``steps 100 then, 2 now``; ``model …``; ``input a.png
    changed``); ``now`` is the options as this run records them (search and face options).
    Outputs the report does not know are taken as they are."""
    records = previous_records(report_path)
    previous_model = _previous_model(report_path)
    reasons: list[str] = []
    for key in COMPARED_MODEL:
        if previous_model is not None and previous_model.get(key) != model[key]:
            reasons.append(_then_now(f"model {key}", previous_model.get(key), model[key]))
    made_otherwise: list[str] = []
    for item in kept:
        record = records.get(item.name)
        if record is None:
            continue
        own = [
            _then_now(key, then, now[key])
            for key, then in sorted(record["options"].items())
            if key in now and key not in UNCOMPARED_OPTIONS and then != now[key]
        ]
        if record["model"] != model["name"]:
            own.append(_then_now("model", record["model"], model["name"]))
        digest = record.get("input_sha256")
        if digest is not None and digest != input_digest(item.path):
            own.append(f"input {item.path.name} changed")
        if own or reasons:
            made_otherwise.append(item.name)
        reasons.extend(reason for reason in own if reason not in reasons)
    return made_otherwise, reasons
