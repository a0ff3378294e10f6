"""Epoch checkpoints: atomic, verified, resumable.

Layout of ``<run_dir>/checkpoints/``::

    epoch-1/               one complete checkpoint per finished epoch (the last few are kept;
                           all are deleted once the run has finished and written its model,
                           unless ``training.keep_checkpoints_after_run``)
      model.safetensors    \
      optimizer.bin         |  written by ``accelerator.save_state`` (model, optimizer,
      scheduler.bin         |  scheduler, RNG states of every process, grad scaler)
      random_states_0.pkl  /
      trainer_state.json   epoch counter, history, early-stopping state, settings fingerprint and,
                           in a run of the runner, what it trains on (data, encoder, strategy,
                           training settings: :func:`recording`), which ``--resume`` checks
      best.safetensors     the best weights so far (restored at the end of training)
      manifest.json        written last: size + sha256 of every file above
    .epoch-2.partial/      an epoch being written; renamed to epoch-2 once complete

A checkpoint is written into a ``.partial`` folder and renamed when its manifest is in place, so
a crash (or kill -9) mid-save leaves the previous checkpoint as the latest complete one. Loading
checks the manifest, so a truncated or edited file is reported instead of silently resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
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


def remove_finished(root: Path) -> int:
    """Deletes the checkpoints of a run that finished (and wrote its model), then ``root`` itself
    when nothing else is in it; returns how many checkpoints there were.

    Only ``epoch-N`` folders and ``.partial`` leftovers go: a file the user put into ``root``
    keeps the folder (and itself). Checkpoints of an unfinished run are never passed here: the
    runner calls this after the run's outputs are written.
    """
    n = clear(root)
    with contextlib.suppress(OSError):  # missing, or holds something that is not ours
        root.rmdir()
    return n


def unfinished(root: Path) -> tuple[Path, str] | None:
    """The newest checkpoint under ``root`` when it is of a run that did not finish, with a
    description (``"epoch 2 of 5 done"``); None when there is none or the run finished.

    A checkpoint whose trainer state cannot be read counts as unfinished: it is kept for the
    user to decide (``--resume`` reports what is wrong with it; ``--fresh`` deletes it).
    """
    dirs = epoch_dirs(root)
    if not dirs:
        return None
    path = dirs[-1][1]
    try:
        state = json.loads((path / STATE_FILE).read_text())
        done, total = int(state["epoch"]), int(state["settings"]["epochs"])
        stopped = bool(state["result"].get("stopped_early"))
    except (OSError, ValueError, KeyError, TypeError):
        return path, "its trainer state is unreadable"
    if done >= total or stopped:
        return None
    return path, f"epoch {done} of {total} done"


# Fingerprints of the runs being trained, by checkpoint folder (see `recording`).
_RECORDING: dict[str, dict[str, Any]] = {}


def _root_key(root: Path) -> str:
    return os.path.abspath(root)


@contextlib.contextmanager
def recording(root: Path, fingerprints: dict[str, Any]) -> Iterator[None]:
    """Checkpoints written under ``root`` inside this block record ``fingerprints`` in their
    trainer state (covered by the manifest).

    The runner knows what a run trains on (data, encoder, strategy, settings); the training loop,
    which writes the checkpoints, sees only tensors: this hands the one to the other.
    """
    key = _root_key(root)
    _RECORDING[key] = json.loads(json.dumps(fingerprints, sort_keys=True, default=str))
    try:
        yield
    finally:
        _RECORDING.pop(key, None)


def recorded(root: Path) -> dict[str, Any] | None:
    """The fingerprints checkpoints under ``root`` record now (None outside :func:`recording`)."""
    return _RECORDING.get(_root_key(root))


# How each recorded part is named in messages.
_PARTS = {"data": "data", "encoder": "encoder settings", "strategy": "strategy settings", "training": "training settings"}


def check_fingerprints(root: Path, fingerprints: dict[str, Any]) -> None:
    """Raises when the newest checkpoint under ``root`` was trained on other data or settings.

    Args:
        root: the checkpoints folder (nothing is checked when it holds no checkpoint).
        fingerprints: ``{"data": ..., "encoder": ..., "strategy": ..., "training": ...}`` of the
            run about to resume; dict values are compared key by key, so messages name the keys.

    Raises:
        CheckpointError: naming each part that changed (data / encoder / strategy / training
            settings) and the fix.
    """
    dirs = epoch_dirs(root)
    if not dirs:
        return
    path = dirs[-1][1]
    fix = "restore the original config and data to resume, or start over with --fresh (deletes the checkpoints)"
    try:
        saved = json.loads((path / STATE_FILE).read_text()).get("fingerprints")
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"cannot resume from {path}: {STATE_FILE} is unreadable ({exc}); {fix}") from None
    if not isinstance(saved, dict):
        raise CheckpointError(
            f"cannot resume from {path}: it does not record the data and settings it was trained on "
            "(written by an older textransfer), so resuming could mix two runs; start over with --fresh"
        )
    # Through JSON, as stored: tuples become lists, keys strings.
    current = json.loads(json.dumps(fingerprints, sort_keys=True, default=str))
    changed = []
    for part, value in current.items():
        old = saved.get(part)
        if old == value:
            continue
        name = _PARTS.get(part, part)
        if isinstance(old, dict) and isinstance(value, dict):
            keys = sorted(k for k in {*old, *value} if old.get(k) != value.get(k))
            name += f" ({', '.join(keys)})"
        changed.append(name)
    if changed:
        raise CheckpointError(
            f"cannot resume from {path}: it was trained with other {' and '.join(changed)}; resuming "
            f"would mix two runs. {fix[0].upper()}{fix[1:]}"
        )
