"""Why NIQE refuses an image: its message names the image and the cause."""

from __future__ import annotations


class NiqeError(ValueError):
    """The image cannot be scored: unreadable, of an unusable shape, too small or without texture."""


class NiqeTooSmall(NiqeError):
    """The image holds fewer than two whole 96×96 blocks: too small for NIQE whatever it shows.
    ``width`` and ``height`` are its size in pixels."""

    def __init__(self, message: str, width: int, height: int) -> None:
        super().__init__(message)
        self.width = width
        self.height = height
