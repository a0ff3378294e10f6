"""Epoch checkpoints: atomic, verified, resumable.

Layout of ``<run_dir>/checkpoints/``::

    epoch-1/               one complete checkpoint per finished epoch (the last few are kept)
      model.safetensors    \
      optimizer.bin         |  written by ``accelerator.save_state`` (model, optimizer,
      scheduler.bin         |  scheduler, RNG states of every process, grad scaler)
      random_states_0.pkl  /
      trainer_state.json   epoch counter, history, early-stopping state, settings fingerprint
      best.safetensors     the best weights so far (restored at the end of training)
      manifest.json        written last: size + sha256 of every file above
    .epoch-2.partial/      an epoch being written; renamed to epoch-2 once complete

A checkpoint is written into a ``.partial`` folder and renamed when its manifest is in place, so
a crash (or kill -9) mid-save leaves the previous checkpoint as the latest complete one. Loading
checks the manifest, so a truncated or edited file is reported instead of silently resumed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger("textransfer.training")

MANIFEST = "manifest.json"
STATE_FILE = "trainer_state.json"
BEST_FILE = "best.safetensors"
FORMAT_VERSION = 1
_EPOCH_DIR = re.compile(r"^epoch-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, partial or corrupt, or does not belong to this run."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def epoch_dirs(root: Path) -> list[tuple[int, Path]]:
    """``[(epoch, path)]`` of the ``epoch-N`` folders under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _EPOCH_DIR.match(p.name)) and p.is_dir()]
    return sorted(found)


def partial_dir(root: Path, epoch: int) -> Path:
    """Where epoch ``epoch`` is written before it is complete (same name on every process)."""
    return root / f".epoch-{epoch}.partial"


def write_manifest(directory: Path, epoch: int) -> None:
    """Records size and sha256 of every file in ``directory``; call after everything is written."""
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            rel = path.relative_to(directory).as_posix()
            files[rel] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    payload = {"format_version": FORMAT_VERSION, "epoch": epoch, "files": files}
    tmp = directory / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, directory / MANIFEST)


def finalize(root: Path, epoch: int, keep: int) -> Path:
    """Renames the complete ``.partial`` folder of ``epoch`` to ``epoch-N``; prunes old ones.

    Args:
        root: the checkpoints folder.
        epoch: the finished epoch (1-based).
        keep: how many complete checkpoints to keep (>= 1).
    """
    src, dst = partial_dir(root, epoch), root / f"epoch-{epoch}"
    if dst.exists():  # a re-run of the same epoch (e.g. resumed before this one): replace it
        shutil.rmtree(dst)
    os.replace(src, dst)
    for _, old in epoch_dirs(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return dst


def verify(directory: Path) -> dict[str, Any]:
    """Checks a checkpoint against its manifest; returns its trainer state.

    Raises:
        CheckpointError: naming the missing/partial/corrupt file and what to do about it.
    """
    fix = (
        f"delete {directory} to resume from the checkpoint before it, or run without --resume "
        "to start over"
    )
    manifest = directory / MANIFEST
    if not manifest.exists():
        raise CheckpointError(f"checkpoint {directory} is partial: {MANIFEST} is missing; {fix}")
    try:
        files = json.loads(manifest.read_text())["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {directory} is corrupt: {MANIFEST} is unreadable ({exc}); {fix}") from None
    for rel, info in files.items():
        path = directory / rel
        if not path.is_file():
            raise CheckpointError(f"checkpoint {directory} is partial: {rel} is missing; {fix}")
        size = path.stat().st_size
        if size != info["bytes"]:
            raise CheckpointError(
                f"checkpoint {directory} is corrupt: {rel} has {size} bytes, expected {info['bytes']}; {fix}"
            )
        if _sha256(path) != info["sha256"]:
            raise CheckpointError(f"checkpoint {directory} is corrupt: {rel} fails its sha256 check; {fix}")
    if STATE_FILE not in files:
        raise CheckpointError(f"checkpoint {directory} has no {STATE_FILE}; {fix}")
    return json.loads((directory / STATE_FILE).read_text())


def latest(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint under ``root`` and its trainer state (None when none).

    Raises:
        CheckpointError: when the newest ``epoch-N`` folder fails :func:`verify`.
    """
    dirs = epoch_dirs(root)
    if not dirs:
        return None
    path = dirs[-1][1]
    return path, verify(path)


def clear(root: Path) -> int:
    """Removes all checkpoints under ``root`` (a fresh run); returns how many there were."""
    dirs = epoch_dirs(root)
    for _, path in dirs:
        shutil.rmtree(path, ignore_errors=True)
    if root.is_dir():
        for p in root.glob(".epoch-*.partial"):
            shutil.rmtree(p, ignore_errors=True)
    return len(dirs)
