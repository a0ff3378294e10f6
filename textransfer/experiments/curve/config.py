"""The config of a learning-curve run (``textransfer curve``, kind ``curve``).

Learning curve::

    name: curve_movies_products
    seeds: [0, 1, 2]
    target: products                # any data source; split into a labeled pool and a test split
    source: movies                  # only for two-step setups (those with a `source:` step)
    test_size: 0.2
    budgets: [0, 8, 32, 100, 300, 1000, all]   # labeled target examples; 0 = zero-shot / source model
    balance: balanced               # small budgets: k per class; or stratified (pool proportions)
    baseline: tfidf                 # the no-transfer setup the benefits are measured against
    setups:
      tfidf: {encoder: tfidf, strategy: {name: frozen, head: logreg}, transfer: false}
      minilm-zero-shot: {encoder: sentence, strategy: {name: zero_shot, labels: {positive: ..., negative: ...}}}
      minilm-then-products:         # two-step: fine-tune on the source, then on k target labels
        encoder: {name: transformer, model: all-MiniLM-L6-v2}
        source: {strategy: {name: finetune, head: linear}, training: {epochs: 1}}
        strategy: {name: finetune, head: linear}
        seeds: [0]                  # a subset of the top-level seeds (slow setups)
        min_steps: 40               # small budgets: at least this many optimiser steps

Unknown keys are errors; registry names and constructor keys are checked when the config loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from textransfer._folders import cache_setting
from textransfer.config import (
    ComponentSpec,
    Seeds,
    SetupConfig,
    StrategyConfig,
    StrategySpec,
    TrackingConfig,
    repeated,
    validate_config,
)
from textransfer.experiments._analysis import AnalysisConfig, Budget
from textransfer.experiments._kernel import validate_components


def _default_budgets() -> list[Budget]:
    # A typed function, not a lambda: mypy infers a lambda's list literal as list[object].
    return [0, 8, 32, 100, 300, 1000, "all"]


class SourceStep(BaseModel):
    """Step 1 of a two-step setup: the same encoder trained on the source domain first."""

    model_config = ConfigDict(extra="forbid")
    strategy: StrategySpec
    training: dict[str, Any] = Field(default_factory=dict)


class CurveSetup(BaseModel):
    """One curve of a learning-curve run.

    Attributes:
        encoder: the encoder (fresh per seed and budget).
        strategy: how it is trained on the budget's target labels (``zero_shot``: only at 0).
        training: TrainingArgs overrides (over the top-level ``training``).
        source: train on the source domain first, then reuse the trained encoder (budget 0: the
            source model itself scores the target).
        seeds: run on these of the top-level seeds only (``[]``: skip the setup, e.g. a slow one
            in a quick run: ``--set setups.NAME.seeds=[]``).
        min_steps: raise the epochs of small budgets to at least this many optimiser steps.
        transfer: False for no-transfer setups (not judged against the baseline).
    """

    model_config = ConfigDict(extra="forbid")
    encoder: ComponentSpec
    strategy: StrategySpec = Field(default_factory=StrategyConfig)
    training: dict[str, Any] = Field(default_factory=dict)
    source: SourceStep | None = None
    seeds: Seeds | None = None
    min_steps: int | None = Field(default=None, ge=1)
    transfer: bool = True

    @property
    def zero_shot(self) -> bool:
        return self.strategy.name == "zero_shot"


class CurveConfig(AnalysisConfig):
    """A learning-curve run (see the module docstring)."""

    kind: Literal["curve"] = "curve"

    cache_dir: str | None = Field(default_factory=lambda: cache_setting("features"))
    budgets: list[Budget] = Field(default_factory=_default_budgets)
    baseline: str
    setups: dict[str, CurveSetup]
    tracking: TrackingConfig | None = None  # experiment trackers (textransfer.config.TrackingConfig)

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: list[Budget]) -> list[Budget]:
        bad = [
            b for b in v if b != "all" and (isinstance(b, bool) or not isinstance(b, int) or b < 0)
        ]
        if bad:
            raise ValueError(
                f"budgets must be numbers of labeled examples >= 0 or 'all', got {bad}"
            )
        if not any(b == "all" or b > 0 for b in v):
            raise ValueError("give at least one budget above 0, e.g. [0, 8, 32, all]")
        if (twice := repeated(v)):
            raise ValueError(
                f"budgets {twice} listed more than once in {v}: each budget is one point of the "
                "curve (trained per seed). Fix: list each budget once"
            )
        return v

    @model_validator(mode="after")
    def _check(self) -> CurveConfig:
        if not self.setups:
            raise ValueError("setups: give at least one setup")
        if self.baseline not in self.setups:
            raise ValueError(
                f"baseline: {self.baseline!r} is not a key of `setups` ({sorted(self.setups)})"
            )
        for key, s in self.setups.items():
            if s.source is not None and self.source is None:
                raise ValueError(
                    f"setups.{key} has a `source:` step: name the source domain with top-level `source:`"
                )
            if key == self.baseline and s.seeds == []:
                raise ValueError(f"setups.{key}: the baseline cannot be skipped (seeds: [])")
            if s.zero_shot and 0 not in self.budgets:
                raise ValueError(f"setups.{key} is zero-shot: add 0 to `budgets`")
            extra = sorted(set(s.seeds or []) - set(self.seeds))
            if extra:
                raise ValueError(
                    f"setups.{key}.seeds: {extra} are not among the top-level seeds {self.seeds}"
                )
            for step in self.steps(key):
                validate_components(step, where=f"setups.{key}")
        return self

    def steps(self, key: str) -> list[SetupConfig]:
        """The SetupConfigs of setup ``key``: ``[target step]`` or ``[source step, target step]``."""
        s = self.setups[key]
        target = SetupConfig(
            name=key,
            encoder=s.encoder,
            strategy=s.strategy,
            training={**self.training, **s.training},
        )
        if s.source is None:
            return [target]
        src = SetupConfig(
            name=f"{key}:source",
            encoder=s.encoder,
            strategy=s.source.strategy,
            training={**self.training, **s.source.training},
        )
        return [src, target]

    def seeds_of(self, key: str) -> list[int]:
        seeds = self.setups[key].seeds
        return self.seeds if seeds is None else seeds


def load_curve_config(
    path: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> CurveConfig:
    """Reads and validates a learning-curve YAML config, applying ``key.sub=value`` overrides.

    Example:
        >>> cfg = load_curve_config("configs/curve_movies_products.yaml", ["seeds=[0]"])  # doctest: +SKIP
    """
    return validate_config(CurveConfig, path, overrides)
