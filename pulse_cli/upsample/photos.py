"""Pasting a photo's upsampled faces back into it, once every face of the photo is finished.

Each face of a photo is its own output (``upsampled/{stem}_{k}.png``); ``PhotoPaster`` counts them
down and, when the last one is finished (written, skipped or failed), pastes the upsampled faces
that exist into the photo, enlarged (``pulse_cli.faces.paste``), as ``photos/{stem}.png``. Faces
are read back from their files, so a resumed job pastes faces made by an earlier run the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pulse_cli.atomic import atomic_save_image
from pulse_cli.faces.paste import paste
from pulse_cli.images import read_image, to_pil
from pulse_cli.upsample.plan import Item


def photo_output(photo: str) -> str:
    """A pasted photo's file, relative to the output folder."""
    return f"photos/{photo}.png"


class PhotoPaster:
    """The photos of a job's face items (``todo`` and ``done``), each pasted once all its faces are
    finished. ``bg_scale``: the enlargement (default: each face at its upsampled size, capped)."""

    def __init__(
        self, output_dir: Path, todo: Sequence[Item], done: Sequence[Item], bg_scale: float | None = None
    ) -> None:
        self.output_dir = output_dir
        self.bg_scale = bg_scale
        self.faces: dict[str, list[Item]] = {}
        for item in [*todo, *done]:
            if item.crop is not None and item.crop.photo is not None:
                self.faces.setdefault(item.crop.photo, []).append(item)
        searched = {item.name for item in todo}
        self.pending = {
            photo: {item.name for item in items if item.name in searched}
            for photo, items in self.faces.items()
        }
        self.photo_of = {item.name: photo for photo, items in self.faces.items() for item in items}

    def ready(self) -> list[str]:
        """Photos with no face left to search whose pasted photo is missing (a job cut short after
        its last face): paste them before any search."""
        return [
            photo
            for photo, pending in self.pending.items()
            if not pending and not (self.output_dir / photo_output(photo)).is_file()
        ]

    def finished(self, name: str) -> str | None:
        """Face ``name`` is finished; the photo it completes, if any."""
        photo = self.photo_of.get(name)
        if photo is None or name not in self.pending[photo]:
            return None
        self.pending[photo].discard(name)
        return None if self.pending[photo] else photo

    def paste(self, photo: str) -> tuple[str, list[str]] | None:
        """Paste ``photo``'s upsampled faces (those whose file exists) into it and write it; its
        file and the faces pasted, or None when none of its faces was upsampled."""
        items = [item for item in self.faces[photo] if (self.output_dir / item.output).is_file()]
        if not items:
            return None
        faces = [(read_image(self.output_dir / item.output), item.crop.found.alignment) for item in items]
        pasted = paste(read_image(items[0].path), faces, scale=self.bg_scale)
        output = photo_output(photo)
        (self.output_dir / "photos").mkdir(exist_ok=True)
        atomic_save_image(to_pil(pasted), self.output_dir / output)
        return output, [item.name for item in items]
