"""The strategy interface: how an encoder and a head are trained on labeled data.

To add a strategy: subclass :class:`Strategy` in a new module, decorate with
``@register_strategy("name")``, import it in ``strategies/__init__.py`` and implement
:meth:`Strategy.fit_with_context`, which returns a :class:`FitResult`. Everything a fit needs from
its caller (feature cache, training settings, batch size, checkpoint folder and resume) arrives in
its :class:`FitContext`; what the strategy can do is declared on the class
(``reads_frozen_features``, ``supports_checkpoints``, ``needs_target_texts``, ``trains_encoder``).
Check encoder/head *capabilities* (the protocols in ``encoders.base`` / ``heads.base``), never
concrete classes, and raise :class:`CapabilityError` naming what is missing.

Users call :meth:`Strategy.fit`, which returns the :class:`Classifier` and takes its settings
from the strategy (``create_strategy(..., training=, cache=, batch_size=)``) unless a context is
given; the experiments call :meth:`Strategy.fit_with_context` with a context of their own.

Every ``fit`` also takes a pandas DataFrame or a ``datasets.Dataset`` (columns ``text`` and
``label``) for ``train`` / ``val`` / ``target_unlabeled``: the base class turns them into
:class:`LabeledTexts` before a subclass's ``fit_with_context`` runs (see :func:`as_labeled_texts`),
so a strategy's own code only ever sees LabeledTexts.

Example:
    >>> strategy = create_strategy("frozen", training={"epochs": 5}, cache="feature-cache")  # doctest: +SKIP
    >>> clf = strategy.fit(create_encoder("tfidf"), create_head("logreg"), df)  # doctest: +SKIP
    >>> result = strategy.fit_with_context(encoder, head, train, context=FitContext(batch_size=64))  # doctest: +SKIP
    >>> result.classifier, result.info["train_rows"], result.history  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import numbers
from abc import ABC
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from textransfer._registry import Registry, accepted_params
from textransfer.classifier import Classifier
from textransfer.data.labeled import LabeledTexts, LabelMap
from textransfer.encoders.base import Encoder
from textransfer.encoders.cache import FeatureCache
from textransfer.heads.base import Head
from textransfer.training.args import TrainingArgs, training_args


def _load_builtin_strategies() -> None:
    import textransfer.strategies  # noqa: F401


STRATEGIES: Registry[Strategy] = Registry("strategy", loader=_load_builtin_strategies)
register_strategy = STRATEGIES.register


class CapabilityError(TypeError):
    """The encoder or head lacks a capability the strategy needs."""


# The data arguments of `fit`, and whether a table passed there is read with its `label` column.
_DATA_ARGS = {"train": True, "val": True, "target_unlabeled": False}


def as_labeled_texts(data: Any, role: str = "train") -> LabeledTexts | None:
    """``data`` as LabeledTexts: a pandas DataFrame / ``datasets.Dataset`` is read with
    :func:`textransfer.load_dataset` (columns ``text`` and ``label``; ``target_unlabeled`` is read
    without labels); LabeledTexts and None pass through.

    Args:
        data: what was passed to ``fit`` as ``role``.
        role: the ``fit`` argument (``train``, ``val`` or ``target_unlabeled``), for messages.

    Raises:
        ValueError: a table without those columns or without usable rows (the message names the
            columns found and how to name others with ``load_dataset``).
        TypeError: anything else.
    """
    if data is None or isinstance(data, LabeledTexts):
        return data
    from textransfer.data.frames import table_kind

    labeled = _DATA_ARGS.get(role, True)
    if table_kind(data) is None:
        raise TypeError(
            f"fit({role}=...) takes LabeledTexts, a pandas DataFrame or a datasets.Dataset, got "
            f"{type(data).__name__}. Fix: textransfer.load_dataset(...) reads files and tables into "
            "LabeledTexts"
        )
    from textransfer.data.sources import load

    try:
        return load(data, label_column="label" if labeled else None)
    except ValueError as exc:  # the message names the columns found and load_dataset's options
        raise ValueError(f"fit({role}=...): {exc}") from None


def _accepting_tables(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a strategy's ``fit_with_context`` (or ``fit``) so that its data arguments go through
    :func:`as_labeled_texts`."""
    sig = inspect.signature(method)
    roles = [r for r in _DATA_ARGS if r in sig.parameters]

    @functools.wraps(method)
    def fit_any_table(self: Strategy, *args: Any, **kwargs: Any) -> Any:
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError:
            return method(self, *args, **kwargs)  # the method's own error for a wrong call
        for role in roles:
            if role in bound.arguments:
                bound.arguments[role] = as_labeled_texts(bound.arguments[role], role)
        return method(*bound.args, **bound.kwargs)

    vars(fit_any_table)["accepts_tables"] = True  # a function attribute, read by __init_subclass__
    return fit_any_table


def _training_settings(value: Any) -> TrainingArgs:
    if isinstance(value, TrainingArgs):
        return value
    fields = [f.name for f in dataclasses.fields(TrainingArgs)]
    if isinstance(value, Mapping):
        for key in value:
            if key not in fields:
                close = difflib.get_close_matches(str(key), fields, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"training: unknown setting {key!r}.{hint} TrainingArgs fields: {', '.join(fields)}"
                )
        return training_args(value)  # types and ranges: ValueError naming training.<key>
    raise TypeError(
        f"training must be a TrainingArgs (textransfer.TrainingArgs(epochs=2, lr=1e-4)) or a dict "
        f"of its fields ({', '.join(fields)}), got {type(value).__name__}"
    )


def _batch_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"batch_size must be an int (inputs per encoder call), got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"batch_size must be >= 1 (inputs per encoder call), got {value}")
    return int(value)


def _feature_cache(value: Any) -> FeatureCache | None:
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        return FeatureCache(Path(value).expanduser())
    if callable(getattr(value, "get", None)) and callable(getattr(value, "put", None)):
        return value  # a FeatureCache, or an object with its get/put interface
    raise TypeError(
        f"cache must be a FeatureCache, a directory (str or Path) or None, got {type(value).__name__}"
    )


def require_target_texts(strategy: str, target_unlabeled: LabeledTexts | None, min_rows: int = 1) -> LabeledTexts:
    """``target_unlabeled`` when it has at least ``min_rows`` rows, else the one error every
    adaptation strategy gives, saying how to provide target texts (their labels are never used)."""
    if target_unlabeled is None or len(target_unlabeled) < min_rows:
        got = "none" if target_unlabeled is None else f"{len(target_unlabeled)} row(s)"
        raise ValueError(
            f"{strategy} needs unlabeled target texts (target_unlabeled, at least {min_rows} row(s); "
            f"their labels are not used), got {got}. Fix: name them in the config (`data.unlabeled:` "
            "in a run or curve config; the targets of a `textransfer crossdomain` grid), or pass "
            "target_unlabeled=target.without_labels() to fit"
        )
    return target_unlabeled


@dataclasses.dataclass(frozen=True)
class FitContext:
    """Everything a fit needs from its caller; each field is checked when the context is made.

    Attributes:
        training: :class:`TrainingArgs` for torch heads and fine-tuning (seed, epochs, lr, batch
            size, precision, progress bars, ...); a dict of its fields is converted.
        cache: a FeatureCache for frozen features (a directory is turned into one); None encodes
            every time.
        batch_size: inputs per encoder call when encoding frozen features or label descriptions
            (the training batch size is ``training.batch_size``).
        checkpoint_dir: where a strategy that ``supports_checkpoints`` writes its epoch
            checkpoints (None: none are written); ignored by the others.
        resume: continue from the newest checkpoint in ``checkpoint_dir``.
        base_model: the model of the source-only fit this strategy starts with
            (:meth:`Strategy.base_fit`), already trained by the caller with the same encoder,
            head, training settings, seed and source rows: a strategy that has such a fit starts
            from a copy of it instead of training it again (``self_train`` over ``finetune``:
            round 0); the others ignore it. The caller vouches for "the same": a cross-domain
            run passes it only when every one of those matches.

    Processes (a ``torchrun`` / ``accelerate launch``) need no field: the training loop and
    :mod:`textransfer.distributed` read them from the launch.

    Example:
        >>> ctx = FitContext(training={"epochs": 2, "seed": 1}, batch_size=64)
        >>> ctx.training.epochs, ctx.cache, ctx.checkpoint_dir
        (2, None, None)
    """

    training: TrainingArgs = dataclasses.field(default_factory=TrainingArgs)
    cache: FeatureCache | None = None
    batch_size: int = 32
    checkpoint_dir: Path | None = None
    resume: bool = False
    base_model: Classifier | None = None

    def __post_init__(self) -> None:
        # Frozen: the checked values are written once, here.
        object.__setattr__(self, "training", _training_settings(self.training))
        object.__setattr__(self, "cache", _feature_cache(self.cache))
        object.__setattr__(self, "batch_size", _batch_size(self.batch_size))
        if self.checkpoint_dir is not None:
            object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))
        object.__setattr__(self, "resume", bool(self.resume))
        if self.base_model is not None and not isinstance(self.base_model, Classifier):
            raise TypeError(f"base_model must be a trained Classifier or None, got {type(self.base_model).__name__}")


@dataclasses.dataclass
class FitResult:
    """What a fit returns (:meth:`Strategy.fit_with_context`).

    Attributes:
        classifier: the trained classifier.
        info: what the fit learned and used, as saved in metrics.json: ``train_rows`` and, by
            strategy, ``val_rows``, ``best_epoch``, ``target_rows``, the per-epoch ``history``, ...
    """

    classifier: Classifier
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def history(self) -> list[dict[str, Any]]:
        """The training history, one dict per epoch (empty when nothing was trained by epochs)."""
        return list(self.info.get("history") or [])


class Strategy(ABC):
    """Trains ``head`` (and possibly ``encoder``) on ``train``; returns a :class:`Classifier`.

    Implement :meth:`fit_with_context`; declare what the strategy can do with the class attributes
    below. Settings given to :func:`create_strategy` (or set as attributes), each checked when set,
    are what :meth:`fit` trains with when no :class:`FitContext` is given:

    Attributes:
        training: :class:`TrainingArgs` for torch heads and fine-tuning (a dict of its fields is
            converted).
        cache: a FeatureCache for frozen features (a directory path is turned into one), None to
            disable.
        batch_size: inputs per encoder call when encoding frozen features or label descriptions;
            the training batch size is ``training.batch_size``.
        reads_frozen_features: ``fit`` reads frozen features of its inputs through the context's
            cache, so a caller may fill the cache ahead and share the encoder between fits. A
            class attribute that an instance may answer for itself (``self_train``: its base).
        trains_encoder: ``fit`` trains the encoder's weights (per instance, as above).
        supports_checkpoints: ``fit`` writes epoch checkpoints into ``context.checkpoint_dir``
            and continues from them with ``context.resume``.
        needs_target_texts: ``fit`` needs ``target_unlabeled`` (adaptation strategies).
        source_only: ``fit`` never reads ``target_unlabeled``: the model it trains depends on the
            source rows, the settings and the seed alone, so a cross-domain run trains it once per
            source and seed and scores that model on every target. Declared, never inherited
            blindly: an adaptation that subclasses a source-only strategy sets it back to False
            (:func:`is_source_only` also requires ``needs_target_texts`` to be False).
    """

    registry_name: ClassVar[str]
    reads_frozen_features: bool = False
    trains_encoder: bool = False
    supports_checkpoints: ClassVar[bool] = False
    needs_target_texts: ClassVar[bool] = False
    source_only: ClassVar[bool] = False
    # The head a config gets when it names none (``strategy: {name: ...}`` without ``head:``).
    default_head: ClassVar[str] = "logreg"

    def __init__(self) -> None:
        self.cache = None
        self.training = TrainingArgs()
        self.batch_size = 32
        self._last_fit_info: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "fit" in own and "fit_with_context" not in own and cls.fit_with_context is not Strategy.fit_with_context:
            # It would be bypassed: fit() and the experiments call fit_with_context.
            raise TypeError(
                f"{cls.__name__} overrides fit() of a strategy that implements fit_with_context(); "
                "override fit_with_context(encoder, head, train, *, val=None, target_unlabeled=None, "
                "context=None) -> FitResult instead (and call super().fit_with_context(...))"
            )
        # Every strategy's own fit takes DataFrames / Datasets too; done here, once, so that no
        # strategy (built in or registered by a user) can forget it.
        for name in ("fit_with_context", "fit"):
            method = own.get(name)
            if method is not None and not getattr(method, "accepts_tables", False):
                setattr(cls, name, _accepting_tables(method))  # replacing the method is the point

    @property
    def training(self) -> TrainingArgs:
        return self._training

    @training.setter
    def training(self, value: TrainingArgs | Mapping[str, Any]) -> None:
        self._training = _training_settings(value)

    @property
    def cache(self) -> FeatureCache | None:
        return self._cache

    @cache.setter
    def cache(self, value: FeatureCache | str | Path | None) -> None:
        self._cache = _feature_cache(value)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = _batch_size(value)

    @property
    def name(self) -> str:
        return type(self).registry_name

    @property
    def last_fit_info(self) -> dict[str, Any]:
        """What the last :meth:`fit` reported (kept for older code: use
        ``fit_with_context(...).info``, which the experiments read)."""
        return self.__dict__.get("_last_fit_info", {})

    @last_fit_info.setter
    def last_fit_info(self, value: dict[str, Any]) -> None:
        # Strategies written for the older contract report their fit info here.
        self._last_fit_info = dict(value)

    @property
    def encodes_frozen_features(self) -> bool:
        """The older name of :attr:`reads_frozen_features`."""
        return self.reads_frozen_features

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-serialisable), saved with the model."""
        return {}

    def base_fit(self) -> tuple[str, dict[str, Any]] | None:
        """The source-only fit this strategy starts with, as ``(strategy name, its config())``,
        or None (the default: none). A caller that has trained exactly that fit (same encoder,
        head, training settings, seed and source rows) may hand its model over as
        ``FitContext.base_model``, and this strategy starts from a copy of it."""
        return None

    def check(self, encoder: Encoder, head: Head) -> None:
        """Raises :class:`CapabilityError` when this strategy cannot train ``head`` over
        ``encoder``; the default accepts any pair.

        Cheap: it looks at the components' kinds and loads no weights, so the experiments call
        it when they build a setup's components, before any setup of a run is trained (a
        ``finetune`` row on TF-IDF fails at the start, not after the rows before it). ``fit``
        checks again.
        """
        return None

    def context(self, given: FitContext | None = None) -> FitContext:
        """``given``, or a context of this strategy's own settings (``training``, ``cache``,
        ``batch_size``; no checkpoints)."""
        if given is not None:
            return given
        return FitContext(training=self.training, cache=self.cache, batch_size=self.batch_size)

    def fit(
        self,
        encoder: Encoder,
        head: Head,
        train: LabeledTexts,
        val: LabeledTexts | None = None,
        target_unlabeled: LabeledTexts | None = None,
        *,
        context: FitContext | None = None,
    ) -> Classifier:
        """Trains and returns a classifier. ``target_unlabeled`` is only for adaptation methods.

        ``train``, ``val`` and ``target_unlabeled`` may also be a pandas DataFrame or a
        ``datasets.Dataset`` with columns ``text`` and ``label`` (see :func:`as_labeled_texts`).
        Without ``context``, the fit uses this strategy's ``training``, ``cache`` and
        ``batch_size``. What the fit learned is :attr:`last_fit_info`; :meth:`fit_with_context`
        returns it with the classifier.
        """
        result = self.fit_with_context(encoder, head, train, val=val, target_unlabeled=target_unlabeled,
                                       context=context)
        self._last_fit_info = result.info
        return result.classifier

    def fit_with_context(
        self,
        encoder: Encoder,
        head: Head,
        train: LabeledTexts,
        *,
        val: LabeledTexts | None = None,
        target_unlabeled: LabeledTexts | None = None,
        context: FitContext | None = None,
    ) -> FitResult:
        """Trains a classifier with the settings of ``context`` (default: :meth:`context`) and
        returns it with what the fit learned. What a strategy implements.

        The base implementation serves strategies written for the older contract, which
        implement only :meth:`fit` and read their settings from their attributes: the context's
        settings are set on them first, and their ``last_fit_info`` is the result's info.
        """
        if type(self).fit is Strategy.fit or self.__dict__.get("_in_older_fit"):
            raise NotImplementedError(f"{type(self).__name__} must implement fit_with_context (see Strategy)")
        if context is not None:
            self.training, self.cache, self.batch_size = context.training, context.cache, context.batch_size
        self.__dict__["_in_older_fit"] = True
        try:
            classifier = self.fit(encoder, head, train, val, target_unlabeled)
        finally:
            self.__dict__.pop("_in_older_fit", None)
        return FitResult(classifier, dict(self.last_fit_info))

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


def create_strategy(
    name: str,
    *,
    training: TrainingArgs | Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    cache: FeatureCache | str | Path | None = None,
    **kwargs: Any,
) -> Strategy:
    """Builds a registered strategy by name (see :func:`list_strategies`).

    Args:
        name: the registered name (``frozen``, ``finetune``, ...).
        training: optimisation settings: a :class:`TrainingArgs` or a dict of its fields
            (``{"epochs": 2, "lr": 1e-4}``); default ``TrainingArgs()``.
        batch_size: inputs per encoder call when encoding frozen features (default 32); the
            training batch size is ``training.batch_size``.
        cache: a FeatureCache or a directory for cached frozen features (default: none).
        **kwargs: the strategy's own settings (e.g. ``freeze_bottom`` for ``finetune``).

    Raises:
        TypeError: ``training``, ``batch_size`` or ``cache`` of the wrong type.
        ValueError: an unknown setting or a value out of range, naming it.

    Example:
        >>> from textransfer import TrainingArgs
        >>> strategy = create_strategy("finetune", training=TrainingArgs(epochs=2, lr=1e-4))  # doctest: +SKIP
    """
    factory = STRATEGIES.get(name)
    own = accepted_params(factory)
    training_keys = {f.name for f in dataclasses.fields(TrainingArgs)}
    misplaced = [k for k in kwargs if k in training_keys and own is not None and k not in own]
    if misplaced:
        key = misplaced[0]
        raise ValueError(
            f"create_strategy({name!r}, {key}=...): {key!r} is a training setting, not one of the "
            f"{name} strategy's. Fix: training={{{key!r}: ...}} or training=TrainingArgs({key}=...)"
        )
    strategy = STRATEGIES.create(name, **kwargs)
    if training is not None:
        strategy.training = training
    if batch_size is not None:
        strategy.batch_size = batch_size
    if cache is not None:
        strategy.cache = cache
    return strategy


def list_strategies() -> list[str]:
    """Names of the registered strategies."""
    return STRATEGIES.names()


def is_source_only(name: str) -> bool:
    """True when the registered strategy ``name`` trains on the source alone: a
    :class:`Strategy` class that declares ``source_only`` and does not need target texts.
    A plug-in registered as a plain factory function is never taken for one (nothing says
    whether its fit reads ``target_unlabeled``).

    Example:
        >>> is_source_only("finetune"), is_source_only("dann"), is_source_only("self_train")
        (True, False, False)
    """
    factory = STRATEGIES.get(name)
    return (isinstance(factory, type) and issubclass(factory, Strategy)
            and bool(factory.source_only) and not factory.needs_target_texts)
