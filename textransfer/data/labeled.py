"""LabeledTexts: the one in-memory dataset type, and the label map saved with models."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Label = str | int
_FINGERPRINT_CHUNK = 8192  # inputs hashed per join: bounded extra memory on a million rows


@dataclass
class LabeledTexts:
    """Inputs with optional labels, from one domain.

    Attributes:
        texts: the inputs (strings for text data; images for the vision path).
        labels: one label per input (str or int), or None for unlabeled data.
        domain: a short name of where the data comes from (``"movies"``), used in reports.
        ids: stable row ids (row numbers in the source file unless the source has ids).
    """

    texts: list[Any]
    labels: list[Label] | None = None
    domain: str = "data"
    ids: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.texts = list(self.texts)
        if self.labels is not None:
            self.labels = list(self.labels)
            if len(self.labels) != len(self.texts):
                raise ValueError(
                    f"{self.domain}: {len(self.texts)} inputs but {len(self.labels)} labels"
                )
        if not self.ids:
            self.ids = list(range(len(self.texts)))
        elif len(self.ids) != len(self.texts):
            raise ValueError(f"{self.domain}: {len(self.texts)} inputs but {len(self.ids)} ids")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def subset(self, indices: Sequence[int] | np.ndarray, domain: str | None = None) -> LabeledTexts:
        """Rows at ``indices``, in that order."""
        idx = [int(i) for i in indices]
        return LabeledTexts(
            texts=[self.texts[i] for i in idx],
            labels=None if self.labels is None else [self.labels[i] for i in idx],
            domain=domain or self.domain,
            ids=[self.ids[i] for i in idx],
        )

    def without_labels(self) -> LabeledTexts:
        """The same inputs with the labels removed (e.g. target texts for domain adaptation)."""
        return LabeledTexts(texts=self.texts, labels=None, domain=self.domain, ids=self.ids)

    def label_counts(self) -> dict[Label, int]:
        return dict(Counter(self.labels or []))

    def fingerprint(self) -> str:
        """A digest of inputs and labels (not ids or domain name): same data, same features."""
        h = hashlib.sha256()
        texts = self.texts
        # Each input's bytes, then a NUL. Strings go in chunks through one join and one update
        # (a feature-cache hit is mostly this hash: a Python call per text costs twice as much);
        # the digest is the same as hashing them one by one.
        for start in range(0, len(texts), _FINGERPRINT_CHUNK):
            chunk = texts[start : start + _FINGERPRINT_CHUNK]
            if set(map(type, chunk)) == {str}:
                try:
                    joined = b"\x00".join(map(str.encode, chunk))
                except UnicodeEncodeError:  # lone surrogates: hashed as before, not rejected
                    joined = b"\x00".join([t.encode("utf-8", "surrogatepass") for t in chunk])
                h.update(joined)
                h.update(b"\x00")
            else:
                for t in chunk:
                    h.update(_digest_item(t))
                    h.update(b"\x00")
        try:
            labels = json.dumps(self.labels)  # the C encoder: twice as fast as with default=
        except TypeError:
            labels = json.dumps(self.labels, default=str)
        h.update(labels.encode())
        return h.hexdigest()[:24]


def _digest_item(item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8", "surrogatepass")
    if isinstance(item, np.ndarray):
        return hashlib.sha256(item.tobytes()).digest() + str(item.shape).encode()
    return repr(item).encode()


class LabelMap:
    """Maps labels (str or int) to contiguous class ids 0..k-1, in sorted order.

    Example:
        >>> lm = LabelMap.from_labels(["pos", "neg", "pos"])
        >>> lm.labels, lm.encode(["pos"]).tolist()
        (['neg', 'pos'], [1])
    """

    def __init__(self, labels: Sequence[Label]) -> None:
        self.labels: list[Label] = list(labels)
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"duplicate labels in label map: {self.labels}")
        self._index = {lab: i for i, lab in enumerate(self.labels)}

    @classmethod
    def from_labels(cls, labels: Sequence[Label]) -> LabelMap:
        uniq = set(labels)
        try:
            ordered = sorted(uniq)
        except TypeError:  # mixed int/str labels
            ordered = sorted(uniq, key=str)
        return cls(ordered)

    def __len__(self) -> int:
        return len(self.labels)

    def encode(self, labels: Sequence[Label]) -> np.ndarray:
        """Class ids (int64) for ``labels``; unseen labels raise a ValueError naming them."""
        try:
            return np.asarray([self._index[lab] for lab in labels], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(
                f"label {exc.args[0]!r} is not in the label map {self.labels}: the evaluation data "
                "has a class the model was not trained on (map it with `label_map:` in the data config)"
            ) from None

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[Label]:
        return [self.labels[int(i)] for i in ids]

    def to_json(self) -> list[Label]:
        return list(self.labels)
