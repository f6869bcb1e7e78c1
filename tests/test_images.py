"""Reading inputs: every format and mode becomes RGB floats; every bad file becomes one clear line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from crafted_images import jpeg_declaring, png_header_only
from file_modes import python_obeying_file_modes
from PIL import Image, ImageDraw

from pulse_cli.images import (
    FORMATS,
    MAX_PHOTO_PIXELS,
    MAX_PIXELS,
    InputImageError,
    draft_scale,
    is_image_file,
    load_input,
    read_image,
    upscale_factor,
    valid_sides,
)

ROOT = Path(__file__).resolve().parent.parent


def _gradient(side: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side] * 255
    return np.stack([x // (side - 1), y // (side - 1), (x + y) // (2 * side - 2)], -1).astype(np.uint8)


def _save(image: Image.Image, path: Path, **params) -> Path:
    image.save(path, **params)
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp"])
def test_each_format_reads_as_rgb_floats(tmp_path, suffix):
    pixels = _gradient()
    params = {"quality": 95} if suffix == ".jpg" else {}
    path = _save(Image.fromarray(pixels), tmp_path / f"face{suffix}", **params)
    image = read_image(path)
    assert image.shape == (3, 16, 16) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    lossy = suffix in (".jpg", ".webp")
    assert np.abs(image.transpose(1, 2, 0) * 255 - pixels).max() <= (40 if lossy else 0.5)


def test_grayscale_palette_and_alpha_modes_become_rgb(tmp_path):
    pixels = _gradient()
    rgb = Image.fromarray(pixels)
    gray = rgb.convert("L")
    expected_gray = np.asarray(gray, dtype=np.float32) / 255
    for mode, image in {
        "L": gray,
        "LA": gray.convert("LA"),
        "P": rgb.convert("P"),
        "RGBA": rgb.convert("RGBA"),
    }.items():
        result = read_image(_save(image, tmp_path / f"{mode}.png"))
        assert result.shape == (3, 16, 16), mode
        if mode in ("L", "LA"):
            np.testing.assert_allclose(result, np.broadcast_to(expected_gray, (3, 16, 16)), atol=1e-6)
        if mode == "RGBA":
            np.testing.assert_allclose(result.transpose(1, 2, 0) * 255, pixels, atol=0.5)


def test_transparent_pixels_are_composited_on_black(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:4, :, 3] = 255  # top half opaque white, bottom half transparent white
    image = read_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "alpha.png"))
    assert image[:, :4].min() == 1.0 and image[:, 4:].max() == 0.0


def test_sixteen_bit_grayscale_keeps_its_range(tmp_path):
    values = np.array([[0, 32768], [65535, 16384]], dtype=np.uint16).repeat(4, 0).repeat(4, 1)
    path = _save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    image = read_image(path)
    np.testing.assert_allclose(image[0], values / 65535, atol=1e-6)
    np.testing.assert_array_equal(image[0], image[2])


def _assert_one_line_naming(error: pytest.ExceptionInfo, path: Path, cause: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert cause in message


def test_zero_byte_file_is_refused(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InputImageError) as error:
        read_image(path)
    _assert_one_line_naming(error, path, "empty file (0 bytes)")


@pytest.mark.parametrize(
    "fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("BMP", ".bmp")]
)
def test_truncated_file_is_refused(tmp_path, fmt, suffix):
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(buffer, fmt)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputImageError) as error:
        read_image(path)
    _assert_one_line_naming(error, path, "truncated or corrupt")


def test_header_only_image_is_refused_as_truncated(tmp_path):
    path = tmp_path / "header.png"
    path.write_bytes(png_header_only(16, 16)[:40])
    with pytest.raises(InputImageError) as error:
        read_image(path)
    _assert_one_line_naming(error, path, "truncated or corrupt PNG")


def test_non_image_file_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n")
    with pytest.raises(InputImageError) as error:
        read_image(path)
    _assert_one_line_naming(error, path, "not an image in a supported format")


def test_a_palette_gif_and_a_tiff_are_read_as_their_first_frame_and_page(tmp_path):
    first = Image.fromarray(_gradient()).convert("P")  # a palette image, as GIFs are
    second = Image.new("P", first.size)
    gif, tiff = tmp_path / "face.gif", tmp_path / "face.tif"
    first.save(gif, save_all=True, append_images=[second])
    first.convert("RGB").save(tiff, save_all=True, append_images=[second.convert("RGB")])
    expected = np.asarray(first.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255
    for path in (gif, tiff):
        assert is_image_file(path) and is_image_file(path.rename(path.with_suffix(".data")))
        np.testing.assert_array_equal(read_image(path.with_suffix(".data")), expected)


def test_unsupported_image_format_is_refused(tmp_path):
    path = _save(Image.fromarray(_gradient()), tmp_path / "face.ppm")
    with pytest.raises(InputImageError) as error:
        read_image(path)
    _assert_one_line_naming(error, path, f"not an image in a supported format ({', '.join(FORMATS)})")


def _large_jpeg(path: Path, side: int) -> Path:
    """A ``side``-pixel square JPEG of flat shapes (small on disk: a 9600 px one is about 1.5 MB)."""
    image = Image.new("L", (side, side), 90)
    ImageDraw.Draw(image).ellipse((side // 5, side // 5, side * 4 // 5, side * 4 // 5), fill=200)
    image.save(path, quality=90)
    return path


def test_a_92_megapixel_jpeg_is_read_reduced_by_draft_within_the_pixels_of_a_whole_decode(tmp_path):
    side = 9600
    assert side * side > MAX_PIXELS  # refused before, as too large to decode
    image = read_image(_large_jpeg(tmp_path / "phone.jpg", side))
    scale = draft_scale(side, side)
    assert scale in (2, 4, 8) and image.shape == (3, side // scale, side // scale)
    assert image[0].size <= MAX_PIXELS
    centre, corner = image[:, side // scale // 2, side // scale // 2], image[:, 0, 0]
    np.testing.assert_allclose(centre, 200 / 255, atol=2 / 255)  # the shapes, at the reduced scale
    np.testing.assert_allclose(corner, 90 / 255, atol=2 / 255)


def _peak_rss_reading(path: Path) -> int:
    """The peak resident memory (KiB) of a fresh process that reads ``path`` as an input."""
    code = (
        "import resource, sys\nfrom pulse_cli.images import read_image\nread_image(sys.argv[1])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    run = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return int(run.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_reading_a_92_megapixel_jpeg_takes_no_more_memory_than_the_largest_whole_decode(tmp_path):
    largest_whole = _large_jpeg(tmp_path / "whole.jpg", int(MAX_PIXELS**0.5))
    assert draft_scale(*Image.open(largest_whole).size) == 1
    assert _peak_rss_reading(_large_jpeg(tmp_path / "phone.jpg", 9600)) <= _peak_rss_reading(largest_whole)


@pytest.mark.parametrize(
    ("side", "cause"),
    [
        (20000, f"over the {MAX_PHOTO_PIXELS:,}-pixel limit for a photo"),  # refused from its header
        (16000, "bytes cannot hold a 16000x16000 JPEG: a decompression bomb"),  # within the limit
    ],
)
def test_a_small_jpeg_declaring_a_huge_photo_is_refused_naming_the_file(tmp_path, side, cause):
    path = tmp_path / "bomb.jpg"
    path.write_bytes(jpeg_declaring(side, side))
    assert path.stat().st_size < 1000
    with pytest.raises(InputImageError) as error:
        read_image(path)
    _assert_one_line_naming(error, path, cause)


def test_huge_image_is_refused_from_its_header_before_decoding(tmp_path):
    side = int(MAX_PIXELS**0.5) + 1
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(side, side))
    with pytest.raises(InputImageError) as error:
        read_image(path)
    _assert_one_line_naming(error, path, f"image is {side}x{side}, over the")


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(20000, 20000))  # 400 megapixels announced in a few bytes
    with pytest.raises(InputImageError) as error:
        read_image(path)
    _assert_one_line_naming(error, path, "too many pixels to decode safely")


def test_missing_and_folder_paths_are_refused(tmp_path):
    with pytest.raises(InputImageError) as error:
        read_image(tmp_path / "gone.png")
    _assert_one_line_naming(error, tmp_path / "gone.png", "no such file")
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(InputImageError) as error:
        read_image(tmp_path / "folder.png")
    _assert_one_line_naming(error, tmp_path / "folder.png", "is a folder")


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_unreadable_file_is_refused(tmp_path):
    path = _save(Image.fromarray(_gradient()), tmp_path / "locked.png")
    path.chmod(0)
    code = (
        "from pulse_cli.images import InputImageError, read_image\n"
        f"try:\n    read_image({str(path)!r})\nexcept InputImageError as error:\n    print(error)"
    )
    child = python_obeying_file_modes(code)  # root too: its file-mode override is dropped
    assert child.returncode == 0 and child.stderr.count("Traceback") == 0, child.stderr
    assert child.stdout.strip().splitlines() == [f"{path}: cannot be read (permission denied)"]


def test_file_the_system_refuses_to_open_is_refused(tmp_path, monkeypatch):
    path = _save(Image.fromarray(_gradient()), tmp_path / "locked.png")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(InputImageError) as error:
        read_image(path)
    _assert_one_line_naming(error, path, "cannot be read (permission denied)")


def test_input_must_be_square(tmp_path):
    path = _save(Image.fromarray(_gradient()[:8]), tmp_path / "wide.png")
    with pytest.raises(InputImageError) as error:
        load_input(path, 64)
    _assert_one_line_naming(error, path, "image is 16x8; inputs must be square")


@pytest.mark.parametrize("side", [12, 64, 1])
def test_an_input_of_a_side_the_model_cannot_take_says_which_sides_it_can(tmp_path, side):
    path = _save(Image.new("RGB", (side, side)), tmp_path / f"side{side}.png")
    with pytest.raises(InputImageError) as error:
        load_input(path, 64)
    _assert_one_line_naming(error, path, f"a {side}x{side} input cannot be upsampled")
    sides = "/".join(str(side) for side in valid_sides(64))
    assert f"a 64x64 model takes aligned square faces of {sides} px; larger squares are downscaled" in str(
        error.value
    )
    assert "does not divide" not in str(error.value)


def test_accepted_sides_are_the_power_of_two_fractions(tmp_path):
    assert valid_sides(64) == [32, 16, 8, 4, 2]
    assert [upscale_factor(side, 1024) for side in (16, 32, 512, 24, 1024)] == [64, 32, 2, None, None]
    path = _save(Image.new("RGB", (16, 16), (10, 20, 30)), tmp_path / "square.png")
    np.testing.assert_allclose(load_input(path, 64)[:, 0, 0], np.array([10, 20, 30]) / 255, atol=1e-7)
