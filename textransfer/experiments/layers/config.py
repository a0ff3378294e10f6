"""The config of a layer-transfer run (``textransfer layers``, kind ``layers``).

For example::

    name: layers_minilm
    target: products
    base: pretrained                # or: source (train A on `source`, B on the target: + BnB controls)
    budget: 500                     # labeled target rows to train on (or all)
    encoder: {name: transformer, model: all-MiniLM-L6-v2, max_length: 64}
    strategy: {name: finetune, head: linear}   # freezing is set per k and variant
    training: {epochs: 3, lr: 5.0e-5}
    ks: null                        # k = 0..L (all layer groups), or a list

Unknown keys are errors; registry names and constructor keys are checked when the config loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from textransfer.config import (
    ComponentSpec,
    SetupConfig,
    StrategyConfig,
    StrategySpec,
    validate_config,
)
from textransfer.experiments._analysis import AnalysisConfig, Budget
from textransfer.experiments._kernel import validate_components

__all__ = ["LayersConfig", "load_layers_config"]


class LayersConfig(AnalysisConfig):
    """A layer-transfer run (see the module docstring)."""

    kind: Literal["layers"] = "layers"

    base: Literal["pretrained", "source"] = "pretrained"
    budget: Budget = "all"
    encoder: ComponentSpec
    strategy: StrategySpec = Field(
        default_factory=lambda: StrategyConfig(name="finetune", head="linear")  # type: ignore[arg-type]
    )
    source_training: dict[str, Any] | None = None
    ks: list[int] | None = None

    @model_validator(mode="after")
    def _check(self) -> LayersConfig:
        if self.strategy.name != "finetune":
            raise ValueError(
                f"strategy: layer transfer trains with finetune (freezing is set per k), got {self.strategy.name!r}"
            )
        if self.base == "source" and self.source is None:
            raise ValueError(
                "base: source trains the base network on a source domain: name it with `source:`"
            )
        if self.budget != "all" and (isinstance(self.budget, bool) or self.budget < 1):
            raise ValueError(
                f"budget: a number of labeled target examples >= 1, or all; got {self.budget!r}"
            )
        for setup in (self.setup(), self.base_setup()):
            validate_components(setup)
        return self

    def setup(self) -> SetupConfig:
        """Encoder, finetune strategy and training of the target runs."""
        return SetupConfig(
            name=self.name, encoder=self.encoder, strategy=self.strategy, training=self.training
        )

    def base_setup(self) -> SetupConfig:
        """The same, with ``source_training`` (when given) for training the base networks."""
        training = (
            self.training
            if self.source_training is None
            else {**self.training, **self.source_training}
        )
        return SetupConfig(
            name=f"{self.name}:base",
            encoder=self.encoder,
            strategy=self.strategy,
            training=training,
        )


def load_layers_config(
    path: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> LayersConfig:
    """Reads and validates a layer-transfer YAML config, applying ``key.sub=value`` overrides."""
    return validate_config(LayersConfig, path, overrides)
