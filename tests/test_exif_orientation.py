"""Photos as cameras store them: a phone photo stored sideways with an EXIF Orientation tag is
detected, aligned, pasted back and annotated upright."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from pulse_cli.faces.extract import extract_photo
from pulse_cli.images import ORIENTATION_TAG, read_image
from pulse_cli.options import SearchOptions
from pulse_cli.upsample import upsample_folder
from pulse_cli.upsample.inputs import image_size


def _phone_photo(reference_dir: Path, path: Path) -> Path:
    """Grace Hopper (512x600 upright) stored as a phone stores a portrait: the pixels turned a
    quarter anticlockwise, Orientation 6 (turn them clockwise to show them)."""
    upright = Image.open(reference_dir / "images" / "grace_hopper_512x600.jpg").convert("RGB")
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif.tobytes())
    return path


def test_a_sideways_phone_photo_is_read_upright(reference_dir, tmp_path):
    phone = _phone_photo(reference_dir, tmp_path / "phone.jpg")
    assert Image.open(phone).size == (600, 512)  # as stored
    assert image_size(phone) == (512, 600)
    image = read_image(phone)
    upright = read_image(reference_dir / "images" / "grace_hopper_512x600.jpg")
    assert image.shape == upright.shape
    assert np.abs(image - upright).mean() < 0.02  # the same picture, re-encoded once


def test_faces_of_a_sideways_phone_photo_are_found_and_annotated_upright(detector, reference_dir, tmp_path):
    phone = _phone_photo(reference_dir, tmp_path / "phone.jpg")
    faces = extract_photo(phone, tmp_path / "out", detector, 16)
    (found,) = faces.found
    left_eye, right_eye = found.face.keypoints[:2]
    assert right_eye[0] - left_eye[0] > 4 * abs(right_eye[1] - left_eye[1])  # eyes side by side
    upright = detector(read_image(reference_dir / "images" / "grace_hopper_512x600.jpg"))[0]
    np.testing.assert_allclose(found.face.keypoints, upright.keypoints, atol=4)
    assert Image.open(tmp_path / "out" / "annotated" / "phone.png").size == (512, 600)


def test_a_sideways_phone_photo_is_pasted_back_upright(dcgan_generator, detector, reference_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _phone_photo(reference_dir, inputs / "phone.jpg")
    out = tmp_path / "out"
    upsample_folder(dcgan_generator, inputs, out, SearchOptions(steps=1, seed=1), detector=detector)
    (record,) = json.loads((out / "report.json").read_text())["images"]
    assert record["status"] == "ok"
    width, height = Image.open(out / "photos" / "phone.png").size
    assert height > width  # portrait, as shown, not as stored
