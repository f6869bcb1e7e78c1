"""Planning a job: which inputs, which output names, which shard, what is done already.

``make_plan`` turns an input folder into ``Item``s (one per output image: ``{stem}`` or
``{stem}_{k}`` with duplicates), leaves out files that are not images (noted), refuses inputs whose
output name clashes (over the whole folder, so every shard agrees), reads what each of this worker's
inputs is (``inputs``: an aligned crop, or a photo whose faces each become an ``Item``
``{stem}_{k}``; a face name may clash with another input's, so the inputs named like it are read
too, whichever shard they are in), takes this worker's shard of the inputs and sets aside items
whose output exists (resume).
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import secrets
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulse_cli import plugins
from pulse_cli.backends import get_backend
from pulse_cli.graphs.losses import parse_loss_str
from pulse_cli.images import InputImageError, is_image_file
from pulse_cli.options import SearchOptions
from pulse_cli.upsample.inputs import Crop, FaceDetectionError, InputReader


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
    """One output image to make: its name (``{stem}`` or ``{stem}_{k}``), its input file and, when
    it is not searched from that file as it is, the crop it is searched from (a face of a photo,
    or an aligned crop downscaled)."""

    name: str
    path: Path
    crop: Crop | None = field(default=None, compare=False)

    @property
    def output(self) -> str:
        """Its output file, relative to the output folder: ``upsampled/{name}.png`` for a face of a
        photo, else ``{name}.png`` as PULSE's run.py names it."""
        if self.crop is not None and self.crop.found is not None:
            return f"upsampled/{self.name}.png"
        return f"{self.name}.png"


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


def read_items(
    items: Sequence[Item], reader: InputReader
) -> tuple[list[Item], list[tuple[Path, str]]]:
    """``items`` with each input read for what it is (``InputReader.crops``): a photo's item becomes
    one item per face, ``{name}_{k}`` (``{stem}_{k}_{d}`` for duplicate ``d``); inputs that fail
    (no face, unreadable) are returned with their cause."""
    read: dict[Path, list[Crop] | None] = {}
    failed: dict[Path, str] = {}
    made: dict[Path, list[Item]] = {}
    for item in items:
        if item.path not in read and item.path not in failed:
            try:
                read[item.path] = reader.crops(item.path, item.path.stem)
            except InputImageError as exc:
                failed[item.path] = exc.cause
            except FaceDetectionError as exc:
                raise UpsampleError(str(exc)) from None
        if item.path in failed:
            continue
        crops = read[item.path]
        duplicate = item.name[len(item.path.stem) :]  # "" or "_{d}"
        for crop in crops or ():
            photo = None if crop.photo is None else f"{crop.photo}{duplicate}"
            crop = crop if photo == crop.photo else dataclasses.replace(crop, photo=photo)
            made.setdefault(item.path, []).append(Item(f"{crop.name}{duplicate}", item.path, crop))
        if crops is None:
            made.setdefault(item.path, []).append(item)
    owners: dict[str, Path] = {}
    for path, its in made.items():  # a face's name ({stem}_{k}) may be another input's stem
        clash = next((owners[i.name] for i in its if i.name in owners), None)
        if clash is not None:
            failed[path] = f"its output name clashes with {clash.name}'s"
            continue
        owners.update((i.name, path) for i in its)
    out = [item for path, its in made.items() if path not in failed for item in its]
    return out, list(failed.items())


def name_neighbours(paths: set[Path], inputs: Sequence[Path]) -> set[Path]:
    """Those of ``inputs`` that are in ``paths``, and every input whose output names may meet
    theirs, directly or through others: all of an input's names start with its stem (a face of
    ``a.jpg`` is ``a_1``), so two inputs' names can meet only when one stem is the other's followed
    by ``_``. Reading these too, a shard refuses a clashing name as the whole folder's plan does."""
    by_stem = {path.stem: path for path in inputs}
    stems = sorted(by_stem)
    found = paths & set(inputs)
    pending = list(found)
    while pending:
        stem = pending.pop().stem
        shorter = ["_".join(stem.split("_")[:n]) for n in range(1, stem.count("_") + 1)]
        # the stems that start with stem + "_" sort together, before stem + "`" ("`" follows "_")
        longer = stems[bisect.bisect_left(stems, stem + "_") : bisect.bisect_left(stems, stem + "`")]
        for other in [*(short for short in shorter if short in by_stem), *longer]:
            if by_stem[other] not in found:
                found.add(by_stem[other])
                pending.append(by_stem[other])
    return found


def check_options(options: SearchOptions) -> None:
    """Fail before any search when the loss string, optimizer or backend names nothing loadable
    (no backend named: the generator's default)."""
    try:
        parse_loss_str(options.loss_str, plugins.available("losses"))
        plugins.load("optimizers", options.opt_name)
        if options.backend is not None:
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
    refused with their cause, the shard's report, contact-sheet and lock-file paths, and the files
    left out because they are not images."""

    todo: list[Item]
    done: list[Item]
    refused: list[tuple[Path, str]]
    shard: Shard | None
    report_path: Path
    sheet_path: Path
    lock_path: Path
    ignored: list[Path] = field(default_factory=list)


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
    reader: InputReader | None = None,
) -> Plan:
    """Plan the job over ``input_dir`` (or ``shard``'s slice of it, from the environment under
    ``paddle.distributed.launch`` when none is given), each input read for what it is by
    ``reader`` (without one, every input is searched as it is); ``UpsampleError`` when it cannot
    start."""
    if output_dir.resolve() == input_dir.resolve():
        raise UpsampleError(f"output folder {output_dir} must differ from the input folder")
    files = list_inputs(input_dir)
    ignored = [path for path in files if not is_image_file(path)]
    inputs = [path for path in files if path not in ignored]
    if not inputs:
        raise UpsampleError(f"input folder {input_dir} has no images to upsample ({len(files)} other files)")
    check_options(options)
    items, refused = plan_items(inputs, options.duplicates)  # names clash across shards too
    shard = shard or Shard.from_env()
    mine = set(inputs if shard is None else shard.select(inputs))
    if reader is not None:  # faces are looked for in this worker's photos, and in those its names meet
        read = name_neighbours(mine, [item.path for item in items])
        items, failed = read_items([item for item in items if item.path in read], reader)
        refused += failed
    items = [item for item in items if item.path in mine]
    refused = [(path, cause) for path, cause in refused if path in mine]
    done = [item for item in items if not overwrite and (output_dir / item.output).is_file()]
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
        ignored=ignored,
    )
