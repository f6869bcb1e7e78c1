"""Each face is searched at the largest size its photo holds: what its crop spans in the photo,
stepped down while the crop is too blurred to hold detail at that size."""

from __future__ import annotations

import numpy as np
import scipy.ndimage
from PIL import Image

from pulse_cli.faces.align import align
from pulse_cli.faces.sizes import DETAIL_FLOOR, LARGEST, SMALLEST, choose_crop_size, choose_input_size, detail
from pulse_cli.images import read_image


def _astronaut(reference_dir, scale: float = 1.0, blur: float = 0.0) -> np.ndarray:
    photo = Image.open(reference_dir / "images" / "astronaut_512.png").convert("RGB")
    if scale != 1.0:
        photo = photo.resize((round(512 * scale), round(512 * scale)), Image.Resampling.LANCZOS)
    pixels = np.asarray(photo, np.float32) / 255.0
    if blur:
        pixels = scipy.ndimage.gaussian_filter(pixels, [blur, blur, 0])
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def test_a_large_sharp_face_is_searched_at_the_largest_size(detector, reference_dir):
    photo = _astronaut(reference_dir)
    (face,) = detector(photo)
    choice = choose_input_size(photo, face.keypoints, 1024)
    assert choice.size == LARGEST and f"holds detail at {LARGEST} px" in choice.reason


def test_a_face_smaller_than_a_size_is_not_enlarged_to_it(detector, reference_dir):
    photo = _astronaut(reference_dir, scale=0.2)  # the face's crop spans about 50 px
    (face,) = detector(photo)
    span = align(photo, face.keypoints, 16).side_in_photo
    choice = choose_input_size(photo, face.keypoints, 1024)
    assert SMALLEST < choice.size < span < LARGEST
    assert choice.reason.startswith(f"the face's crop in the photo spans {span:.0f} px")


def test_a_blurred_face_steps_down_to_the_size_it_holds(detector, reference_dir):
    sharp = _astronaut(reference_dir)
    (face,) = detector(sharp)
    blurred = _astronaut(reference_dir, blur=6.0)
    assert detail(align(blurred, face.keypoints, LARGEST).image) < DETAIL_FLOOR
    choice = choose_input_size(blurred, face.keypoints, 1024)
    assert choice.size < LARGEST and f"too blurred for {LARGEST} px" in choice.reason


def test_sizes_stay_within_what_the_model_takes(detector, reference_dir):
    photo = _astronaut(reference_dir)
    (face,) = detector(photo)
    assert choose_input_size(photo, face.keypoints, 64).size == 32  # a 64 px model's largest input


def test_an_aligned_crop_is_sized_as_a_face_of_a_photo(detector, reference_dir):
    photo = read_image(reference_dir / "images" / "astronaut_512.png")
    (face,) = detector(photo)
    crop = align(photo, face.keypoints, 256).image
    assert choose_crop_size(crop, 1024).size == LARGEST
    assert choose_crop_size(crop[:, :24, :24], 1024).size == SMALLEST  # 24 px hold no 32 px crop
