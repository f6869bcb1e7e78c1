"""Identity as a measured quantity: dlib's face-recognition distance between a face as its photo
holds it and an output, opt-in in report.json (``--identity``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pulse_cli.faces.align import align
from pulse_cli.faces.identity import SAME_PERSON, held_face, identity_scorer
from pulse_cli.images import read_image
from pulse_cli.options import SearchOptions
from pulse_cli.upsample import UpsampleError, upsample_folder


def _enlarged(face: np.ndarray, side: int) -> np.ndarray:
    """A face crop shrunk to ``side`` px and enlarged back to its size, bicubic."""
    pixels = Image.fromarray((np.clip(face.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8))
    bicubic = Image.Resampling.BICUBIC
    small = pixels.resize((side, side), bicubic).resize(pixels.size, bicubic)
    return np.asarray(small, np.float32).transpose(2, 0, 1) / 255


def test_the_same_face_is_the_same_person_and_two_people_are_not(detector, reference_dir):
    scorer = identity_scorer()
    astronaut = read_image(reference_dir / "images" / "astronaut_512.png")
    hopper = read_image(reference_dir / "images" / "grace_hopper_512x600.jpg")
    a = held_face(astronaut, detector(astronaut)[0].keypoints)
    b = held_face(hopper, detector(hopper)[0].keypoints)
    assert scorer.distance(a, _enlarged(a, 64)) < SAME_PERSON  # a 64 px face keeps its person
    assert scorer.distance(a, b) > SAME_PERSON


def test_a_held_face_is_cropped_at_the_side_it_spans_in_the_photo(detector, reference_dir):
    photo = read_image(reference_dir / "images" / "grace_hopper_512x600.jpg")
    keypoints = detector(photo)[0].keypoints
    span = align(photo, keypoints, 16).side_in_photo
    assert held_face(photo, keypoints).shape[-1] == min(round(span), 256)


def test_identity_is_recorded_per_output_when_asked(dcgan_generator, detector, reference_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.open(reference_dir / "images" / "astronaut_512.png").save(inputs / "astronaut.png")
    out = tmp_path / "out"
    options = SearchOptions(steps=1, seed=1)
    upsample_folder(dcgan_generator, inputs, out, options, identity=True, detector=detector)
    (record,) = json.loads((out / "report.json").read_text())["images"]
    assert record["status"] == "ok" and 0 < record["identity"] < 2


def test_identity_without_dlib_is_a_one_line_error(dcgan_generator, tmp_path, monkeypatch):
    import builtins

    from pulse_cli.faces import identity

    real_import = builtins.__import__

    def no_dlib(name, *args, **kwargs):
        if name == "dlib":
            raise ImportError("No module named 'dlib'")
        return real_import(name, *args, **kwargs)

    identity.identity_scorer.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_dlib)
    (tmp_path / "in").mkdir()
    with pytest.raises(UpsampleError, match=r"identity needs dlib: pip install \"pulse-cli\[identity\]\""):
        upsample_folder(dcgan_generator, tmp_path / "in", tmp_path / "out", identity=True)
    identity.identity_scorer.cache_clear()
