"""Why NIQE refuses an image: one exception class, its message names the image and the cause."""

from __future__ import annotations


class NiqeError(ValueError):
    """The image cannot be scored: unreadable, of an unusable shape, too small or without texture."""
