"""``pulse niqe``: files and folders in, a row per image plus the mean out, exit 1 on any failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pulse_cli.cli.niqe  # noqa: F401  (registers the command)
from pulse_cli.cli.app import app
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
    assert "96x96 block" in rows["celebahq_000229_16.png"]["error"]
    assert "not an image file" in rows["notes.png"]["error"]
    camera = niqe(folder / "camera_gray_512.png", "paddle-pulse")
    assert report["mean"] == pytest.approx((coffee + camera) / 2)
    assert report["variant"] == "paddle-pulse"


def test_table_lists_each_image_and_the_mean_and_exits_0_when_all_score(reference_dir):
    image = reference_dir / "images" / "coffee_500x333.png"
    result = runner.invoke(app, ["niqe", str(image)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stdout
    assert "coffee_500x333.png" in result.stdout
    assert "mean of 1 image(s)" in result.stdout
    assert f"{niqe(image):.4f}" in result.stdout


def test_missing_paths_get_a_row_and_exit_1(tmp_path):
    result = runner.invoke(app, ["niqe", str(tmp_path / "missing.png"), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["images"][0]["error"] == "no such file or folder"


def test_unknown_variant_is_a_usage_error(reference_dir):
    result = runner.invoke(app, ["niqe", str(reference_dir / "images"), "--variant", "nope"])
    assert result.exit_code == 2
    assert "unknown variant" in result.output
