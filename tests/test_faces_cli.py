"""``pulse faces``: aligned crops, one JSON per face, an annotated photo; a faceless photo fails alone."""

from __future__ import annotations

import json
import shutil

from PIL import Image
from typer.testing import CliRunner

from pulse_cli.cli import app
from pulse_cli.faces.detect import KEYPOINTS

runner = CliRunner()


def test_faces_writes_crops_json_and_annotated_photo_and_a_faceless_photo_fails_alone(
    mtcnn_cache, reference_dir, tmp_path
):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut_512.png", "coffee_500x333.png"):
        shutil.copy(reference_dir / "images" / name, photos / name)
    out = tmp_path / "out"
    result = runner.invoke(app, ["faces", str(photos), "-o", str(out), "--input-size", "32"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors == [f"error: {photos / 'coffee_500x333.png'}: no face found"]
    assert "Traceback" not in result.output
    assert Image.open(out / "faces" / "astronaut_512_1.png").size == (32, 32)
    assert Image.open(out / "annotated" / "astronaut_512.png").size == (512, 512)
    record = json.loads((out / "faces" / "astronaut_512_1.json").read_text())
    assert set(record["keypoints"]) == set(KEYPOINTS) and len(record["box"]) == 4
    assert record["confidence"] > 0.99 and record["transform"]["size"] == 32
    assert len(record["transform"]["matrix"]) == 2 and len(record["transform"]["quad"]) == 4
    assert not (out / "annotated" / "coffee_500x333.png").exists()


def test_faces_accounts_for_every_file_a_gif_photo_found_a_broken_one_failed_a_text_left_out(
    mtcnn_cache, reference_dir, tmp_path
):
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = Image.open(reference_dir / "images" / "astronaut_512.png").convert("RGB")
    photo.convert("P", palette=Image.Palette.ADAPTIVE).save(photos / "astronaut.gif")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    (photos / "notes.txt").write_text("not a photo\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["faces", str(photos), "-o", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    (gif,) = [line for line in lines if line.startswith(f"{photos / 'astronaut.gif'}: ")]
    assert "face(s): astronaut_1 (" in gif
    assert "1 photo(s) failed; 1 file(s) not images (left out)" in result.stdout
    note, error = [line for line in result.stderr.splitlines() if line.strip()]
    assert note == f"note: {photos / 'notes.txt'} is not an image: left out"
    assert error.startswith(f"error: {photos / 'broken.jpg'}: truncated or corrupt")
    assert (out / "faces" / "astronaut_1.png").is_file() and (out / "annotated" / "astronaut.png").is_file()


def test_faces_refuses_an_input_size_outside_8_to_64(tmp_path):
    result = runner.invoke(app, ["faces", str(tmp_path), "-o", str(tmp_path / "out"), "--input-size", "128"])
    assert result.exit_code == 2
