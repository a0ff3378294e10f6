"""A model folder is data: checks for folders received from someone else, and file-mode helpers.

A saved model (``Classifier.save``) is a directory that people send each other. Loading one must
run no code, follow no path out of the folder, allocate nothing a JSON edit asks for before the
sizes are checked against the weights, and refuse weights that differ from what was saved
(DESIGN.md section 7). These helpers are shared by the classifier, the encoders and the heads;
every problem is one :class:`ModelFormatError` (a ValueError) that names the file and the fix.

No heavy import at module level: the encoder and head registries import this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

# The file that marks a folder as a saved textransfer model (what Classifier.save writes).
META_FILE = "textransfer.json"

# Files that unpickle (or may unpickle) when loaded: textransfer never writes them into a model.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".kv", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".npz")
# Names of the Hugging Face JSON files that may carry an ``auto_map`` (model code to import).
_CODE_MAP_SUFFIX = "config.json"
_ALLOWED_ST_PREFIX = "sentence_transformers."

# A side folder of a save whose writer left no pid in its name (older versions) is stale after this.
STALE_AFTER_S = 24 * 3600

REMOTE_CODE_FIX = (
    "only if you trust whoever sent this model, allow it with "
    "textransfer.load(dir, trust_remote_code=True) (CLI: textransfer predict --trust-remote-code)"
)
RESAVE_FIX = "get an intact copy of the model folder from whoever sent it, or re-train the model"
SELF_CONTAINED_FIX = (
    "ask whoever sent the model to save it again with the current textransfer, which copies "
    "such files into the model folder (or re-train it)"
)


class ModelFormatError(ValueError):
    """A model directory is incomplete, corrupt, unsafe to load, or written by a newer textransfer."""


class RemoteCodeError(ModelFormatError):
    """A model folder ships Python code and the caller did not pass ``trust_remote_code=True``."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a ModelFormatError when it is not valid JSON or not an object.

    A missing file raises FileNotFoundError (the caller reports the folder as incomplete).
    """
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path} is not valid JSON ({exc}); {RESAVE_FIX}") from None
    if not isinstance(value, dict):
        raise ModelFormatError(
            f"{path} holds a JSON {type(value).__name__}, not an object (a dict of settings); {RESAVE_FIX}"
        )
    return value


def read_string_list(path: Path, what: str) -> list[str]:
    """The JSON list of distinct strings in ``path`` (a vocabulary: ``what`` names one entry,
    e.g. "word"); a ModelFormatError naming the file when it is anything else."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path} is not valid JSON ({exc}); {RESAVE_FIX}") from None
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise ModelFormatError(f"{path} must hold a JSON list of {what}s; {RESAVE_FIX}")
    if len(set(items)) != len(items):
        raise ModelFormatError(f"{path} lists a {what} twice; {RESAVE_FIX}")
    return items


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, read from its header only.

    Raises:
        FileNotFoundError: the file is missing.
        ModelFormatError: the file is truncated or not a safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    try:
        with safe_open(str(path), framework="numpy") as f:
            return {k: tuple(int(n) for n in f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(
            f"{path} is not a readable safetensors file ({exc}): it is truncated or corrupt; "
            "re-download or re-copy the model folder, or re-train"
        ) from None


def check_tensor_shapes(
    path: Path,
    expected: Mapping[str, tuple[int, ...]],
    source: Path | str,
    *,
    found: Mapping[str, tuple[int, ...]] | None = None,
) -> None:
    """Raises a ModelFormatError unless ``path`` holds exactly the tensors ``expected``.

    Args:
        path: the safetensors file.
        expected: tensor name -> shape implied by the settings in ``source``.
        source: the file whose settings imply ``expected`` (named in the message).
        found: the file's shapes when already read (else read from its header).
    """
    found = tensor_shapes(path) if found is None else found
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = [k for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]
    if not (missing or extra or wrong):
        return
    if wrong:
        k = wrong[0]
        what = f"tensor {k!r} has shape {list(found[k])} but {source} implies {list(expected[k])}"
    elif missing:
        what = f"tensor {missing[0]!r} that {source} implies is missing"
    else:
        what = f"it holds tensor {extra[0]!r} that {source} does not account for"
    raise ModelFormatError(
        f"{path} does not match its settings: {what}. The weights and the settings come from "
        f"different models (or one was edited); {RESAVE_FIX}"
    )


def resolve_inside(root: Path, value: str, key: str, source: Path) -> Path:
    """``root / value`` resolved, which must stay inside ``root`` (symlinks followed).

    Args:
        root: the folder the path must stay in.
        value: the path as written in the saved settings (relative to ``root``).
        key: the setting's name, for the message.
        source: the settings file, for the message.
    """
    root = Path(root).resolve()
    candidate = Path(value).expanduser()
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if candidate.is_absolute() or not resolved.is_relative_to(root):
        raise ModelFormatError(
            f"{source}: {key} {value!r} points outside the model folder {root}. A received model "
            "may only use files inside its own folder, registered resource names (see "
            "`textransfer list resources`) or hub model ids; " + SELF_CONTAINED_FIX
        )
    return resolved


def walk_files(root: Path) -> Iterator[Path]:
    """Every file and symlink under ``root`` (not following symlinked folders), sorted."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            yield base / name
        for name in dirnames:  # symlinked folders are not walked: report them as entries
            if (base / name).is_symlink():
                yield base / name


def check_received_tree(root: Path) -> None:
    """Refuses symlinks that leave ``root`` and files in pickle formats anywhere under it."""
    real_root = Path(root).resolve()
    for path in walk_files(root):
        if path.is_symlink() and not path.resolve().is_relative_to(real_root):
            raise ModelFormatError(
                f"{path} is a symlink to {os.readlink(path)}, outside the model folder; a model "
                f"folder must hold its own files: {SELF_CONTAINED_FIX}"
            )
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ModelFormatError(
                f"{path} is a pickle-based file ({path.suffix}): loading it could run code, and "
                "textransfer never writes one into a model folder. Remove it if it is not needed, "
                f"or {SELF_CONTAINED_FIX}"
            )


def find_code(root: Path) -> list[str]:
    """Reasons why loading the Hugging Face / sentence-transformers folder ``root`` would run
    Python code shipped with it: ``.py`` files, an ``auto_map`` in a ``*config.json``, or a
    ``modules.json`` module outside ``sentence_transformers``. Empty when there is none."""
    reasons: list[str] = []
    for path in walk_files(root):
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() == ".py":
            reasons.append(f"Python file {rel}")
        elif path.name.endswith(_CODE_MAP_SUFFIX) and path.is_file():
            if "auto_map" in _json_or_empty(path):
                reasons.append(f"auto_map in {rel}")
        elif path.name == "modules.json" and path.is_file():
            try:
                modules = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            for entry in modules if isinstance(modules, list) else []:
                kind = entry.get("type") if isinstance(entry, dict) else None
                if isinstance(kind, str) and not kind.startswith(_ALLOWED_ST_PREFIX):
                    reasons.append(f"module type {kind!r} in {rel}")
    return reasons


def check_no_code(root: Path, trust_remote_code: bool) -> None:
    """Raises :class:`RemoteCodeError` when ``root`` ships code and the caller did not trust it."""
    if trust_remote_code:
        return
    reasons = find_code(root)
    if reasons:
        raise RemoteCodeError(
            f"{root} ships Python code that loading it would run ({'; '.join(reasons[:3])}). "
            f"textransfer never runs a received model's code on its own: {REMOTE_CODE_FIX}"
        )


def _json_or_empty(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {}
    return value if isinstance(value, dict) else {}


def apply_modes(root: Path) -> None:
    """Gives every folder under ``root`` the mode of ``root`` and every file that mode without
    execute bits: with ``root`` made by ``os.mkdir(path, 0o777)`` that is ``0o777 & ~umask`` and
    ``0o666 & ~umask``, as other tools do (safetensors and ``tempfile`` write 0600 / 0700)."""
    dir_mode = Path(root).stat().st_mode & 0o777
    file_mode = dir_mode & 0o666
    for dirpath, _, filenames in os.walk(root, followlinks=False):
        os.chmod(dirpath, dir_mode)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, file_mode)


# -- writing a model folder ------------------------------------------------------------------


def side_folder(parent: Path, name: str, kind: str) -> Path:
    """A fresh path ``parent/.NAME.KIND-<pid>-<random>`` (KIND: ``tmp`` or ``old``); the pid lets a
    later save tell a folder left by a killed process from one still being written."""
    return Path(parent) / f".{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def new_tmp_dir(parent: Path, name: str) -> Path:
    """Creates an empty ``.NAME.tmp-<pid>-<random>`` folder in ``parent`` with mode
    ``0o777 & ~umask`` (``tempfile.mkdtemp`` makes 0700: a model nobody else could read)."""
    for _ in range(100):
        path = side_folder(parent, name, "tmp")
        try:
            os.mkdir(path, 0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"could not create a temporary folder for {name!r} in {parent}")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:  # 0 and negatives address process groups, not a process
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:  # not a pid at all
        return False
    except OSError:  # PermissionError: alive, owned by another user; otherwise unsure: keep
        return True
    return True


def remove_stale(parent: Path, name: str) -> list[Path]:
    """Removes the ``.NAME.tmp-*`` / ``.NAME.old-*`` folders that a killed save of ``NAME`` left in
    ``parent``: those whose process (the pid in the name) is gone, and those without a pid
    (older versions) untouched for :data:`STALE_AFTER_S`. Folders of running saves stay.

    Returns:
        The folders removed.
    """
    pattern = re.compile(rf"\.{re.escape(name)}\.(?:tmp|old)-(?P<rest>.+)")
    removed: list[Path] = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None or entry.is_symlink() or not entry.is_dir():
            continue
        pid = re.fullmatch(r"(\d+)(?:-[0-9a-f]+)?", m.group("rest"))
        try:
            if pid is not None:
                stale = not _pid_alive(int(pid.group(1)))
            else:
                stale = time.time() - entry.stat().st_mtime > STALE_AFTER_S
        except OSError:  # removed meanwhile (another save cleaning up)
            continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def file_digests(root: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``root``."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in walk_files(root) if p.is_file()}


def verify_digests(root: Path, record: Mapping[str, str], source: Path, parts: Iterable[str]) -> None:
    """Checks every file of ``record`` (written by :func:`file_digests` at save) against its
    sha256, and that the folders ``parts`` hold no file the record lacks.

    Raises:
        ModelFormatError: naming the file that is missing, changed, or was added.
    """
    root = Path(root)
    for rel, digest in record.items():
        path = resolve_inside(root, rel, "files entry", source)
        if not path.is_file():
            raise ModelFormatError(
                f"{root} is incomplete: {rel} (recorded in {source} when the model was saved) is "
                "missing; copy the whole model folder again, or re-train"
            )
        if sha256_file(path) != digest:
            raise ModelFormatError(
                f"{path} does not match the sha256 recorded in {source} when the model was saved: "
                "the file was modified or damaged (e.g. overwritten, or an interrupted copy); copy "
                "the model folder again, or re-train"
            )
    for part in parts:
        for path in walk_files(root / part):
            if path.relative_to(root).as_posix() not in record:
                raise ModelFormatError(
                    f"{path} was not part of the model when it was saved (it is not in the "
                    f"checksum record of {source}); remove it, or copy the model folder again"
                )
