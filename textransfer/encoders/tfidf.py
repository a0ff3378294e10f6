"""TF-IDF features: the no-transfer baseline (nothing pretrained; the vocabulary is fitted on the
training texts)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from textransfer._modelfolder import (
    check_tensor_shapes,
    read_string_list,
)
from textransfer.encoders.base import Encoder, check_inputs, read_config, register_encoder

VOCAB_FILE = "tfidf.json"
IDF_FILE = "tfidf.safetensors"


@register_encoder("tfidf")
class TfidfEncoder(Encoder):
    """Bag of words/n-grams weighted by TF-IDF (scikit-learn), L2-normalised, dense float32.

    Must be fitted on training texts (:meth:`fit`) before encoding; the frozen strategy does so.
    The vocabulary is capped at ``max_features`` because features are returned dense.

    Args:
        ngram_range: smallest and largest n-gram length, e.g. ``(1, 2)``.
        max_features: vocabulary size cap (most frequent terms kept).
        min_df: minimum number of training texts a term must appear in.
        sublinear_tf: use ``1 + log(tf)``.
        lowercase: lowercase before tokenising.
        analyzer: ``"word"`` or ``"char_wb"`` n-grams.

    Example:
        >>> enc = TfidfEncoder(max_features=100).fit(["a good film", "a bad film"])
        >>> enc.encode(["good film"]).shape
        (1, 8)
    """

    def __init__(
        self,
        ngram_range: tuple[int, int] | list[int] = (1, 2),
        max_features: int = 5000,
        min_df: int = 2,
        sublinear_tf: bool = True,
        lowercase: bool = True,
        analyzer: Literal["word", "char_wb"] = "word",
    ) -> None:
        lo, hi = (int(v) for v in ngram_range)
        if not 1 <= lo <= hi:
            raise ValueError(f"tfidf: ngram_range must be (min, max) with 1 <= min <= max, got {ngram_range}")
        if max_features < 1:
            raise ValueError(f"tfidf: max_features must be >= 1, got {max_features}")
        self.ngram_range = (lo, hi)
        self.max_features = int(max_features)
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.lowercase = lowercase
        self.analyzer = analyzer
        self._vectorizer: Any = None

    def _make_vectorizer(self, min_df: int) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            ngram_range=self.ngram_range,
            max_features=self.max_features,
            min_df=min_df,
            sublinear_tf=self.sublinear_tf,
            lowercase=self.lowercase,
            analyzer=self.analyzer,
            # Keep one-letter words and punctuation-free tokens like "ok" or "4".
            token_pattern=r"(?u)\b\w+\b",
            dtype=np.float32,
        )

    def fit(self, inputs: Sequence[str]) -> TfidfEncoder:
        """Learns vocabulary and IDF weights from the training texts."""
        items = check_inputs(inputs)
        if not items:
            raise ValueError("tfidf: cannot fit on an empty list of texts")
        # A tiny corpus may have no term in min_df texts; fall back to min_df=1 rather than fail.
        min_df = self.min_df if len(items) >= 10 * self.min_df else 1
        vec = self._make_vectorizer(min_df)
        try:
            vec.fit(items)
        except ValueError as exc:  # "empty vocabulary"
            raise ValueError(
                f"tfidf: no terms found in the {len(items)} training texts ({exc}); "
                "are the texts empty or only punctuation?"
            ) from None
        self._vectorizer = vec
        return self

    @property
    def fitted(self) -> bool:
        return self._vectorizer is not None

    def _require_fitted(self) -> Any:
        if self._vectorizer is None:
            raise RuntimeError("tfidf: call fit(train_texts) before encode (the frozen strategy does)")
        return self._vectorizer

    @property
    def dim(self) -> int:
        return len(self._require_fitted().vocabulary_)

    def _encode(self, items: list[str], batch_size: int) -> np.ndarray:
        vec = self._require_fitted()
        return vec.transform(items).toarray().astype(np.float32, copy=False)

    def config(self) -> dict[str, Any]:
        return {
            "ngram_range": list(self.ngram_range),
            "max_features": self.max_features,
            "min_df": self.min_df,
            "sublinear_tf": self.sublinear_tf,
            "lowercase": self.lowercase,
            "analyzer": self.analyzer,
        }

    def _vocab_list(self) -> list[str]:
        vocab = self._require_fitted().vocabulary_
        terms = [""] * len(vocab)
        for term, idx in vocab.items():
            terms[idx] = term
        return terms

    def state_digest(self) -> str:
        if self._vectorizer is None:
            return "unfitted"
        h = hashlib.sha256(json.dumps(self._vocab_list()).encode())
        h.update(np.asarray(self._vectorizer.idf_, dtype=np.float32).tobytes())
        return h.hexdigest()[:24]

    def save(self, directory: str | Path, *, portable: bool = False) -> None:
        from safetensors.numpy import save_file

        d = Path(directory)
        super().save(d, portable=portable)
        vec = self._require_fitted()
        (d / VOCAB_FILE).write_text(json.dumps(self._vocab_list(), ensure_ascii=False))
        save_file({"idf": np.asarray(vec.idf_, dtype=np.float32)}, str(d / IDF_FILE))

    @classmethod
    def load(
        cls, directory: str | Path, *, trust_remote_code: bool = False, confined: bool = False
    ) -> TfidfEncoder:
        """Rebuilds the fitted vectorizer; the vocabulary must be unique strings, one IDF weight
        each (checked against the safetensors header before anything is read)."""
        from safetensors.numpy import load_file

        d = Path(directory)
        enc = cls(**read_config(d))
        vocab_path, idf_path = d / VOCAB_FILE, d / IDF_FILE
        terms = read_string_list(vocab_path, "term")
        check_tensor_shapes(idf_path, {"idf": (len(terms),)}, source=vocab_path)
        vec = enc._make_vectorizer(min_df=1)
        vec.vocabulary_ = {t: i for i, t in enumerate(terms)}
        # The IDF vector fully determines transform(); setting it rebuilds the fitted state.
        vec.idf_ = load_file(str(idf_path))["idf"].astype(np.float64)
        enc._vectorizer = vec
        return enc
