"""Every backend by name: the built-in ones, then those of ``pulse_cli.backends`` entry points.

The built-ins are listed here, in the order reports and ``pulse bench`` show them; a third-party
distribution adds a backend with one entry point naming an object that follows the ``Backend``
contract (``pulse_cli.plugins.contracts``). Third-party backends come after the built-ins, by
name, and cannot shadow one. Nothing outside this registry compares backend names.
"""

from __future__ import annotations

from pulse_cli import plugins
from pulse_cli.backends.builtin import DygraphBackend, OnnxBackend, StaticBackend
from pulse_cli.plugins.contracts import Backend

BUILTIN: tuple[Backend, ...] = (DygraphBackend(), StaticBackend(), OnnxBackend())
DEFAULT = BUILTIN[0].name


class BackendError(LookupError):
    """A backend name that names no available backend."""


def available_backends() -> dict[str, Backend]:
    """Every loaded backend by name: the built-ins first, then the plugins' (discovery is cached)."""
    found: dict[str, Backend] = {backend.name: backend for backend in BUILTIN}
    for name, backend in plugins.available("backends").items():
        found.setdefault(name, backend)
    return found


def backend_names() -> tuple[str, ...]:
    """The names of ``available_backends``, in their order."""
    return tuple(available_backends())


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a ``BackendError`` naming the known ones otherwise."""
    found = available_backends()
    if name not in found:
        raise BackendError(f"unknown backend {name!r}; known: {', '.join(found)}")
    return found[name]
