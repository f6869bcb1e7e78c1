"""Shared test fixtures: where the reference fixtures live, and a quiet Paddle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ci import skip_outside_ci

ROOT = Path(__file__).resolve().parent.parent


def reference_root() -> Path:
    """``PULSE_REFERENCE_DIR``, or ``../shared/reference`` beside the project root."""
    return Path(os.environ.get("PULSE_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference fixtures folder; tests that use it skip, saying why, when it is absent, except
    in CI, where they fail: a CI run must never pass on tests it did not run."""
    root = reference_root()
    if not (root / "README.md").is_file():
        skip_outside_ci(f"reference fixtures not found at {root} (set PULSE_REFERENCE_DIR to their folder)")
    return root


@pytest.fixture(autouse=True, scope="session")
def _cpu_paddle() -> None:
    import paddle

    paddle.set_device("cpu")


@pytest.fixture
def mount_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``mount(name, entry_points, module, source)``: an installed distribution (dist-info with its
    entry points, plus its one module) on ``sys.path`` for this test, discovered afresh."""
    from pulse_cli import plugins

    site = tmp_path / "site"

    def mount(name: str, entry_points: str, module: str, source: str) -> Path:
        info = site / f"{name.replace('-', '_')}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(entry_points)
        (site / f"{module}.py").write_text(source)
        monkeypatch.syspath_prepend(str(site))
        plugins.clear_cache()
        return site

    yield mount
    plugins.clear_cache()


@pytest.fixture(scope="session")
def tv_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin distribution in plugins/, installed with pip into its own folder."""
    import subprocess
    import sys

    site = tmp_path_factory.mktemp("tv-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(ROOT / "plugins" / "pulse-tv-loss")],
        check=True,
    )  # fmt: skip
    return site


def _pulled_cache(tmp_path_factory: pytest.TempPathFactory, model) -> Path:
    """A fresh cache folder into which ``model.pull()`` fetched its weights through pip."""
    folder = tmp_path_factory.mktemp(f"pulse-cache-{model.name}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PULSE_CACHE_DIR", str(folder))
        model.pull()
    return folder


@pytest.fixture(scope="session")
def dcgan_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the default model, fetched through pip once per session."""
    from pulse_cli.models.dcgan import DIGIFACE

    return _pulled_cache(tmp_path_factory, DIGIFACE)


@pytest.fixture
def dcgan_cache(dcgan_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``PULSE_CACHE_DIR`` pointed at the session's filled cache (subprocesses inherit it)."""
    monkeypatch.setenv("PULSE_CACHE_DIR", str(dcgan_cache_dir))
    return dcgan_cache_dir


@pytest.fixture(scope="session")
def dcgan_generator(dcgan_cache_dir: Path):
    """The default generator, loaded once per session from the session's cache."""
    from pulse_cli.models.dcgan import DIGIFACE

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PULSE_CACHE_DIR", str(dcgan_cache_dir))
        return DIGIFACE.load()


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``PULSE_CACHE_DIR`` pointed at a folder that does not exist yet."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("PULSE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def mobile_stylegan_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding MobileStyleGAN (a 37.6 MB wheel), fetched through pip once per session."""
    from pulse_cli.models.mobile_stylegan import MOBILE_STYLEGAN_FFHQ

    return _pulled_cache(tmp_path_factory, MOBILE_STYLEGAN_FFHQ)


@pytest.fixture(scope="session")
def mtcnn_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned ``mtcnn`` wheel, fetched through pip once per session (never installed)."""
    from pulse_cli.faces.weights import fetch_wheel

    return fetch_wheel(tmp_path_factory.mktemp("mtcnn-wheel"))


@pytest.fixture(scope="session")
def mtcnn_cache_dir(tmp_path_factory: pytest.TempPathFactory, mtcnn_wheel: Path) -> Path:
    """A cache folder holding MTCNN's converted weights."""
    from pulse_cli.faces.weights import pull

    folder = tmp_path_factory.mktemp("pulse-cache-mtcnn")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PULSE_CACHE_DIR", str(folder))
        pull(mtcnn_wheel)
    return folder


@pytest.fixture
def mtcnn_cache(mtcnn_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``PULSE_CACHE_DIR`` pointed at the session's cache with MTCNN's weights."""
    monkeypatch.setenv("PULSE_CACHE_DIR", str(mtcnn_cache_dir))
    return mtcnn_cache_dir


@pytest.fixture(scope="session")
def detector(mtcnn_cache_dir: Path):
    """MTCNN with the pinned weights, loaded once per session."""
    from pulse_cli.faces.detect import Detector

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PULSE_CACHE_DIR", str(mtcnn_cache_dir))
        return Detector()


@pytest.fixture
def photo_cache(
    dcgan_cache_dir: Path, mtcnn_cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``PULSE_CACHE_DIR`` pointed at a cache holding the default model and MTCNN (links to the
    session's), for commands that upsample photos."""
    cache = tmp_path / "cache-with-faces"
    cache.mkdir()
    for folder in (dcgan_cache_dir, mtcnn_cache_dir):
        for path in folder.iterdir():
            (cache / path.name).symlink_to(path)
    monkeypatch.setenv("PULSE_CACHE_DIR", str(cache))
    return cache
