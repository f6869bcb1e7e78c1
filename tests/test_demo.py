"""``pulse demo``: faces from held-out seeds, downscaled, upsampled back, compared on one sheet."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from pulse_cli.cli import app
from pulse_cli.demo import make_faces


def test_demo_writes_inputs_outputs_report_and_a_five_row_sheet(dcgan_cache, tmp_path):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "-o", str(folder), "--faces", "2", "--steps", "3"])
    assert result.exit_code == 0, result.output
    names = ["face_0", "face_1"]
    assert sorted(p.stem for p in (folder / "inputs").iterdir()) == names
    assert all(Image.open(folder / "inputs" / f"{n}.png").size == (16, 16) for n in names)
    assert all(Image.open(folder / "originals" / f"{n}.png").size == (64, 64) for n in names)
    assert all(Image.open(folder / "outputs" / f"{n}.png").size == (64, 64) for n in names)
    report = json.loads((folder / "outputs" / "report.json").read_text())
    assert [image["name"] for image in report["images"]] == names
    assert report["contact_sheet"] == "contact_sheet.png"
    sheet = Image.open(folder / "outputs" / "contact_sheet.png")
    cell, gap, title = 128, 4, 34
    assert sheet.height == title + 5 * (cell + gap) + gap  # four rows and the originals


def test_demo_faces_are_reproducible_and_distinct(dcgan_generator):
    faces = make_faces(dcgan_generator, 3)
    assert faces.shape == (3, 3, 64, 64) and 0 <= faces.min() and faces.max() <= 1
    np.testing.assert_array_equal(faces, make_faces(dcgan_generator, 3))
    assert np.abs(faces[0] - faces[1]).mean() > 0.01
