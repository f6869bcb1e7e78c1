"""Which latent layout to search a generator with, measured (README "Latent layouts").

Inputs: ``--faces`` faces drawn from the generator (held-out seeds, ``pulse_cli.demo.make_faces``:
its own mapping, truncation 0.7, its default noise) and downscaled to ``--side`` px, plus each
``--photo`` (a real low-resolution face, such as the reference fixtures' CelebA-HQ 229 at 16 px).
Each input is searched alone (batch 1, seed ``--seed``, PULSE's loss, eps and schedule, ``--steps``
steps with early stop at eps) in each of ``--layouts``; ``full`` (W+, 23 rows for MobileStyleGAN)
only on the first ``--full-inputs`` inputs, being the one the prototype found worst and the slowest
to show it. Runs go input by input, so a study cut short still compares the layouts on the same
inputs; a rerun into the same folder skips the runs already in ``results.json``.

Writes, in ``--out``: ``results.json`` (one record per run: layout, input, eps met, best L2, best
step, steps run, seconds, NIQE (matlab) of the 1024 px output), ``table.md`` (per layout: runs,
eps-met rate, mean L2, mean NIQE, mean seconds), ``outputs/{layout}/{input}.png``, and
``contact_sheet_{layout}_faces.png`` (pulse's contact sheet of the drawn faces, with their originals
in the last row) and ``contact_sheet_{layout}_photos.png`` (the photos').

    python tools/latent_layout_study.py --out study --faces 7 --photo \\
        ../shared/reference/images/celebahq_000229_16.png --steps 40 --full-inputs 3
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from pulse_cli.atomic import atomic_save_image, atomic_write
from pulse_cli.contact_sheet import SheetColumn, save_contact_sheet
from pulse_cli.demo import make_faces
from pulse_cli.graphs.bicubic import downscale_images
from pulse_cli.images import read_image, to_pil
from pulse_cli.models.registry import DEFAULT_MODEL, load_generator
from pulse_cli.niqe import niqe
from pulse_cli.options import LATENT_LAYOUTS, SearchOptions
from pulse_cli.search import search

STUDY_FACE_SEED = 3_000_000  # held out from the search's seeds and from the demo's faces


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--faces", type=int, default=7, help="faces drawn from the generator")
    parser.add_argument("--photo", type=Path, action="append", default=[], help="a real low-resolution face")
    parser.add_argument("--side", type=int, default=16, help="input side for the drawn faces")
    parser.add_argument("--layouts", default="tiled,shared,full")
    parser.add_argument("--full-inputs", type=int, default=3, help="inputs the full layout (W+) runs on")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def _inputs(generator, args) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(name, low-resolution input [3,r,r], original [3,R,R] or None), photos first."""
    inputs = [(photo.stem, read_image(photo), None) for photo in args.photo]
    faces = make_faces(generator, args.faces, seed=STUDY_FACE_SEED)
    small = downscale_images(faces, generator.resolution // args.side)
    inputs += [(f"face_{i}", lr, face) for i, (lr, face) in enumerate(zip(small, faces))]
    return inputs


def _table(records: list[dict]) -> str:
    lines = [
        "| layout | runs | eps met | mean L2 | mean NIQE (matlab) | mean seconds |",
        "|---|---|---|---|---|---|",
    ]
    for layout in LATENT_LAYOUTS:
        runs = [r for r in records if r["layout"] == layout]
        if runs:
            met = sum(r["eps_met"] for r in runs)
            lines.append(
                f"| {layout} | {len(runs)} | {met}/{len(runs)} | {np.mean([r['l2'] for r in runs]):.2e} | "
                f"{np.mean([r['niqe'] for r in runs]):.2f} | {np.mean([r['seconds'] for r in runs]):.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = _arguments()
    layouts = args.layouts.split(",")
    generator = load_generator(args.model)
    inputs = _inputs(generator, args)
    results_path = args.out / "results.json"
    records = json.loads(results_path.read_text()) if results_path.exists() else []
    done = {(r["layout"], r["input"]) for r in records}
    columns: dict[tuple[str, str], list[SheetColumn]] = defaultdict(list)
    for index, (name, lr, original) in enumerate(inputs):
        for layout in layouts:
            if layout == "full" and index >= args.full_inputs:
                continue
            path = args.out / "outputs" / layout / f"{name}.png"
            if (layout, name) not in done:
                options = SearchOptions(
                    seed=args.seed, steps=args.steps, latent_layout=layout, early_stop=True
                )
                began = time.perf_counter()
                result = search(generator, lr[None], options)
                seconds = time.perf_counter() - began
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_save_image(to_pil(result.best_image[0]), path)
                records.append({
                    "layout": layout, "input": name, "eps_met": bool(result.eps_met[0]),
                    "l2": float(result.best_l2[0]), "best_step": int(result.best_step[0]),
                    "steps_run": result.steps_run, "seconds": round(seconds, 1),
                    "niqe": niqe(path, variant="matlab"),
                })  # fmt: skip
                with atomic_write(results_path, "w") as file:
                    json.dump(records, file, indent=1)
                with atomic_write(args.out / "table.md", "w") as file:
                    file.write(_table(records))
                print(json.dumps(records[-1]), flush=True)
            record = next(r for r in records if r["layout"] == layout and r["input"] == name)
            kind = "photos" if original is None else "faces"  # a sheet shows originals only if all have one
            columns[layout, kind].append(
                SheetColumn(name, lr, read_image(path), record["l2"], record["eps_met"], original)
            )
            sheet = args.out / f"contact_sheet_{layout}_{kind}.png"
            save_contact_sheet(columns[layout, kind], sheet, generator.resolution)
    print(_table(records))


if __name__ == "__main__":
    main()
