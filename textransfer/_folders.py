"""Folders a run writes in: checked before any work starts, created with a clear error.

Low in the package (config, tracking and the experiments use it) so that checking a folder needs
no config types.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_path", "cache_setting", "check_folder", "make_folder"]


def cache_path(name: str) -> Path:
    """``$XDG_CACHE_HOME/textransfer/<name>`` (``~/.cache`` when unset): textransfer's place in
    the user's cache for ``name`` (resources, hub views, the precision probe)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "textransfer" / name


def cache_setting(name: str) -> str:
    """:func:`cache_path` as a config writes it: ``~/.cache/textransfer/<name>`` unless
    ``$XDG_CACHE_HOME`` is set (the default of every config's ``cache_dir``: the feature cache
    then sits beside the resources, hub views and precision probe)."""
    return str(cache_path(name)) if os.environ.get("XDG_CACHE_HOME") else f"~/.cache/textransfer/{name}"


def check_folder(path: str | Path, key: str, fix: str = "") -> Path:
    """``path`` (``~`` expanded) when it is, or can be created as, a folder this process may
    write in; no file is written.

    Args:
        path: the folder.
        key: the config key it comes from, for the message (``output_dir``).
        fix: appended to the message, e.g. `` or set cache_dir: null``.

    Raises:
        ValueError: ``path`` or a folder above it is a file, or is not writable.
    """
    p = Path(path).expanduser()
    existing = p
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        if existing == p:
            raise ValueError(f"{key}: {p} is a file, not a folder: give {key} a folder path{fix}")
        raise ValueError(
            f"{key}: cannot create the folder {p}: {existing} is a file, not a folder; "
            f"give {key} another path{fix}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"{key}: cannot create or write in {p}: no permission to write in {existing}; give {key} "
            f"a folder you can write to, or change its permissions{fix}"
        )
    return p


def make_folder(path: Path, key: str, fix: str = "") -> list[Path]:
    """Creates ``path`` with its parents; returns the folders created (topmost first).

    Raises:
        ValueError: naming the path and the fix, for any OS error (a file in the way, no
            permission, read-only file system).
    """
    created = []
    probe = path
    while not probe.exists() and probe.parent != probe:
        created.append(probe)
        probe = probe.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"{key}: cannot create the folder {path}: a file is in the way; give {key} another path{fix}") from None
    except PermissionError:
        raise ValueError(
            f"{key}: cannot create the folder {path}: permission denied; give {key} a folder you can write "
            f"to, or change its permissions{fix}"
        ) from None
    except OSError as exc:
        raise ValueError(f"{key}: cannot create the folder {path}: {exc.strerror or exc}; give {key} another path{fix}") from None
    return created[::-1]
