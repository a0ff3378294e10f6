"""The config of a single run (``textransfer run``, kind ``train``): data, one or several
encoder/strategy setups, training settings, outputs.

For example::

    name: movies_frozen
    data:
      train: movies            # packaged domain, a file path, or hf:NAME
      test_size: 0.2           # in-domain test split held out from train
      eval: {products: products}
      unlabeled: products      # optional: target texts for adaptation strategies (labels dropped)
    encoder: {name: static, vectors: glove-6b-50d, pooling: mean}
    strategy: {name: frozen, head: logreg}
    training: {epochs: 10}     # for torch heads / fine-tuning

``setups:`` (optional) lists several encoder/strategy combinations run on the same data.
(``textransfer.config.RunConfig`` and ``load_config`` still name these.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from textransfer._folders import cache_setting
from textransfer._seeds import Seed
from textransfer.config import (
    Component,
    ComponentSpec,
    RunName,
    SetupConfig,
    StrategyConfig,
    StrategySpec,
    TrackingConfig,
    source_spec,
    validate_config,
)
from textransfer.data.sources import DataSource
from textransfer.experiments._kernel import validate_components

__all__ = ["DataConfig", "RunConfig", "load_config"]


class DataConfig(BaseModel):
    """Where the training and evaluation data come from."""

    model_config = ConfigDict(extra="forbid")
    train: DataSource
    test: DataSource | None = None
    val: DataSource | None = None
    test_size: float = 0.2
    val_size: float = 0.0
    eval: dict[str, DataSource] = Field(default_factory=dict)
    # Unlabeled target-domain texts, passed to the strategy as target_unlabeled (CORAL, DANN);
    # its labels, if it has any, are dropped.
    unlabeled: DataSource | None = None

    @field_validator("train", "test", "val", "unlabeled", mode="before")
    @classmethod
    def _source(cls, v: Any) -> Any:
        return source_spec(v)

    @field_validator("eval", mode="before")
    @classmethod
    def _eval(cls, v: Any) -> Any:
        if isinstance(v, list):  # [products, file.csv] -> named by their domain
            v = {str(s if isinstance(s, str) else s.get("domain") or s.get("source")): s for s in v}
        return {k: source_spec(s) for k, s in (v or {}).items()}

    @field_validator("test_size", "val_size")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError(f"must be a fraction in [0, 1), got {v}")
        return v


class RunConfig(BaseModel):
    """A whole run: data, components, training settings and where outputs go."""

    model_config = ConfigDict(extra="forbid")
    # The experiment kind (textransfer.experiments.EXPERIMENTS): optional in a file; the verb tells.
    kind: Literal["train"] = "train"
    name: RunName
    seed: Seed = 0
    output_dir: str = "runs"
    cache_dir: str | None = Field(default_factory=lambda: cache_setting("features"))
    batch_size: PositiveInt = 32
    data: DataConfig
    encoder: ComponentSpec = Field(default_factory=lambda: Component(name="tfidf"))
    strategy: StrategySpec = Field(default_factory=StrategyConfig)
    training: dict[str, Any] = Field(default_factory=dict)
    setups: list[SetupConfig] = Field(default_factory=list)
    tracking: TrackingConfig | None = None
    # Save each model with its frozen encoder's pretrained files (Classifier.save(portable=True)):
    # it then loads without the resource packages (all-MiniLM-L6-v2, glove-6b-50d) or a network.
    portable_models: bool = False

    @model_validator(mode="after")
    def _check_components(self) -> RunConfig:
        names = [s.name for s in self.setups]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"setups: duplicate setup names {sorted(dupes)}")
        for setup in self.resolved_setups():
            validate_components(setup, where=f"setups[{setup.name}]" if self.setups else "")
        return self

    def resolved_setups(self) -> list[SetupConfig]:
        """The setups to run, each with encoder/strategy/training filled from the top level."""
        if not self.setups:
            return [SetupConfig(name=self.name, encoder=self.encoder, strategy=self.strategy, training=self.training)]
        return [
            SetupConfig(
                name=s.name,
                encoder=s.encoder or self.encoder,
                strategy=s.strategy or self.strategy,
                training={**self.training, **(s.training or {})},
            )
            for s in self.setups
        ]


def load_config(path: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Reads and validates a YAML config, applying dotted ``overrides`` (``key.sub=value``).

    Example:
        >>> cfg = load_config("configs/movies_frozen.yaml", ["strategy.head=mlp"])  # doctest: +SKIP
    """
    return validate_config(RunConfig, path, overrides)
