"""A scikit-learn estimator over textransfer: encoder + head + strategy, fitted on texts.

``TextTransferClassifier`` takes plain constructor arguments (names or ``{"name": ..., **kwargs}``
dicts of registered components, and training settings), so scikit-learn can clone it, search
its parameters and use it as the last step of a ``Pipeline``::

    >>> from sklearn.model_selection import GridSearchCV  # doctest: +SKIP
    >>> search = GridSearchCV(TextTransferClassifier(head={"name": "logreg"}),
    ...                       {"head": [{"name": "logreg", "C": c} for c in (0.1, 1, 10)]})  # doctest: +SKIP
    >>> search.fit(texts, labels).best_params_  # doctest: +SKIP

Components are built exactly as a run config's ``encoder:`` / ``strategy:`` / ``training:``
sections are (:func:`textransfer.experiments._kernel.fit_setup`), with the same validation and errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from textransfer.training.args import TrainingArgs

# Defaults of the training settings come from TrainingArgs itself: one source of truth.
# Every field has a plain default (dict[str, Any]: mypy would keep dataclasses.MISSING in the type).
_TRAINING_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TrainingArgs)}
# Constructor argument -> TrainingArgs field (``batch_size`` of the estimator is the encoding batch,
# as ``batch_size`` of a run config is; the optimiser's batch is ``train_batch_size``).
_TRAINING_PARAMS = {
    "epochs": "epochs",
    "lr": "lr",
    "train_batch_size": "batch_size",
    "weight_decay": "weight_decay",
    "warmup_ratio": "warmup_ratio",
    "grad_accum": "grad_accum",
    "max_grad_norm": "max_grad_norm",
    "mixed_precision": "mixed_precision",
    "metric": "metric",
    "patience": "patience",
}
# Why each scikit-learn check that cannot apply is expected to fail (see the class docstring).
_FITS_NUMBERS = "fits on the numeric array it generates; a text classifier refuses numbers (TypeError: not str)"
_INDEXES_2D = (
    "indexes X as a 2-D numeric matrix after the one_d_array tag made it 1-D (an IndexError in "
    "the check itself); the property it checks is tested on texts"
)
_NUMERIC_MESSAGE = (
    "expects the message of a numeric-matrix validation (NaN/inf, 0 features, negative values, "
    "one class) on numeric X; for texts the inputs are refused earlier with a TypeError"
)
#: scikit-learn checks that cannot apply to a text classifier, with the reason: each one fits or
#: predicts on numeric arrays that it generates itself. The properties they guard are tested on
#: texts in tests/test_estimator.py (fit returns self, parameters untouched, idempotent fit,
#: sample order and subset invariance, NotFittedError, one-class error, string/integer labels).
NUMERIC_ONLY_CHECKS: dict[str, str] = {
    **dict.fromkeys(
        (
            "check_fit_score_takes_y",
            "check_estimators_overwrite_params",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_n_features_in_after_fitting",
            "check_estimators_dtypes",
            "check_pipeline_consistency",
            "check_estimators_pickle",
            "check_classifier_data_not_an_array",
            "check_classifiers_classes",
            "check_classifiers_train",
            "check_supervised_y_2d",
            "check_dtype_object",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_fit1d",
        ),
        _FITS_NUMBERS,
    ),
    **dict.fromkeys(
        (
            "check_dont_overwrite_parameters",
            "check_dict_unchanged",
            "check_f_contiguous_array_estimator",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit2d_1sample",
            "check_fit2d_1feature",
            "check_fit2d_predict1d",
        ),
        _INDEXES_2D,
    ),
    "check_estimator_sparse_array": (
        "makes a 1-D sparse array for a one_d_array estimator, which scipy cannot convert (a "
        "ValueError in the check itself); sparse matrices are refused with 'sparse input is not "
        "supported' (check_estimator_sparse_matrix passes)"
    ),
    **dict.fromkeys(
        (
            "check_estimators_empty_data_messages",
            "check_estimators_nan_inf",
            "check_positive_only_tag_during_fit",
            "check_classifiers_one_label",
        ),
        _NUMERIC_MESSAGE,
    ),
}


def _component(value: Any, what: str) -> dict[str, Any]:
    """``"tfidf"`` or ``{"name": "tfidf", **kwargs}`` -> a fresh dict (the estimator's parameter
    stays untouched, as scikit-learn requires)."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return dict(value)
    raise ValueError(
        f"TextTransferClassifier: {what} must be a registered name (e.g. 'tfidf') or a dict with a "
        f"'name' key and constructor arguments (e.g. {{'name': 'logreg', 'C': 1.0}}), got {value!r}"
    )


def _items(X: Any) -> list[Any]:
    """The rows of ``X`` as a list, before any type check (see :func:`as_texts`)."""
    from textransfer.encoders.base import check_inputs

    if X is None:
        raise ValueError("TextTransferClassifier: X is None; pass a list of texts")
    if isinstance(X, (str, bytes)):
        return check_inputs(X)  # raises: a single string, wrap it in a list
    if hasattr(X, "tocsr") or hasattr(X, "to_dense"):  # scipy / torch sparse
        raise TypeError(
            "TextTransferClassifier: X is a sparse matrix, and sparse input is not supported: "
            "pass the texts themselves (the encoder makes the features)"
        )
    if not isinstance(X, (list, tuple)) and hasattr(X, "__array__") and not hasattr(X, "__iter__"):
        X = np.asarray(X)  # array-likes that only convert (no iteration of their own)
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2 and shape[1] == 1:
        X = X.iloc[:, 0] if hasattr(X, "iloc") else np.asarray(X)[:, 0]
    elif shape is not None and len(shape) != 1:
        dtype = getattr(X, "dtype", None)
        numeric = dtype is not None and getattr(dtype, "kind", "O") in "biufc"
        raise ValueError(
            f"TextTransferClassifier: X has shape {tuple(shape)}"
            + (" and holds numbers" if numeric else "")
            + "; pass one column of texts (a list, a 1-D array or Series, or a one-column "
            "DataFrame such as df[['text']]). To classify feature vectors, use a scikit-learn "
            "classifier directly"
        )
    return list(X.tolist() if hasattr(X, "tolist") else X)


def as_texts(X: Any) -> list[str]:
    """The texts of ``X``: a list/tuple/1-D array/Series of strings, or a 2-D array/DataFrame
    with exactly one (text) column.

    Raises:
        ValueError: ``X`` is not one-dimensional and not a single column.
        TypeError: ``X`` is sparse, or an item is not a string (the message names its position).
    """
    from textransfer.encoders.base import check_inputs

    return check_inputs(_items(X))


def _as_labels(y: Any) -> list[Any]:
    if y is None:
        raise ValueError(
            "TextTransferClassifier requires y to be passed, but the target y is None: pass one label per text"
        )
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"TextTransferClassifier: y must be one label per text (1-D), got shape {arr.shape}")
    check_classification_targets(arr)
    # Python scalars (not numpy's): the label map is saved as JSON with the model.
    return arr.tolist()


class TextTransferClassifier(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier: a textransfer encoder + head trained with a transfer strategy.

    Args:
        encoder: registered encoder name (``"tfidf"``, ``"static"``, ``"transformer"``,
            ``"sentence"``) or ``{"name": ..., **kwargs}``, e.g.
            ``{"name": "transformer", "model": "all-MiniLM-L6-v2", "normalize": True}``.
        head: registered head name (``"logreg"``, ``"linear"``, ``"mlp"``, ``"cosine"``) or
            ``{"name": ..., **kwargs}``; None: the strategy's default head (logreg; cosine
            for ``zero_shot``).
        strategy: registered strategy name (``"frozen"``, ``"finetune"``, ``"coral"``,
            ``"dann"``, ...) or ``{"name": ..., **kwargs}``.
        batch_size: texts per encoder batch, when fitting and predicting.
        seed: seeds data order, dropout and initialisation (``training.seed``).
        cache_dir: a feature cache folder: frozen features of the same texts are not encoded
            twice (e.g. across a grid over head parameters); None: no cache.
        epochs, lr, train_batch_size, weight_decay, warmup_ratio, grad_accum, max_grad_norm,
            mixed_precision, metric, patience: training settings of torch heads and
            fine-tuning (the ``training:`` section of a config; see
            :class:`textransfer.training.args.TrainingArgs`).

    Attributes:
        classes_: the labels seen in ``fit``, sorted; the column order of :meth:`predict_proba`.
        classifier_: the fitted :class:`textransfer.Classifier`.
        fit_info_: what the strategy reports about the fit (rows, history, ...).

    Input: ``X`` is a sequence of texts (list, 1-D array, pandas Series, or a one-column
    DataFrame / 2-D array); ``y`` one label (str or int) per text. Numeric feature matrices are
    refused with a TypeError, so the scikit-learn checks that generate numeric arrays do not
    apply (listed with their reason in :data:`NUMERIC_ONLY_CHECKS`); the API checks that do not
    fit on numbers (cloning, repr, tags, get/set_params, constructor, mixin order) pass.

    Example:
        >>> clf = TextTransferClassifier("tfidf", "logreg").fit(texts, labels)  # doctest: +SKIP
        >>> clf.predict(["a great phone"])  # doctest: +SKIP
        array(['positive'], dtype='<U8')
    """

    def __init__(
        self,
        encoder: str | dict[str, Any] = "tfidf",
        head: str | dict[str, Any] | None = None,
        strategy: str | dict[str, Any] = "frozen",
        *,
        batch_size: int = 32,
        seed: int = 0,
        cache_dir: str | None = None,
        epochs: int = _TRAINING_DEFAULTS["epochs"],
        lr: float | None = _TRAINING_DEFAULTS["lr"],
        train_batch_size: int = _TRAINING_DEFAULTS["batch_size"],
        weight_decay: float = _TRAINING_DEFAULTS["weight_decay"],
        warmup_ratio: float = _TRAINING_DEFAULTS["warmup_ratio"],
        grad_accum: int = _TRAINING_DEFAULTS["grad_accum"],
        max_grad_norm: float | None = _TRAINING_DEFAULTS["max_grad_norm"],
        mixed_precision: str | None = _TRAINING_DEFAULTS["mixed_precision"],
        metric: str | None = _TRAINING_DEFAULTS["metric"],
        patience: int | None = _TRAINING_DEFAULTS["patience"],
    ) -> None:
        # scikit-learn convention: store the arguments unchanged, validate in fit.
        self.encoder = encoder
        self.head = head
        self.strategy = strategy
        self.batch_size = batch_size
        self.seed = seed
        self.cache_dir = cache_dir
        self.epochs = epochs
        self.lr = lr
        self.train_batch_size = train_batch_size
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.grad_accum = grad_accum
        self.max_grad_norm = max_grad_norm
        self.mixed_precision = mixed_precision
        self.metric = metric
        self.patience = patience

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.one_d_array = True  # a sequence of texts
        tags.input_tags.two_d_array = True  # ... or one text column (df[["text"]])
        return tags

    # -- building ----------------------------------------------------------------------------

    def _training(self) -> dict[str, Any]:
        return {field: getattr(self, param) for param, field in _TRAINING_PARAMS.items()}

    def _setup(self) -> Any:
        """The estimator's parameters as a validated setup (what a config's sections give)."""
        from textransfer.config import SetupConfig
        from textransfer.experiments._kernel import validate_components

        strategy = _component(self.strategy, "strategy")
        if self.head is not None:
            strategy["head"] = _component(self.head, "head")
        # model_validate: the same validation as the constructor, typed for the raw dicts it takes.
        setup = SetupConfig.model_validate({
            "name": "estimator",
            "encoder": _component(self.encoder, "encoder"),
            "strategy": strategy,
            "training": self._training(),
        })
        validate_components(setup, where="TextTransferClassifier")
        return setup

    # -- scikit-learn API --------------------------------------------------------------------

    def fit(self, X: Any, y: Any, target_texts: Any = None) -> TextTransferClassifier:
        """Trains on texts ``X`` with labels ``y``.

        Args:
            X: the training texts.
            y: one label per text (str or int; at least two classes).
            target_texts: unlabeled texts of the target domain, for the adaptation
                strategies (``coral``, ``dann``); the others ignore it.

        Returns:
            self, fitted.
        """
        from textransfer.data.labeled import LabeledTexts
        from textransfer.encoders.base import check_inputs

        # Labels and lengths first: their errors are the clearer ones.
        labels = _as_labels(y)
        items = _items(X)
        if len(items) != len(labels):
            raise ValueError(f"TextTransferClassifier: X has {len(items)} texts but y has {len(labels)} labels")
        texts = check_inputs(items)
        target = None
        if target_texts is not None:
            target = LabeledTexts(as_texts(target_texts), domain="target")
        from textransfer.experiments._kernel import config_cache, fit_setup

        setup = self._setup()
        train = LabeledTexts(texts, labels, domain="train")
        # The experiments' one fit: it configures the strategy (cache, training, batch size).
        fit = fit_setup(setup, train, seed=int(self.seed), cache=config_cache(self.cache_dir),
                        batch_size=int(self.batch_size), target_unlabeled=target)
        self.classifier_ = fit.classifier
        self.classes_ = np.asarray(self.classifier_.labels)
        self.fit_info_ = {k: v for k, v in fit.info.items() if k != "fit_seconds"}
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, len(classes_))``, float32, columns in ``classes_`` order."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.predict_proba(as_texts(X), batch_size=int(self.batch_size))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each text, as an array of ``classes_``' dtype."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)] if len(proba) else self.classes_[:0]

    def save(self, directory: str | Path) -> Path:
        """Saves the fitted model as a textransfer model directory (``textransfer.load`` reads it,
        ``textransfer serve`` / ``export`` take it)."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.save(directory)
