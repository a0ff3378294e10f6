"""Static word vectors (GloVe, word2vec, fastText .vec) pooled into sentence vectors.

The vectors are loaded once per process into a gensim ``KeyedVectors`` and shared by every encoder
that names the same resolved source. Pooling is vectorised: tokens become row ids through a dict,
and per-sentence sums / maxima are segment reductions over one flat id array.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import threading
from collections.abc import Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Literal

import numpy as np

from textransfer._modelfolder import (
    RESAVE_FIX,
    SELF_CONTAINED_FIX,
    ModelFormatError,
    check_tensor_shapes,
    read_string_list,
    resolve_inside,
    tensor_shapes,
)
from textransfer._progress import progress
from textransfer.encoders.base import (
    CONFIG_FILE,
    Encoder,
    check_inputs,
    read_config,
    register_encoder,
    write_config,
)
from textransfer.resources import VectorSource, is_registered, resolve_vectors

logger = logging.getLogger(__name__)

COMPONENT_FILE = "sif_component.safetensors"
# Vectors copied into a saved model: a (V, dim) float32 matrix and the (V,) p(w) SIF uses, as
# safetensors, with the words (row order) in a JSON list beside it. Never a pickle.
VECTORS_FILE = "vectors.safetensors"

# Words, PTB-style clitics ("do" + "n't", "it" + "'s": how GloVe's corpus was tokenised), and any
# other single non-space character as punctuation.
_TOKEN_RE = re.compile(r"\w+(?=n't)|n't|'\w+|\w+|[^\w\s]")

# resolved source key -> (KeyedVectors, unigram probabilities p(w) as float32 (V,))
_VECTORS: dict[str, tuple[Any, np.ndarray]] = {}
_VECTORS_LOCK = threading.Lock()


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Splits ``text`` into words and punctuation (lowercased by default, as GloVe is)."""
    return _TOKEN_RE.findall(text.lower() if lowercase else text)


def _read_file(path: str) -> Any:
    from textransfer._optional import require

    require("gensim", extra="static", feature="the static encoder")
    from gensim.models import KeyedVectors

    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".kv":
        # gensim's own format (pickle-based): only load files you trust.
        return KeyedVectors.load(path)
    if ".bin" in suffixes:
        return KeyedVectors.load_word2vec_format(path, binary=True)
    opener = gzip.open if suffixes and suffixes[-1] == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    # word2vec text starts with "<vocab_size> <dim>"; GloVe text starts with a word and its vector.
    has_header = len(first) == 2 and all(t.isdigit() for t in first)
    return KeyedVectors.load_word2vec_format(
        path, binary=False, no_header=not has_header, unicode_errors="replace"
    )


def vocab_path(vectors_file: str | Path) -> Path:
    """The JSON word list that goes with a ``.safetensors`` vectors file (``x.vocab.json``)."""
    return Path(vectors_file).with_suffix(".vocab.json")


def _is_safetensors(path: str) -> bool:
    return Path(path).suffix.lower() == ".safetensors"


def _is_pickle(path: str) -> bool:
    return Path(path).suffix.lower() == ".kv"


def _read_safetensors(path: str) -> tuple[Any, np.ndarray | None]:
    """KeyedVectors and, when stored, p(w) from a ``.safetensors`` vectors file + word list.

    Shapes are checked against the headers before the matrix is read.
    """
    from safetensors.numpy import load_file

    from textransfer._optional import require

    require("gensim", extra="static", feature="the static encoder")
    from gensim.models import KeyedVectors

    words_file = vocab_path(path)
    words = read_string_list(words_file, "word")
    shapes = tensor_shapes(Path(path))
    matrix_shape = shapes.get("vectors")
    if matrix_shape is None or len(matrix_shape) != 2 or matrix_shape[1] < 1:
        raise ModelFormatError(
            f"{path} must hold a 2-d tensor 'vectors' (words x dim), found {shapes}; {RESAVE_FIX}"
        )
    expected: dict[str, tuple[int, ...]] = {"vectors": (len(words), matrix_shape[1])}
    if "probs" in shapes:
        expected["probs"] = (len(words),)
    check_tensor_shapes(Path(path), expected, source=words_file, found=shapes)
    arrays = load_file(path)
    kv = KeyedVectors(matrix_shape[1], count=0, dtype=np.float32)
    kv.add_vectors(words, np.ascontiguousarray(arrays["vectors"], dtype=np.float32))
    probs = arrays.get("probs")
    return kv, None if probs is None else np.ascontiguousarray(probs, dtype=np.float32)


def _unigram_probs(kv: Any) -> np.ndarray:
    """p(w) for SIF weights: real counts when the vectors carry them, else Zipf from rank.

    gensim invents counts ``V - rank`` when a word2vec/GloVe file has none; those say nothing
    about frequency, so they are treated as absent. The files are frequency-ordered, so Zipf's
    law ``p ∝ 1 / (rank + 1)`` is a fair estimate.
    """
    n = len(kv.index_to_key)
    counts = None
    if n and "count" in getattr(kv, "expandos", {}):
        c = np.asarray(kv.expandos["count"], dtype=np.float64)
        fake = np.array_equal(c, np.arange(n, 0, -1, dtype=np.float64))
        if not fake and np.all(c > 0):
            counts = c
    if counts is None:
        counts = 1.0 / np.arange(1, n + 1, dtype=np.float64)
    return (counts / counts.sum()).astype(np.float32)


def load_vectors(source: VectorSource) -> tuple[Any, np.ndarray]:
    """The ``KeyedVectors`` and ``p(w)`` for ``source``, loaded once per process (shared)."""
    key = source.key
    if source.kind == "file" and _is_safetensors(source.path):
        # Saved-model vectors: a re-save at the same path must not be served from the cache.
        for file in (Path(source.path), vocab_path(source.path)):
            st = file.stat() if file.exists() else None
            key += f":{st.st_mtime_ns}:{st.st_size}" if st else ":-"
    with _VECTORS_LOCK:
        hit = _VECTORS.get(key)
        if hit is not None:
            return hit
        probs: np.ndarray | None = None
        if source.kind == "arrays":
            from textransfer._optional import require

            require("gensim", extra="static", feature="the static encoder")
            from gensim.models import KeyedVectors

            words, matrix = source.load_arrays()
            # count=0: add_vectors appends, so a preallocated count would leave zero rows in front.
            kv = KeyedVectors(matrix.shape[1], count=0, dtype=np.float32)
            kv.add_vectors(words, matrix)
        elif _is_safetensors(source.path):
            kv, probs = _read_safetensors(source.path)
        else:
            kv = _read_file(source.path)
        kv.vectors = np.ascontiguousarray(kv.vectors, dtype=np.float32)
        entry = (kv, _unigram_probs(kv) if probs is None else probs)
        _VECTORS[key] = entry
        logger.info("loaded %d word vectors of dim %d from %s", *kv.vectors.shape, source.path)
        return entry


@register_encoder("static")
class StaticEncoder(Encoder):
    """Pooled static word vectors: mean, max, or SIF (Arora et al. 2017).

    A saved model references registered vectors (``glove-6b-50d``, gensim-data names) by name;
    vectors from a file of yours are copied into it (``vectors.safetensors`` + a JSON word
    list), so the model folder stands alone and never points at a pickle. The SIF principal
    component learned by :meth:`fit` is saved too (safetensors).

    Args:
        vectors: ``"glove-6b-50d"`` (packaged), a vectors file (word2vec ``.bin`` / text, GloVe
            text, ``.safetensors`` + ``.vocab.json`` as saved here, or gensim ``.kv``, which is a
            pickle: name only files you trust), optionally gzipped, or a gensim-data name
            (online).
        pooling: ``"mean"`` of known token vectors; element-wise ``"max"``; ``"sif"``: mean of
            vectors weighted by ``a / (a + p(w))``, minus the first principal component of the
            training sentence vectors once :meth:`fit` has run.
        lowercase: lowercase before looking tokens up (GloVe's vocabulary is lowercase).
        sif_a: the SIF smoothing constant ``a``.

    Attributes:
        last_oov_rate: fraction of tokens not found in the vectors in the last :meth:`encode`.

    Example:
        >>> enc = StaticEncoder("glove-6b-50d", pooling="mean")  # doctest: +SKIP
        >>> enc.encode(["a fine film"]).shape  # doctest: +SKIP
        (1, 50)
    """

    def __init__(
        self,
        vectors: str = "glove-6b-50d",
        pooling: Literal["mean", "max", "sif"] = "mean",
        lowercase: bool = True,
        sif_a: float = 1e-3,
    ) -> None:
        if pooling not in ("mean", "max", "sif"):
            raise ValueError(f"static: pooling must be 'mean', 'max' or 'sif', got {pooling!r}")
        if not sif_a > 0:
            raise ValueError(f"static: sif_a must be > 0, got {sif_a}")
        self.vectors = str(vectors)
        self.pooling = pooling
        self.lowercase = bool(lowercase)
        self.sif_a = float(sif_a)
        self.component: np.ndarray | None = None  # (dim,) float32 unit vector, set by fit
        self.last_oov_rate: float = 0.0
        self._kv: Any = None
        self._probs: np.ndarray | None = None

    # -- vectors ---------------------------------------------------------------------------

    def _load(self) -> Any:
        if self._kv is None:
            self._kv, self._probs = load_vectors(resolve_vectors(self.vectors))
        return self._kv

    @property
    def keyed_vectors(self) -> Any:
        """The shared gensim ``KeyedVectors`` (loaded on first use)."""
        return self._load()

    @property
    def dim(self) -> int:
        return int(self._load().vector_size)

    # -- pooling ---------------------------------------------------------------------------

    def _pool(self, items: list[str]) -> np.ndarray:
        """Pooled (n, dim) float32 vectors before any SIF component removal."""
        lowercase = self.lowercase
        return self.pool_tokens([tokenize(text, lowercase) for text in items])

    def pool_tokens(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Pools pre-tokenised texts (no SIF component removal): float32 ``(n, dim)``.

        One flat id array for all tokens (dict lookups in C, no per-text Python lists); the mean
        is a sparse (texts x vocabulary) weight matrix times the vectors, the max a segment
        reduction (``np.maximum.reduceat``). Sums are accumulated in float32, as gensim does.
        Texts without a known token get zeros. With ``pooling="mean"`` this is bit-identical to
        gensim's ``get_mean_vector(tokens, pre_normalize=False)`` per text.

        Args:
            token_lists: one list of tokens per text.
        """
        kv = self._load()
        get = kv.key_to_index.get
        n, dim = len(token_lists), kv.vector_size
        counts = np.fromiter(map(len, token_lists), dtype=np.int64, count=n)
        total = int(counts.sum())
        flat_tokens = list(chain.from_iterable(token_lists))
        # map(get, tokens, repeat(-1)) runs the lookups in C; -1 marks out-of-vocabulary tokens.
        ids = np.fromiter(map(get, flat_tokens, repeat(-1)), dtype=np.int64, count=total)
        found = ids >= 0
        owner = np.repeat(np.arange(n), counts)[found]
        flat = ids[found]
        lengths = np.bincount(owner, minlength=n)
        known = int(flat.size)
        self.last_oov_rate = 0.0 if total == 0 else 1.0 - known / total
        logger.info(
            "static: %d texts, %d tokens, out-of-vocabulary rate %.3f",
            n,
            total,
            self.last_oov_rate,
        )
        out = np.zeros((n, dim), dtype=np.float32)
        if known == 0:
            return out
        if self.pooling == "max":
            nonempty = np.flatnonzero(lengths)
            # reduceat over segment starts; empty segments are excluded because reduceat would
            # return the next segment's first row for them instead of an empty reduction.
            starts = (np.cumsum(lengths) - lengths)[nonempty]
            out[nonempty] = np.maximum.reduceat(kv.vectors[flat], starts, axis=0)
            return out
        # Mean (and SIF's weighted mean) as one sparse (n, V) x dense (V, dim) product: no
        # gathered (tokens, dim) copy, and scipy's segment loop is C (reduceat is ~4x slower).
        from scipy.sparse import csr_matrix

        indptr = np.concatenate(([0], np.cumsum(lengths)))
        if self.pooling == "sif":
            assert self._probs is not None
            weights = (1.0 / np.maximum(lengths, 1))[owner] * (self.sif_a / (self.sif_a + self._probs[flat]))
            mix = csr_matrix((weights.astype(np.float32), flat, indptr), shape=(n, kv.vectors.shape[0]))
            out[:] = mix @ kv.vectors
            return out
        # The mean as gensim computes it: a float32 sum in token order (scipy's row loop adds
        # each vector in turn), then one float32 division by the count: bit-identical results.
        ones = np.ones(known, dtype=np.float32)
        mix = csr_matrix((ones, flat, indptr), shape=(n, kv.vectors.shape[0]))
        out[:] = mix @ kv.vectors
        out /= np.maximum(lengths, 1).astype(np.float32)[:, None]
        return out

    def _encode(self, items: list[str], batch_size: int) -> np.ndarray:
        # Tokenising is the per-text Python work of static pooling: the bar follows it.
        lowercase = self.lowercase
        texts = progress(items, desc="encoding (static)", total=len(items), unit="text")
        x = self.pool_tokens([tokenize(text, lowercase) for text in texts])
        if self.pooling == "sif" and self.component is not None:
            u = self.component
            x = x - np.outer(x @ u, u)
        return x.astype(np.float32, copy=False)

    def fit(self, inputs: Sequence[str]) -> StaticEncoder:
        """For ``pooling="sif"``: learns the first principal component of the weighted training
        sentence vectors, which :meth:`encode` then removes. A no-op for mean and max pooling.

        Args:
            inputs: training texts.

        Returns:
            self.
        """
        items = check_inputs(inputs)
        if self.pooling != "sif":
            return self
        if not items:
            raise ValueError("static: cannot fit SIF on an empty list of texts")
        x = self._pool(items).astype(np.float64)
        # Uncentred SVD, as in the reference implementation (TruncatedSVD, 1 component).
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        if s.size == 0 or s[0] == 0:
            self.component = None  # no known token in any training text: nothing to remove
            return self
        u = vt[0]
        # The sign of a singular vector is arbitrary; fix it so fits are reproducible.
        u = u * np.sign(u[np.argmax(np.abs(u))])
        self.component = u.astype(np.float32)
        return self

    # -- identity and persistence ------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "vectors": self.vectors,
            "pooling": self.pooling,
            "lowercase": self.lowercase,
            "sif_a": self.sif_a,
        }

    def state_digest(self) -> str:
        if self.component is None:
            return ""
        return hashlib.sha256(self.component.tobytes()).hexdigest()[:24]

    def save(self, directory: str | Path, *, portable: bool = False, include_resources: bool = False) -> None:
        """Writes the config and the SIF component when fitted. Registered vectors are saved by
        name, unless ``include_resources``; vectors from a file are copied in (safetensors) when
        ``portable`` and always when the file is a pickle (``.kv``): a saved encoder never
        references one.

        Args:
            directory: the encoder's folder.
            portable: copy vectors found by a local path into the folder.
            include_resources: also copy registered vectors (``glove-6b-50d``), so that loading
                needs neither their package nor a download (``Classifier.save(dir, portable=True)``).
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = self.config()
        registered = is_registered(self.vectors, "vectors")
        if include_resources or (not registered and (portable or _is_pickle(self.vectors))):
            self._save_vectors(d / VECTORS_FILE)
            cfg["vectors"] = VECTORS_FILE  # relative to the folder, resolved by load
        write_config(d, cfg)
        comp = d / COMPONENT_FILE
        if self.component is not None:
            from safetensors.numpy import save_file

            save_file({"component": self.component}, str(comp))
        elif comp.exists():
            comp.unlink()

    def _save_vectors(self, path: Path) -> None:
        from safetensors.numpy import save_file

        kv = self._load()
        assert self._probs is not None
        save_file(
            {"vectors": np.ascontiguousarray(kv.vectors, dtype=np.float32), "probs": self._probs},
            str(path),
        )
        vocab_path(path).write_text(json.dumps([str(w) for w in kv.index_to_key], ensure_ascii=False))

    @classmethod
    def load(
        cls, directory: str | Path, *, trust_remote_code: bool = False, confined: bool = False
    ) -> StaticEncoder:
        """Rebuilds a saved encoder. ``vectors`` must be a registered name or a file relative to
        the folder (``confined``: inside it); a pickle (``.kv``) is refused: only a config of
        your own may name one."""
        d = Path(directory).resolve()
        kwargs = read_config(d)
        vectors = kwargs.get("vectors", "glove-6b-50d")
        if not isinstance(vectors, str):
            raise ModelFormatError(f"{d / CONFIG_FILE}: vectors must be a string, got {vectors!r}")
        if not is_registered(vectors, "vectors"):
            if confined:
                path = resolve_inside(d, vectors, "vectors", d / CONFIG_FILE)
            else:
                path = (d / Path(vectors).expanduser()).resolve()  # absolute stays absolute
            if _is_pickle(str(path)):
                raise ModelFormatError(
                    f"{d / CONFIG_FILE}: vectors {vectors!r} is a gensim .kv file, a pickle that "
                    "could run code when loaded; a saved model never references one (textransfer "
                    "copies such vectors into the folder as safetensors). Name a .kv file only in "
                    f"a config of your own; {SELF_CONTAINED_FIX}"
                )
            kwargs["vectors"] = str(path)
        enc = cls(**kwargs)
        comp = d / COMPONENT_FILE
        if comp.exists():
            from safetensors.numpy import load_file

            check_tensor_shapes(comp, {"component": (enc.dim,)}, source=f"the vectors' dim ({enc.dim})")
            enc.component = load_file(str(comp))["component"].astype(np.float32)
        return enc
