"""Which modules register textransfer's built-in components, per registry.

A registry imports its modules on first use (see :class:`textransfer._registry.Registry`), so
``import textransfer`` stays cheap. Naming them here, by module path, keeps the packages layered:
``vision`` registers its image encoders, image datasets and the ``images:`` data reader itself,
and neither ``encoders`` nor ``data`` imports ``vision``. A new built-in plug-in package adds its
module to the kinds it registers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "encoder": ("textransfer.encoders", "textransfer.vision"),
    "dataset": ("textransfer.vision.datasets",),
    "data reader": ("textransfer.vision.data",),
}


def builtin_loader(kind: str) -> Callable[[], None]:
    """A registry loader that imports the modules registering the built-in ``kind`` entries."""
    modules = BUILTIN_MODULES[kind]

    def load() -> None:
        for name in modules:
            importlib.import_module(name)

    return load
