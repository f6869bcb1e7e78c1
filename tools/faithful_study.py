"""How faithful each search method is on real photos (README, "Faithful faces").

Every face kept in the ``--photos`` (MTCNN, then ``pulse_cli.faces.screen``) is aligned
at the input size the method asks for (``chosen``: what ``pulse upsample`` picks per face,
``pulse_cli.faces.sizes``; or a number) and searched alone (batch 1, seed ``--seed``) with the
default model. Each output is scored: eps met at its input size, best L2 (and the generator's own,
before the faithful strategy's consistency step), seconds, NIQE (MATLAB) of
the 1024 px output, and the dlib identity distance (``pulse_cli.faces.identity``) between the
face as the photo holds it (its FFHQ crop at its side in the photo, at most 256 px) and the output.

Methods (``--method``, repeatable): ``pulse16`` (PULSE's own setting: 16 px, ``--strategy pulse``,
the model's default layout), ``faithful`` (``--strategy faithful`` at the chosen size), or either
with option or ``FaithfulPlan`` overrides after a colon: ``faithful:steps=60,noise_reach=1``. Runs go face by
face, so a study cut short still compares the methods on the same faces; a rerun into the same
folder skips runs already in ``results.jsonl``.

Writes, in ``--out``: ``results.jsonl`` (a record per run), ``table.md`` (per method: faces, eps
met, identity kept, mean NIQE, mean seconds) and ``outputs/{method}/{face}.png`` (1024 px).

    pip install -e ".[cpu,identity]"
    python tools/faithful_study.py --out study --photos ../shared/reference/images/study \\
        --method pulse16 --method faithful --max-faces 12
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from pulse_cli import allocator, threads
from pulse_cli.atomic import atomic_save_image, atomic_write
from pulse_cli.faces.align import align
from pulse_cli.faces.detect import default_detector
from pulse_cli.faces.identity import SAME_PERSON, held_face, identity_scorer
from pulse_cli.faces.screen import drop_reason
from pulse_cli.faces.sizes import choose_input_size
from pulse_cli.faithful import FaithfulPlan, faithful_search
from pulse_cli.images import read_image, to_pil
from pulse_cli.models.registry import DEFAULT_MODEL, load_generator
from pulse_cli.niqe import niqe
from pulse_cli.options import SearchOptions
from pulse_cli.search import search


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True, help="a folder of photos")
    parser.add_argument("--method", action="append", default=[], help="pulse16, faithful[:k=v,...]")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--max-faces", type=int, default=None, help="stop after this many faces")
    parser.add_argument("--only", default=None, help="comma-separated face names to run")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def _value(text: str) -> int | float | str | None:
    """An override's value: a whole number, a number, None, or the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None if text == "None" else text


def _method(text: str) -> tuple[str, SearchOptions, int | None, FaithfulPlan]:
    """A method's name, its search options, its forced input size (None: chosen per face) and, for
    the faithful strategy, its plan (``key=value`` names an option or a ``FaithfulPlan`` field)."""
    base, _, overrides = text.partition(":")
    if base == "pulse16":
        options, size = SearchOptions(strategy="pulse"), 16
    elif base == "faithful":
        options, size = SearchOptions(strategy="faithful"), None
    else:
        raise SystemExit(f"unknown method {base!r}")
    plan = FaithfulPlan()
    for pair in filter(None, overrides.split(",")):
        key, value = pair.split("=")
        if key == "size":
            size = int(value)
            continue
        target = plan if key in {f.name for f in fields(FaithfulPlan)} else options
        typed = _value(value)
        if target is plan:
            plan = replace(plan, **{key: typed})
        else:
            options = options.with_(**{key: typed})
    return text, options, size, plan


def _faces(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, photo [3,H,W], keypoints [5,2]) of every face kept in every photo, in file order."""
    detector = default_detector()
    faces = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        photo = read_image(path)
        kept = [face for face in detector(photo) if drop_reason(face) is None]
        faces.extend((f"{path.stem}_{k}", photo, face.keypoints) for k, face in enumerate(kept, start=1))
    return faces


def _table(records: list[dict]) -> str:
    by_method: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_method[record["method"]].append(record)
    lines = [
        "| method | faces | eps met | identity kept (< 0.6) | mean dlib distance | mean NIQE | mean s/face |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, rows in by_method.items():
        n = len(rows)
        lines.append(
            f"| {method} | {n} | {sum(r['eps_met'] for r in rows)}/{n} "
            f"| {sum(r['identity'] < SAME_PERSON for r in rows)}/{n} "
            f"| {np.mean([r['identity'] for r in rows]):.3f} | {np.mean([r['niqe'] for r in rows]):.2f} "
            f"| {np.mean([r['seconds'] for r in rows]):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = _arguments()
    allocator.apply("tuned")  # as pulse runs a search (pulse_cli.cli): before the big tensors
    threads.apply()
    methods = [_method(text) for text in args.method or ["pulse16", "faithful"]]
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {(r["method"], r["face"]) for r in records}
    generator = load_generator(args.model)
    scorer = identity_scorer()
    faces = _faces(args.photos)
    if args.only:
        wanted = set(args.only.split(","))
        faces = [face for face in faces if face[0] in wanted]
    for name, photo, keypoints in faces[: args.max_faces]:
        side_in_photo = align(photo, keypoints, 16).side_in_photo
        reference = held_face(photo, keypoints)
        for method, options, forced, plan in methods:
            if (method, name) in done:
                continue
            choice = choose_input_size(photo, keypoints, generator.resolution)
            size = forced or choice.size
            ref = align(photo, keypoints, size).image[None]
            began = time.perf_counter()
            options = options.with_(seed=args.seed)
            if options.strategy == "faithful":
                result = faithful_search(generator, ref, options, plan=plan)
            else:
                result = search(generator, ref, options)
            seconds = time.perf_counter() - began
            image = result.best_image[0]
            record = {
                "method": method,
                "face": name,
                "side_in_photo": round(side_in_photo, 1),
                "size": size,
                "size_reason": choice.reason if forced is None else "forced",
                "eps_met": bool(result.eps_met[0]),
                "l2": float(result.best_l2[0]),
                "search_l2": None if result.search_l2 is None else float(result.search_l2[0]),
                "steps_run": int(result.steps_run),
                "seconds": round(seconds, 1),
                "identity": round(scorer.distance(reference, image), 4),
                "niqe": round(float(niqe(np.asarray(to_pil(image)))), 3),
            }
            print(json.dumps(record), flush=True)
            folder = args.out / "outputs" / method.replace(":", "_").replace(",", "_").replace("=", "")
            folder.mkdir(parents=True, exist_ok=True)
            atomic_save_image(to_pil(image), folder / f"{name}.png")
            records.append(record)
            with open(results, "a") as file:
                file.write(json.dumps(record) + "\n")
            with atomic_write(args.out / "table.md", "w") as file:
                file.write(_table(records))


if __name__ == "__main__":
    main()
