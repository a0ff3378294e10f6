"""What the curve and layer configs share: run name and place, seeds, the target split."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from textransfer._seeds import Seed
from textransfer.config import RunName, Seeds, source_spec, split_fraction
from textransfer.data.sources import DataSource

# A number of labeled target examples, or all of the pool.
Budget = int | Literal["all"]


class AnalysisConfig(BaseModel):
    """What the curve and layer configs share: run name and place, seeds, the target split."""

    model_config = ConfigDict(extra="forbid")
    # The experiment kind (textransfer.experiments.EXPERIMENTS), fixed by each subclass; optional
    # in a file, where the verb tells.
    kind: str = ""
    name: RunName
    output_dir: str = "runs"
    batch_size: PositiveInt = 32
    seeds: Seeds = Field(default_factory=lambda: [0])
    split_seed: Seed | None = None
    test_size: float = 0.2
    target: DataSource
    source: DataSource | None = None
    balance: Literal["balanced", "stratified"] = "balanced"
    training: dict[str, Any] = Field(default_factory=dict)

    @field_validator("target", "source", mode="before")
    @classmethod
    def _data(cls, v: Any) -> Any:
        return source_spec(v)

    @field_validator("test_size")
    @classmethod
    def _fraction(cls, v: float) -> float:
        return split_fraction(v)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("give at least one seed, e.g. [0]")
        return v

    def split_seed_of(self, seed: int) -> int:
        """The seed of the target pool/test split for run seed ``seed``."""
        return seed if self.split_seed is None else self.split_seed


