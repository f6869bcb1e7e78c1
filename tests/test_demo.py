"""``pulse demo``: faces from held-out seeds, downscaled, upsampled back, compared on one sheet;
a real photo found, aligned, upsampled and pasted back."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from pulse_cli.cli import app
from pulse_cli.demo import PHOTO, expected_seconds, make_faces
from pulse_cli.images import read_image
from pulse_cli.models.mobile_stylegan import MOBILE_STYLEGAN_FFHQ


def test_demo_writes_inputs_outputs_report_and_a_five_row_sheet(photo_cache, tmp_path):
    folder = tmp_path / "demo"
    args = ["demo", "-o", str(folder), "--model", "dcgan-digiface", "--faces", "2", "--steps", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    names = ["face_0", "face_1"]
    inputs = sorted(p.name for p in (folder / "inputs").iterdir())
    assert inputs == ["astronaut.jpg", "face_0.png", "face_1.png"]
    assert all(Image.open(folder / "inputs" / f"{n}.png").size == (16, 16) for n in names)
    originals = [*names, "astronaut_1"]
    assert all(Image.open(folder / "originals" / f"{n}.png").size == (64, 64) for n in originals)
    assert all(Image.open(folder / "outputs" / f"{n}.png").size == (64, 64) for n in names)
    # the photo, end to end: its face found, aligned at the size it holds (the largest a 64 px
    # model takes: 32 px), upsampled, pasted back
    outputs = folder / "outputs"
    assert Image.open(outputs / "faces" / "astronaut_1.png").size == (32, 32)
    assert Image.open(outputs / "upsampled" / "astronaut_1.png").size == (64, 64)
    assert Image.open(outputs / "photos" / "astronaut.png").size == Image.open(PHOTO).size
    report = json.loads((outputs / "report.json").read_text())
    assert [image["name"] for image in report["images"]] == ["astronaut_1", *names]
    assert report["images"][0]["photo"] == "photos/astronaut.png"
    assert report["contact_sheet"] == "contact_sheet.png"
    sheet = Image.open(outputs / "contact_sheet.png")
    cell, gap, title = 128, 4, 34
    assert sheet.height == title + 5 * (cell + gap) + gap  # four rows and the originals


def test_the_demo_photo_is_a_small_jpeg_with_one_face(detector):
    assert PHOTO.suffix == ".jpg" and PHOTO.stat().st_size < 100_000
    assert len(detector(read_image(PHOTO))) == 1


def test_demo_faces_are_reproducible_and_distinct(dcgan_generator):
    faces = make_faces(dcgan_generator, 3)
    assert faces.shape == (3, 3, 64, 64) and 0 <= faces.min() and faces.max() <= 1
    np.testing.assert_array_equal(faces, make_faces(dcgan_generator, 3))
    assert np.abs(faces[0] - faces[1]).mean() > 0.01


def test_faces_of_a_model_with_a_mapping_are_drawn_through_it_truncated_to_the_mean():
    small = MOBILE_STYLEGAN_FFHQ.build(**MOBILE_STYLEGAN_FFHQ.small_config)
    faces = make_faces(small, 2)
    assert faces.shape == (2, 3, 32, 32) and np.abs(faces[0] - faces[1]).mean() > 1e-4
    at_the_mean = make_faces(small, 2, truncation=0.0)  # every face is the mean w's
    np.testing.assert_allclose(at_the_mean[0], at_the_mean[1], atol=1e-6)


def test_expected_time_grows_with_faces_and_steps(dcgan_generator):
    assert 0 < expected_seconds(dcgan_generator, 1, 5) < expected_seconds(dcgan_generator, 4, 50)
