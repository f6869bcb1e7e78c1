"""Merging a sharded job's reports: ``report_shard{K}of{N}.json`` of every shard into one
``report.json`` (and one contact sheet), as an unsharded job would have written them.

``paddle.distributed.launch`` leaves one report per worker; ``merge_shard_reports`` joins them
once every worker is done (``pulse report merge OUT``).
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pulse_cli.upsample.folder import FolderLock
from pulse_cli.upsample.plan import Shard, UpsampleError, lock_path
from pulse_cli.upsample.report import ImageRecord, UpsampleReport, known_fields
from pulse_cli.upsample.write import save_contact_sheets

SHARD_REPORT = re.compile(r"report_shard(\d+)of(\d+)\.json")


def shard_reports(output_dir: Path) -> list[Path]:
    """Every shard's report in ``output_dir``, in shard order; ``UpsampleError`` when there are
    none, when they come from runs with different shard counts, or when a shard's is missing."""
    found: dict[int, dict[int, Path]] = {}
    for path in output_dir.glob("report_shard*of*.json"):
        if match := SHARD_REPORT.fullmatch(path.name):
            index, count = int(match[1]), int(match[2])
            found.setdefault(count, {})[index] = path
    if not found:
        raise UpsampleError(f"{output_dir} holds no shard reports (report_shard{{K}}of{{N}}.json) to merge")
    if len(found) > 1:
        counts = ", ".join(str(count) for count in sorted(found))
        raise UpsampleError(f"{output_dir} holds reports of runs in {counts} shards; remove the stale ones")
    (count, reports), = found.items()
    missing = [f"report_shard{k}of{count}.json" for k in range(count) if k not in reports]
    if missing:
        raise UpsampleError(f"{output_dir}: no {', '.join(missing)}; has every worker run?")
    return [reports[k] for k in range(count)]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError("no list of images")
        return data
    except (OSError, ValueError) as exc:
        raise UpsampleError(f"{path}: not a readable report ({exc})") from None


def _records(path: Path, shard: dict[str, Any]) -> list[ImageRecord]:
    fields = known_fields()
    try:
        return [ImageRecord(**{key: value for key, value in record.items() if key in fields})
                for record in shard["images"]]  # fmt: skip
    except (TypeError, AttributeError) as exc:
        raise UpsampleError(f"{path}: not a readable report (an image record: {exc})") from None


def merge_shard_reports(output_dir: str | Path, contact_sheet: bool = True) -> UpsampleReport:
    """Write ``report.json`` (and the contact sheet, paged as a job's is) in ``output_dir`` from
    its shards' reports: their images sorted by name, interrupted when any shard was. The shards
    must agree on the model and the options (``UpsampleError`` naming the first that does not).
    Holds the folder's locks, unsharded and every shard's, while it writes: a worker still
    running stops the merge, named."""
    output_dir = Path(output_dir)
    paths = shard_reports(output_dir)
    shards = [_read(path) for path in paths]
    first = shards[0]
    for path, shard in zip(paths[1:], shards[1:]):
        for key in ("model", "options"):
            if shard.get(key) != first.get(key):
                raise UpsampleError(f"{path.name} was made with another {key} than {paths[0].name}")
    images = [record for path, shard in zip(paths, shards) for record in _records(path, shard)]
    report = UpsampleReport(
        output_dir=output_dir,
        model=first["model"],
        options=first["options"],
        shard=None,
        roles=next((shard["roles"] for shard in shards if shard.get("roles")), None),
        images=sorted(images, key=lambda record: record.name),
        interrupted=any(shard.get("summary", {}).get("interrupted") for shard in shards),
        report_path=output_dir / "report.json",
    )
    with ExitStack() as locks:  # no worker may still be writing, nor another merge or run
        for shard in [None, *(Shard(k, len(paths)) for k in range(len(paths)))]:
            locks.enter_context(FolderLock(lock_path(output_dir, shard)))
        if contact_sheet:
            report.contact_sheet_paths = save_contact_sheets(
                report, int(report.model["resolution"]), output_dir / "contact_sheet.png"
            )
        report.save()
    return report
