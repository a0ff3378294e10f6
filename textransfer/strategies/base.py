"""The strategy interface: how an encoder and a head are trained on labeled data.

To add a strategy: subclass :class:`Strategy` in a new module, decorate with
``@register_strategy("name")``, import it in ``strategies/__init__.py`` and implement :meth:`fit`.
Check encoder/head *capabilities* (the protocols in ``encoders.base`` / ``heads.base``), never
concrete classes, and raise :class:`CapabilityError` naming what is missing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from textransfer._registry import Registry
from textransfer.classifier import Classifier
from textransfer.data.labeled import LabeledTexts, LabelMap
from textransfer.encoders.base import Encoder
from textransfer.encoders.cache import FeatureCache
from textransfer.heads.base import Head
from textransfer.training.loop import TrainingArgs


def _load_builtin_strategies() -> None:
    import textransfer.strategies  # noqa: F401


STRATEGIES: Registry[Strategy] = Registry("strategy", loader=_load_builtin_strategies)
register_strategy = STRATEGIES.register


class CapabilityError(TypeError):
    """The encoder or head lacks a capability the strategy needs."""


class Strategy(ABC):
    """Trains ``head`` (and possibly ``encoder``) on ``train``; returns a :class:`Classifier`.

    Attributes set by the runner (or by hand): ``cache`` (a FeatureCache for frozen features,
    None to disable) and ``training`` (TrainingArgs for torch heads / fine-tuning).
    """

    registry_name: ClassVar[str]
    #: True when ``fit`` reads frozen features of its inputs (through the feature cache), so a
    #: caller may fill the cache ahead; False for strategies that train the encoder.
    encodes_frozen_features: ClassVar[bool] = False
    # The head a config gets when it names none (``strategy: {name: ...}`` without ``head:``).
    default_head: ClassVar[str] = "logreg"

    def __init__(self) -> None:
        self.cache: FeatureCache | None = None
        self.training: TrainingArgs = TrainingArgs()
        self.batch_size: int = 32

    @property
    def name(self) -> str:
        return type(self).registry_name

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-serialisable), saved with the model."""
        return {}

    @abstractmethod
    def fit(
        self,
        encoder: Encoder,
        head: Head,
        train: LabeledTexts,
        val: LabeledTexts | None = None,
        target_unlabeled: LabeledTexts | None = None,
    ) -> Classifier:
        """Trains and returns a classifier. ``target_unlabeled`` is only for adaptation methods."""

    @staticmethod
    def label_map_for(train: LabeledTexts) -> LabelMap:
        """The label map of the training data, checking it can train a classifier."""
        if train.labels is None:
            raise ValueError(f"training data {train.domain!r} has no labels: set `label_column` in its data config")
        if len(train) == 0:
            raise ValueError(f"training data {train.domain!r} is empty")
        label_map = LabelMap.from_labels(train.labels)
        if len(label_map) < 2:
            raise ValueError(
                f"training data {train.domain!r} has a single class ({label_map.labels[0]!r}, "
                f"{len(train)} rows): a classifier needs at least two; check the label column"
            )
        return label_map


def create_strategy(name: str, **kwargs: Any) -> Strategy:
    """Builds a registered strategy by name (see :func:`list_strategies`).

    Example:
        >>> strategy = create_strategy("frozen")  # doctest: +SKIP
    """
    return STRATEGIES.create(name, **kwargs)


def list_strategies() -> list[str]:
    """Names of the registered strategies."""
    return STRATEGIES.names()
