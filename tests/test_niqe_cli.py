"""``pulse niqe``: files and folders in, a row per image plus the mean out, exit 1 on any failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from crafted_images import png_header_only
from typer.testing import CliRunner

import pulse_cli.cli.niqe  # noqa: F401  (registers the command)
from pulse_cli.cli.app import app
from pulse_cli.images import MAX_PIXELS
from pulse_cli.niqe import niqe

runner = CliRunner()


@pytest.fixture
def folder(reference_dir, tmp_path):
    """Two scorable images, a too-small one and a file that is not an image."""
    for name in ("coffee_500x333.png", "camera_gray_512.png", "celebahq_000229_16.png"):
        shutil.copy(reference_dir / "images" / name, tmp_path / name)
    (tmp_path / "notes.png").write_text("not an image")
    return tmp_path


def test_json_report_has_a_score_or_a_reason_per_image_and_the_mean(folder):
    result = runner.invoke(app, ["niqe", str(folder), "--json", "--variant", "paddle-pulse"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    rows = {Path(entry["path"]).name: entry for entry in report["images"]}
    assert list(rows) == ["camera_gray_512.png", "celebahq_000229_16.png", "coffee_500x333.png", "notes.png"]
    coffee = niqe(folder / "coffee_500x333.png", "paddle-pulse")
    assert rows["coffee_500x333.png"]["niqe"] == pytest.approx(coffee)
    assert rows["celebahq_000229_16.png"]["error"] == "too small: 16x16 px"
    assert "not an image file" in rows["notes.png"]["error"]
    camera = niqe(folder / "camera_gray_512.png", "paddle-pulse")
    assert report["mean"] == pytest.approx((coffee + camera) / 2)
    assert report["mean_of"] == 2 and report["too_small"] == 1
    assert report["variant"] == "paddle-pulse"


def test_table_lists_each_image_and_the_mean_and_exits_0_when_all_score(reference_dir):
    image = reference_dir / "images" / "coffee_500x333.png"
    result = runner.invoke(app, ["niqe", str(image)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stdout
    assert "coffee_500x333.png" in result.stdout
    assert "mean of 1 image " in result.stdout
    assert f"{niqe(image):.4f}" in result.stdout


def test_missing_paths_get_a_row_and_exit_1(tmp_path):
    result = runner.invoke(app, ["niqe", str(tmp_path / "missing.png"), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["images"][0]["error"] == "no such file or folder"


def test_unknown_variant_is_a_usage_error(reference_dir):
    result = runner.invoke(app, ["niqe", str(reference_dir / "images"), "--variant", "nope"])
    assert result.exit_code == 2
    assert "unknown variant" in result.output


@pytest.mark.parametrize(
    ("side", "cause"),
    [
        (5000, f"image is 5000x5000, over the {MAX_PIXELS:,}-pixel limit for an input"),
        (20000, "too many pixels to decode safely"),  # Pillow's DecompressionBombError
    ],
)
def test_a_huge_image_gets_the_inputs_one_line_refusal_not_a_traceback(tmp_path, side, cause):
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header_only(side, side))  # announced in a few bytes
    result = runner.invoke(app, ["niqe", str(huge), "--json"])
    assert result.exit_code == 1, result.output
    (row,) = json.loads(result.stdout)["images"]
    assert row["niqe"] is None and row["error"].startswith(cause)


def test_images_too_small_for_niqe_are_named_once_and_the_mean_says_what_it_covers(reference_dir, tmp_path):
    shutil.copy(reference_dir / "images" / "coffee_500x333.png", tmp_path / "sheet.png")
    for k in range(5):
        shutil.copy(reference_dir / "images" / "celebahq_000229_16.png", tmp_path / f"face_{k}.png")
    result = runner.invoke(app, ["niqe", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    notes = [line for line in result.stderr.splitlines() if "too small" in line]
    assert notes == [
        "note: 5 images are too small for NIQE, which needs two whole 96x96 blocks "
        "(at least 192x96 px): no score"
    ]
    assert "mean of 1 of 6 images (the others have no score)" in result.stdout
    assert result.stdout.count("too small: 16x16 px") == 5
