"""Atomic writes: a finished file appears whole, an interrupted one leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pulse_cli.atomic import atomic_save_image, atomic_write


class Interrupted(Exception):
    pass


def test_write_replaces_the_target_with_the_whole_content(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as file:
        file.write(b"new ")
        file.write(b"content")
        assert target.read_bytes() == b"old"  # readers see the old file until the end
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_the_temporary_file_is_dot_prefixed_beside_the_target(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "out.txt", "w") as file:
        file.write("text")
        (temp,) = os.listdir(tmp_path)
        assert temp.startswith(".out.txt.")
    assert (tmp_path / "out.txt").read_text() == "text"


def test_interrupted_write_leaves_no_file_and_no_temporary(tmp_path: Path) -> None:
    with pytest.raises(Interrupted):
        with atomic_write(tmp_path / "out.bin") as file:
            file.write(b"partial")
            raise Interrupted
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_existing_target_intact(tmp_path: Path) -> None:
    target = tmp_path / "result.png"
    target.write_bytes(b"the previous result")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as file:
            file.write(b"half of a new")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"the previous result"
    assert os.listdir(tmp_path) == ["result.png"]


def test_new_files_get_the_permissions_the_umask_allows(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.bin") as file:
            file.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644


def test_modes_that_do_not_write_a_whole_file_are_refused(tmp_path: Path) -> None:
    for mode in ("ab", "r+b", "rb"):
        with pytest.raises(ValueError, match="write-only mode"):
            with atomic_write(tmp_path / "out.bin", mode):
                pass
    assert os.listdir(tmp_path) == []


def test_save_image_writes_the_format_its_extension_names(tmp_path: Path) -> None:
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    atomic_save_image(Image.fromarray(pixels), tmp_path / "face.png")
    with Image.open(tmp_path / "face.png") as saved:
        assert saved.format == "PNG"
        np.testing.assert_array_equal(np.asarray(saved), pixels)
    atomic_save_image(Image.fromarray(pixels), tmp_path / "face.JPG", quality=95)
    with Image.open(tmp_path / "face.JPG") as saved:
        assert saved.format == "JPEG" and saved.size == (5, 4)
    assert sorted(os.listdir(tmp_path)) == ["face.JPG", "face.png"]


def test_save_image_failure_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"face\.xyz: unknown image extension '\.xyz'"):
        atomic_save_image(Image.new("RGB", (2, 2)), tmp_path / "face.xyz")
    with pytest.raises(OSError):  # JPEG cannot hold an alpha channel
        atomic_save_image(Image.new("RGBA", (2, 2)), tmp_path / "face.jpg")
    assert os.listdir(tmp_path) == []
