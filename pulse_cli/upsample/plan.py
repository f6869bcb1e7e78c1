"""Planning a job: which inputs, which output names, which shard, what is done already.

``make_plan`` turns an input folder into ``Item``s (one per output image: ``{stem}`` or
``{stem}_{k}`` with duplicates), refuses inputs whose output name clashes (over the whole folder,
so every shard agrees), takes this worker's shard of the inputs, and sets aside items whose
output exists (resume). A step that finds several subjects in
one input (face detection) belongs here: it turns one input into several ``Item``s.
"""

from __future__ import annotations

import os
import secrets
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulse_cli import plugins
from pulse_cli.backends import get_backend
from pulse_cli.graphs.losses import parse_loss_str
from pulse_cli.options import SearchOptions


class UpsampleError(ValueError):
    """A job that cannot start: missing or empty input folder, bad shard, bad options."""


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (from 0) of ``count`` disjoint slices of the sorted inputs."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UpsampleError(f"shard {self.index}/{self.count}: need 0 <= K < N in K/N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` (K counted from 0, as ``PADDLE_TRAINER_ID`` is)."""
        index, _, count = text.partition("/")
        try:
            numbers = int(index), int(count)
        except ValueError:
            raise UpsampleError(f"shard {text!r}: expected K/N, e.g. 0/4 for the first of four") from None
        return cls(*numbers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Shard | None:
        """The shard ``paddle.distributed.launch`` gives this worker, or None outside it."""
        count = environ.get("PADDLE_TRAINERS_NUM")
        if not count or int(count) < 2:
            return None
        return cls(int(environ.get("PADDLE_TRAINER_ID", "0")), int(count))

    def select(self, items: Sequence[Any]) -> list[Any]:
        """This shard's items: every ``count``-th one, starting at ``index``."""
        return list(items[self.index :: self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Item:
    """One output image to make: its name (``{stem}`` or ``{stem}_{k}``) and its input file."""

    name: str
    path: Path


def list_inputs(input_dir: str | Path) -> list[Path]:
    """The regular, non-hidden files of ``input_dir``, sorted by name; a clear error when none."""
    folder = Path(input_dir)
    if not folder.exists():
        raise UpsampleError(f"input folder {folder} does not exist")
    if not folder.is_dir():
        raise UpsampleError(f"input {folder} is not a folder")
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    if not files:
        raise UpsampleError(f"input folder {folder} has no files to upsample")
    return files


def plan_items(inputs: Sequence[Path], duplicates: int) -> tuple[list[Item], list[tuple[Path, str]]]:
    """The output images for these inputs, and the inputs refused because their stem is taken."""
    items: list[Item] = []
    refused: list[tuple[Path, str]] = []
    stems: dict[str, Path] = {}
    for path in inputs:
        if path.stem in stems:
            refused.append((path, f"its output name {path.stem}.png clashes with {stems[path.stem].name}'s"))
            continue
        stems[path.stem] = path
        if duplicates == 1:
            items.append(Item(path.stem, path))
        else:
            items.extend(Item(f"{path.stem}_{k}", path) for k in range(1, duplicates + 1))
    return items, refused


def check_options(options: SearchOptions) -> None:
    """Fail before any search when the loss string, optimizer or backend names nothing loadable."""
    try:
        parse_loss_str(options.loss_str, plugins.available("losses"))
        plugins.load("optimizers", options.opt_name)
        get_backend(options.backend)
    except (ValueError, LookupError) as exc:
        raise UpsampleError(str(exc)) from None


def image_seed(seed: int | None, name: str) -> int:
    """The seed of one output image's starting points: from ``seed`` and the image's own name
    when given (so duplicates differ, and the image starts the same in any batch, shard or
    resumed run), otherwise fresh."""
    if seed is None:
        return secrets.randbits(32)
    return zlib.crc32(f"{seed}:{name}".encode())


@dataclass
class Plan:
    """A job's work: items to search (``todo``), items whose output exists (``done``), inputs
    refused with their cause, and the shard's report, contact-sheet and lock-file paths."""

    todo: list[Item]
    done: list[Item]
    refused: list[tuple[Path, str]]
    shard: Shard | None
    report_path: Path
    sheet_path: Path
    lock_path: Path


def output_path(output_dir: Path, name: str) -> Path:
    """Where output image ``name`` is written (as PULSE's run.py names it): ``{name}.png``."""
    return output_dir / f"{name}.png"


def shard_suffix(shard: Shard | None) -> str:
    """What a shard's report, contact sheet and lock file add to their names: ``_shard{K}of{N}``."""
    return "" if shard is None else f"_shard{shard.index}of{shard.count}"


def lock_path(output_dir: Path, shard: Shard | None) -> Path:
    """The lock file of a job (or of one shard of it) in ``output_dir``: ``.pulse{suffix}.lock``."""
    return output_dir / f".pulse{shard_suffix(shard)}.lock"


def make_plan(
    input_dir: Path,
    output_dir: Path,
    options: SearchOptions,
    *,
    overwrite: bool = False,
    shard: Shard | None = None,
) -> Plan:
    """Plan the job over ``input_dir`` (or ``shard``'s slice of it, from the environment under
    ``paddle.distributed.launch`` when none is given); ``UpsampleError`` when it cannot start."""
    if output_dir.resolve() == input_dir.resolve():
        raise UpsampleError(f"output folder {output_dir} must differ from the input folder")
    inputs = list_inputs(input_dir)
    check_options(options)
    items, refused = plan_items(inputs, options.duplicates)  # names clash across shards too
    shard = shard or Shard.from_env()
    if shard is not None:
        mine = set(shard.select(inputs))
        items = [item for item in items if item.path in mine]
        refused = [(path, cause) for path, cause in refused if path in mine]
    done = [item for item in items if not overwrite and output_path(output_dir, item.name).is_file()]
    skipped = set(done)
    suffix = shard_suffix(shard)
    return Plan(
        todo=[item for item in items if item not in skipped],
        done=done,
        refused=refused,
        shard=shard,
        report_path=output_dir / f"report{suffix}.json",
        sheet_path=output_dir / f"contact_sheet{suffix}.png",
        lock_path=lock_path(output_dir, shard),
    )
