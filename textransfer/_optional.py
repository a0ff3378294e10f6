"""Lazy imports of optional dependencies that fail early with the install command to run."""

from __future__ import annotations

import importlib
from types import ModuleType

# module -> (pip extra, distribution to install)
_EXTRAS = {
    "gensim": "static",
    "transformers": "transformers",
    "tokenizers": "transformers",
    "accelerate": "transformers",
    "sentence_transformers": "sentence",
    "datasets": "hf",
    "matplotlib": "plots",
}


class MissingDependencyError(ImportError):
    """An optional dependency needed for the requested feature is not installed."""


def require(module: str, extra: str | None = None, feature: str | None = None) -> ModuleType:
    """Imports ``module`` or raises an ImportError that says which extra to install.

    Args:
        module: importable module name, e.g. ``"gensim"``.
        extra: the textransfer extra that provides it (looked up when omitted).
        feature: what needs it, for the message (e.g. ``"the static encoder"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = extra or _EXTRAS.get(module.split(".")[0], "all")
        what = f" {feature}" if feature else ""
        raise MissingDependencyError(
            f"{module!r} is needed{(' for' + what) if what else ''} but is not installed: "
            f'pip install "textransfer[{extra}]" (or: pip install {module.split(".")[0].replace("_", "-")})'
        ) from exc
