"""Zero-shot classification: no labeled examples, only a description of each label.

The encoder embeds the texts and each label's description(s) (``"a positive review"``); a text
gets the label whose description embedding is closest by cosine similarity. With a sentence
encoder this is the 0-label point of a learning curve. The saved model is an ordinary
encoder + ``cosine`` head whose prototypes are the description embeddings::

    strategy:
      name: zero_shot              # head defaults to cosine
      labels:
        positive: "a positive review"
        negative: ["a negative review", "a bad product"]   # several: their mean embedding
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np

from textransfer.classifier import Classifier
from textransfer.data.labeled import Label, LabeledTexts, LabelMap
from textransfer.encoders.base import Encoder, FittableEncoder
from textransfer.heads.base import Head, PrototypeHead
from textransfer.strategies.base import (
    CapabilityError,
    FitContext,
    FitResult,
    Strategy,
    register_strategy,
)

logger = logging.getLogger("textransfer.strategies")


def _descriptions(labels: Mapping[Any, Any] | None) -> dict[str, list[str]]:
    if not labels:
        raise ValueError(
            "zero_shot needs a description of every label: strategy.labels: "
            "{positive: 'a positive review', negative: 'a negative review'}"
        )
    out: dict[str, list[str]] = {}
    for key, text in labels.items():
        texts = [text] if isinstance(text, str) else list(text or [])
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(
                f"zero_shot: label {key!r} needs a non-empty description (a string or a list of strings)"
            )
        out[str(key)] = texts
    return out


@register_strategy("zero_shot")
class ZeroShotStrategy(Strategy):
    """Classifies by cosine similarity between text embeddings and label-description embeddings.

    ``fit`` trains nothing and reads no labels of ``train``: it only checks that every label of
    ``train`` (when it has labels) has a description, so the classifier's labels keep the data's
    types (the ints of an image set stay ints). A fittable encoder (TF-IDF) is fitted on the
    texts of ``train`` and the descriptions.

    Args:
        labels: ``{label: description or [descriptions]}``; at least two labels.

    Example:
        >>> s = create_strategy("zero_shot", labels={"pos": "a positive review", "neg": "a negative review"})  # doctest: +SKIP
        >>> clf = s.fit(create_encoder("sentence"), create_head("cosine"), LabeledTexts([]))  # doctest: +SKIP
        >>> clf.predict(["I loved it"])  # doctest: +SKIP
        ['pos']
    """

    default_head: ClassVar[str] = "cosine"
    source_only = True  # target_unlabeled is never read

    def __init__(self, labels: Mapping[Any, Any] | None = None) -> None:
        super().__init__()
        self.descriptions = _descriptions(labels)
        if len(self.descriptions) < 2:
            raise ValueError(
                f"zero_shot: describe at least two labels, got {list(self.descriptions)}"
            )

    def config(self) -> dict[str, Any]:
        return {"labels": {k: v[0] if len(v) == 1 else v for k, v in self.descriptions.items()}}

    def label_map_of(self, train: LabeledTexts | None) -> tuple[LabelMap, list[str]]:
        """The label map (data label types where ``train`` has labels) and each class's key.

        Raises:
            ValueError: a label of ``train`` has no description (the message names them).
        """
        if train is None or not train.labels:
            return LabelMap.from_labels(list(self.descriptions)), []
        by_str: dict[str, Label] = {str(lab): lab for lab in train.labels}
        missing = sorted(k for k in by_str if k not in self.descriptions)
        if missing:
            raise ValueError(
                f"zero_shot: no description for label(s) {missing} of {train.domain!r}; add them under "
                f"strategy.labels (described: {sorted(self.descriptions)})"
            )
        extra = [k for k in self.descriptions if k not in by_str]
        labels = [*by_str.values(), *extra]  # described labels absent from the data still compete
        return LabelMap.from_labels(labels), extra

    def check(self, encoder: Encoder, head: Head) -> None:
        """Raises :class:`CapabilityError` unless ``head`` is the cosine (prototype) head."""
        if not isinstance(head, PrototypeHead):
            raise CapabilityError(
                f"zero_shot compares embeddings with label descriptions; head {head.name!r} cannot hold "
                "them: use head: cosine"
            )

    def fit_with_context(
        self,
        encoder: Encoder,
        head: Head,
        train: LabeledTexts | None = None,
        *,
        val: LabeledTexts | None = None,
        target_unlabeled: LabeledTexts | None = None,
        context: FitContext | None = None,
    ) -> FitResult:
        ctx = self.context(context)
        self.check(encoder, head)
        label_map, extra = self.label_map_of(train)
        if extra:
            logger.info(
                "zero_shot: described label(s) %s do not occur in %r",
                extra,
                train.domain if train else "",
            )
        if isinstance(encoder, FittableEncoder):
            texts = [t for v in self.descriptions.values() for t in v]
            encoder.fit([*(train.texts if train is not None else []), *texts])
        protos = []
        for lab in label_map.labels:
            emb = encoder.encode(self.descriptions[str(lab)], batch_size=ctx.batch_size)
            protos.append(np.asarray(emb, dtype=np.float32).mean(axis=0))
        head.build(encoder.dim, len(label_map))
        cast(PrototypeHead, head).set_prototypes(np.stack(protos))  # check() passed
        info = {"train_rows": 0, "labels": [str(lab) for lab in label_map.labels]}
        classifier = Classifier(
            encoder, head, label_map, strategy={"name": self.name, "kwargs": self.config()}
        )
        return FitResult(classifier, info)
