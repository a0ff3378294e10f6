"""textransfer: transfer learning for text classification.

Public API (imported lazily, so ``import textransfer`` is cheap)::

    textransfer.load(model_dir) -> Classifier          # .predict(texts), .predict_proba(texts)
    textransfer.predict(model_dir, texts) -> labels
    textransfer.from_pretrained(dir_or_hub_repo_id) -> Classifier  # clf.push_to_hub(repo_id)
    textransfer.run(config_or_path, overrides) -> RunResult
    textransfer.evaluate(model_or_dir, data) -> EvaluationResult   # accuracy, F1, calibration, CIs
    textransfer.estimate_accuracy(source_val_probs, source_val_labels, target_probs)  # ATC-NE, no target labels
    textransfer.estimate_target_accuracy(model_or_dir, source_val=..., target=...)     # the same from a model
    textransfer.tune(config_path, trials) -> TuneResult            # search over a config's `search:`
    textransfer.create_encoder / create_head / create_strategy(name, **kwargs)
    textransfer.list_encoders / list_heads / list_strategies / list_datasets()
    textransfer.load_dataset(spec) -> LabeledTexts
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("textransfer.classifier", "load"),
    "predict": ("textransfer.classifier", "predict"),
    "from_pretrained": ("textransfer.classifier", "from_pretrained"),
    "Classifier": ("textransfer.classifier", "Classifier"),
    "run": ("textransfer.experiments.train.run", "run"),
    "evaluate": ("textransfer.evaluating", "evaluate"),
    "estimate_accuracy": ("textransfer.evaluation.label_free", "estimate_accuracy"),
    "estimate_target_accuracy": ("textransfer.estimation", "estimate_target_accuracy"),
    "tune": ("textransfer.tuning", "tune"),
    "load_config": ("textransfer.experiments.train.config", "load_config"),
    "RunConfig": ("textransfer.experiments.train.config", "RunConfig"),
    "create_encoder": ("textransfer.encoders.base", "create_encoder"),
    "list_encoders": ("textransfer.encoders.base", "list_encoders"),
    "create_head": ("textransfer.heads.base", "create_head"),
    "list_heads": ("textransfer.heads.base", "list_heads"),
    "create_strategy": ("textransfer.strategies.base", "create_strategy"),
    "list_strategies": ("textransfer.strategies.base", "list_strategies"),
    "FitContext": ("textransfer.strategies.base", "FitContext"),
    "FitResult": ("textransfer.strategies.base", "FitResult"),
    "list_datasets": ("textransfer.data", "list_datasets"),
    "load_dataset": ("textransfer.data", "load"),
    "LabeledTexts": ("textransfer.data.labeled", "LabeledTexts"),
    "TrainingArgs": ("textransfer.training.args", "TrainingArgs"),
    "TextTransferClassifier": ("textransfer.estimator", "TextTransferClassifier"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'textransfer' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
