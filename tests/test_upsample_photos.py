"""Photos into ``pulse upsample``: faces found, aligned, searched, pasted back; aligned crops
downscaled; faceless photos and non-images reported, not fatal; resume per face."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pulse_cli.cli import app
from pulse_cli.faces.align import align
from pulse_cli.faces.paste import default_scale
from pulse_cli.faces.sizes import choose_input_size
from pulse_cli.graphs.bicubic import downscale_array
from pulse_cli.images import MAX_PIXELS, draft_scale, read_image, to_pil
from pulse_cli.options import SearchOptions
from pulse_cli.upsample import FaceOptions, Listener, UpsampleError, upsample_folder

OPTIONS = SearchOptions(steps=2, seed=3)
runner = CliRunner()


def photos(folder: Path, reference_dir: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(reference_dir / "images" / name, folder / name)
    return folder


def by_name(out: Path) -> dict[str, dict]:
    return {record["name"]: record for record in json.loads((out / "report.json").read_text())["images"]}


def two_faces(reference_dir: Path, path: Path) -> Path:
    """A 900x600 group picture: the astronaut on the left half, Grace Hopper on the right."""
    group = Image.new("RGB", (900, 600), (128, 128, 128))
    group.paste(Image.open(reference_dir / "images" / "astronaut_512.png").convert("RGB"), (0, 0))
    hopper = Image.open(reference_dir / "images" / "grace_hopper_512x600.jpg").convert("RGB")
    group.paste(hopper.crop((0, 0, 388, 600)), (512, 0))
    group.save(path)
    return path


class Searched(Listener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def batch_started(self, names):
        self.names.extend(names)


def test_a_photo_gives_its_aligned_face_the_upsampled_face_and_the_photo_pasted_back(
    dcgan_generator, detector, reference_dir, tmp_path
):
    inputs = photos(tmp_path / "in", reference_dir, "astronaut_512.png")
    out = tmp_path / "out"
    report = upsample_folder(dcgan_generator, inputs, out, OPTIONS, detector=detector)
    assert report.summary()["ok"] == 1 and not report.failed

    resolution = dcgan_generator.resolution
    photo = read_image(inputs / "astronaut_512.png")
    (face,) = detector(photo)
    choice = choose_input_size(photo, face.keypoints, resolution)
    size = choice.size
    assert size == resolution // 2  # a 250 px face holds the largest size the 64 px model takes
    aligned = align(photo, face.keypoints, size)
    crop = np.asarray(Image.open(out / "faces" / "astronaut_512_1.png"))
    assert np.array_equal(crop, np.asarray(to_pil(aligned.image)))
    assert Image.open(out / "upsampled" / "astronaut_512_1.png").size == (resolution, resolution)
    scale = default_scale((512, 512), [(resolution, aligned)])
    pasted = read_image(out / "photos" / "astronaut_512.png")
    assert pasted.shape == (3, round(512 * scale), round(512 * scale))

    record = by_name(out)["astronaut_512_1"]
    assert record["status"] == "ok" and record["l2"] is not None
    assert record["face"]["size_reason"] == choice.reason and f"searched at {size} px" in record["note"]
    assert record["output"] == "upsampled/astronaut_512_1.png"
    assert record["crop"] == "faces/astronaut_512_1.png"
    assert record["photo"] == "photos/astronaut_512.png"
    assert record["face"]["confidence"] > 0.99 and len(record["face"]["box"]) == 4
    assert len(record["face"]["keypoints"]) == 5
    np.testing.assert_allclose(record["face"]["transform"]["quad"], aligned.quad, atol=1e-3)
    # away from the face the photo is the photo (enlarged when the face needs it)
    if scale == 1.0:
        ys, xs = np.mgrid[:512, :512]
        at = aligned.to_crop(np.stack([xs, ys], axis=-1).reshape(-1, 2)).reshape(512, 512, 2)
        inside = (at + 0.5) / size  # where each photo pixel lies in the crop, 0..1 across it
        outside = ((inside < -0.01) | (inside > 1.01)).any(axis=-1)
        assert np.abs(pasted[:, outside] - photo[:, outside]).max() <= 0.5 / 255
    changed = np.abs(pasted - photo).max(axis=0) > 4 / 255
    assert changed.any()  # the upsampled face is in


def test_the_faithful_strategys_face_downscales_to_its_crop_and_both_l2s_are_reported(
    dcgan_generator, detector, reference_dir, tmp_path
):
    inputs = photos(tmp_path / "in", reference_dir, "astronaut_512.png")
    out = tmp_path / "out"
    upsample_folder(dcgan_generator, inputs, out, OPTIONS.with_(strategy="faithful"), detector=detector)
    record = by_name(out)["astronaut_512_1"]
    assert record["search_l2"] > record["l2"]  # the generator's image, then made consistent
    crop = read_image(out / "faces" / "astronaut_512_1.png")[None]
    face = read_image(out / "upsampled" / "astronaut_512_1.png")[None]
    l2 = float(((downscale_array(face, face.shape[-1] // crop.shape[-1]) - crop) ** 2).mean())
    assert l2 == pytest.approx(record["l2"], rel=0.05, abs=2e-5)  # as written, 8-bit


def test_a_photo_over_the_decode_limit_is_read_reduced_searched_and_pasted_back(
    dcgan_generator, detector, reference_dir, tmp_path
):
    side = 4800  # 23 MP: over MAX_PIXELS, refused before; JPEGs up to MAX_PHOTO_PIXELS are read reduced
    assert side * side > MAX_PIXELS
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo = Image.open(reference_dir / "images" / "astronaut_512.png").convert("RGB")
    photo.resize((side, side), Image.Resampling.BICUBIC).save(inputs / "astronaut.jpg", quality=90)
    large = copy.copy(detector)
    large.min_face = 400  # the face is some 2000 px wide: a shorter pyramid
    report = upsample_folder(dcgan_generator, inputs, tmp_path / "out", OPTIONS, detector=large)
    assert [(record.name, record.status) for record in report.images] == [("astronaut_1", "ok")]
    read = side // draft_scale(side, side)
    assert f"in astronaut.jpg (a {side}x{side} photo read at {read}x{read})" in report.images[0].note
    assert report.images[0].photo == "photos/astronaut.png"
    assert Image.open(tmp_path / "out" / "photos" / "astronaut.png").size[0] >= read


def test_an_aligned_crop_larger_than_the_input_size_is_downscaled_with_a_note(
    dcgan_generator, detector, reference_dir, tmp_path
):
    photo = read_image(reference_dir / "images" / "astronaut_512.png")
    (face,) = detector(photo)
    inputs = tmp_path / "in"
    inputs.mkdir()
    to_pil(align(photo, face.keypoints, 256).image).save(inputs / "crop256.png")
    out = tmp_path / "out"
    upsample_folder(dcgan_generator, inputs, out, OPTIONS, detector=detector)
    record = by_name(out)["crop256"]
    assert record["status"] == "ok" and record["output"] == "crop256.png" and record["photo"] is None
    side = dcgan_generator.resolution // 2  # the largest size the model takes: the crop holds it
    assert f"downscaled from 256x256 to {side}x{side}" in record["note"]
    assert Image.open(out / "faces" / "crop256.png").size == (side, side)
    assert not (out / "photos").exists()
    # with --detect it is a photo like any other: its face is found and aligned
    forced = tmp_path / "forced"
    detect = FaceOptions(mode="detect")
    upsample_folder(dcgan_generator, inputs, forced, OPTIONS, detector=detector, faces=detect)
    assert by_name(forced)["crop256_1"]["photo"] == "photos/crop256.png"


def test_input_size_16_searches_every_face_at_pulses_16_px(
    dcgan_generator, detector, reference_dir, tmp_path
):
    inputs = photos(tmp_path / "in", reference_dir, "astronaut_512.png")
    out = tmp_path / "out"
    faces = FaceOptions(input_size=16)
    upsample_folder(dcgan_generator, inputs, out, OPTIONS, detector=detector, faces=faces)
    photo = read_image(inputs / "astronaut_512.png")
    (face,) = detector(photo)
    crop = np.asarray(Image.open(out / "faces" / "astronaut_512_1.png"))
    assert np.array_equal(crop, np.asarray(to_pil(align(photo, face.keypoints, 16).image)))
    assert by_name(out)["astronaut_512_1"]["options"]["input_size"] == 16


def test_a_mixed_folder_gives_each_input_its_status_and_exit_code_1(photo_cache, reference_dir, tmp_path):
    inputs = photos(tmp_path / "in", reference_dir, "grace_hopper_512x600.jpg", "coffee_500x333.png")
    to_pil(np.random.default_rng(0).random((3, 16, 16))).save(inputs / "crop16.png")
    (inputs / "notes.txt").write_text("taken in 1984\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["upsample", str(inputs), "-o", str(out), "--steps", "2", "--seed", "1"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {inputs / 'coffee_500x333.png'}: no face found"]
    assert "note: notes.txt is not an image: left out" in result.stderr
    report = json.loads((out / "report.json").read_text())
    statuses = {record["name"]: record["status"] for record in report["images"]}
    assert statuses == {"coffee_500x333.png": "failed", "crop16": "ok", "grace_hopper_512x600_1": "ok"}
    assert report["ignored"] == ["notes.txt"] and report["summary"]["failed"] == 1
    assert (out / "crop16.png").is_file() and (out / "photos" / "grace_hopper_512x600.png").is_file()
    assert "1 failed, 1 not images (left out)" in result.stdout


@pytest.mark.parametrize(
    ("faces", "kept"),
    [(FaceOptions(), 2), (FaceOptions(max_faces=1), 1), (FaceOptions(only_center_face=True), 1)],
)
def test_max_faces_and_only_center_face_choose_which_faces_of_a_photo(
    dcgan_generator, detector, reference_dir, tmp_path, faces, kept
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    group = two_faces(reference_dir, inputs / "group.png")
    found = detector(read_image(group))
    assert len(found) == 2
    out = tmp_path / "out"
    upsample_folder(dcgan_generator, inputs, out, OPTIONS, detector=detector, faces=faces)
    records = by_name(out)
    assert sorted(records) == [f"group_{k}" for k in range(1, kept + 1)]
    assert all(record["photo"] == "photos/group.png" for record in records.values())
    if faces.max_faces:  # the highest score
        assert records["group_1"]["face"]["confidence"] == pytest.approx(found[0].score, abs=1e-6)
        assert "2 found, 1 kept" in records["group_1"]["note"]
    if faces.only_center_face:  # the astronaut's, on the left half, nearer the centre (x 450)
        assert max(x for x, _ in records["group_1"]["face"]["keypoints"].values()) < 512


def test_resume_searches_only_the_faces_without_output_and_pastes_their_photo_again(
    dcgan_generator, detector, reference_dir, tmp_path
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    two_faces(reference_dir, inputs / "group.png")
    out = tmp_path / "out"
    upsample_folder(dcgan_generator, inputs, out, OPTIONS, detector=detector)
    first = (out / "upsampled" / "group_1.png").read_bytes()
    (out / "upsampled" / "group_2.png").unlink()
    (out / "photos" / "group.png").unlink()
    searched = Searched()
    report = upsample_folder(dcgan_generator, inputs, out, OPTIONS, detector=detector, listener=searched)
    assert searched.names == ["group_2"]
    records = by_name(out)
    assert records["group_1"]["status"] == "skipped" and records["group_2"]["status"] == "ok"
    assert (out / "upsampled" / "group_1.png").read_bytes() == first
    assert (out / "photos" / "group.png").is_file() and records["group_2"]["photo"] == "photos/group.png"
    assert report.summary()["skipped"] == 1

    # nothing left to search but the pasted photo lost: pasted again, nothing searched
    (out / "photos" / "group.png").unlink()
    searched.names.clear()
    upsample_folder(dcgan_generator, inputs, out, OPTIONS, detector=detector, listener=searched)
    assert searched.names == [] and (out / "photos" / "group.png").is_file()


def test_an_input_size_the_model_cannot_take_is_a_usage_error(dcgan_generator, tmp_path):
    from pulse_cli.upsample import UpsampleError

    inputs = tmp_path / "in"
    inputs.mkdir()
    to_pil(np.zeros((3, 16, 16))).save(inputs / "a.png")
    faces = FaceOptions(input_size=64)
    with pytest.raises(UpsampleError, match="input size 64 does not work for a 64x64 model: it takes 32/"):
        upsample_folder(dcgan_generator, inputs, tmp_path / "out", OPTIONS, faces=faces)


def test_duplicates_of_a_photo_get_a_photo_each_and_a_face_name_taken_by_a_file_is_refused(
    dcgan_generator, detector, reference_dir, tmp_path
):
    inputs = photos(tmp_path / "in", reference_dir, "astronaut_512.png")
    to_pil(np.zeros((3, 16, 16))).save(inputs / "astronaut_512_1.png")  # the photo's face 1 is named so
    out = tmp_path / "out"
    report = upsample_folder(dcgan_generator, inputs, out, OPTIONS.with_(duplicates=2), detector=detector)
    records = by_name(out)
    assert records["astronaut_512_1.png"]["status"] == "failed"
    assert "clashes with astronaut_512.png's" in records["astronaut_512_1.png"]["error"]
    assert [r.name for r in report.images if r.status == "ok"] == ["astronaut_512_1_1", "astronaut_512_1_2"]
    assert records["astronaut_512_1_2"]["photo"] == "photos/astronaut_512_2.png"
    pasted = sorted(p.name for p in (out / "photos").iterdir())
    assert pasted == ["astronaut_512_1.png", "astronaut_512_2.png"]
    assert sorted(p.name for p in (out / "faces").iterdir()) == ["astronaut_512_1.png"]


def test_a_rerun_with_other_face_options_names_them_unless_told_to_resume(
    dcgan_generator, detector, reference_dir, tmp_path
):
    inputs = photos(tmp_path / "in", reference_dir, "astronaut_512.png")
    out = tmp_path / "out"

    def run(faces: FaceOptions, **extra):
        return upsample_folder(dcgan_generator, inputs, out, OPTIONS, faces=faces, detector=detector, **extra)

    run(FaceOptions(input_size=16))
    assert by_name(out)["astronaut_512_1"]["options"]["input_size"] == 16
    with pytest.raises(UpsampleError, match=r"input_size 16 then, 8 now"):
        run(FaceOptions(input_size=8))
    assert [record.status for record in run(FaceOptions(input_size=8), resume=True).images] == ["skipped"]
    # how the photo is pasted back changes neither the crop nor its search: not compared
    assert [record.status for record in run(FaceOptions(input_size=16, bg_scale=2.0)).images] == ["skipped"]
