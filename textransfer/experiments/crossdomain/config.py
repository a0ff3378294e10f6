"""The config of a cross-domain experiment: domains, source -> target pairs and the grid.

::

    name: movies_to_products
    seeds: [0, 1, 2]                # mean +- std over seeds; each seed re-splits and re-trains
    test_size: 0.2                  # per labeled domain: held-out test split, never trained on
    source_val_size: 0.1            # of each source's train split: held out to calibrate the
                                    # label-free estimates of target accuracy (0: no estimates)
    domains:                        # any data source (packaged name, file, hf:NAME)
      movies: {source: movies}
      products: {source: products}
    sources: [movies]
    targets: [products]
    encoders:
      minilm: {name: sentence, model: all-MiniLM-L6-v2}
    strategies:                     # each with its head; `encoders:` limits it to some encoders
      frozen: {name: frozen, head: logreg}
      coral: {name: coral, head: logreg}
      dann: {name: dann, head: linear, encoders: [minilm-tf], training: {epochs: 1, lr: 2e-5}}
    evaluation: {n_boot: 1000, ece_bins: 15, a_distance_rows: 2000, estimator: cot,
                 label_budgets: [8, 16, 32, 64, 128, 256, 512, 1024, all]}
    save_models: true               # models/<setup>/<source>_to_<target>/ (first seed of each)

Every (encoder, strategy) pair is a *setup*; every setup is trained on each source and scored on
each target. Unknown keys anywhere are errors, as are unknown registry names and constructor
keys (checked when the config is loaded).
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
    Seeds,
    SetupConfig,
    StrategyConfig,
    TrackingConfig,
    repeated,
    source_spec,
    split_fraction,
    validate_config,
)
from textransfer.data.sources import DataSource
from textransfer.evaluation.label_free import DEFAULT_METHOD, Method
from textransfer.experiments._kernel import validate_components


class GridStrategy(StrategyConfig):
    """A strategy of the grid: ``{name, head, **kwargs}`` plus grid-only keys.

    Attributes:
        encoders: run this strategy only with these encoders (default: all).
        training: TrainingArgs overrides for this strategy (merged over the top-level ones).
        seeds: run this strategy only on these of the top-level seeds (slow strategies on CPU).
        oracle: train this strategy's target oracle (off for slow strategies: the gap is n/a).
        baseline: the grid strategy (key) this adaptation is compared with for the adaptation gain,
            e.g. the same DANN with ``lambda_max: 0`` (default: frozen with the same head).
    """

    encoders: list[str] | None = None
    training: dict[str, Any] | None = None
    seeds: Seeds | None = None
    oracle: bool = True
    baseline: str | None = None


def _default_label_budgets() -> list[int | Literal["all"]]:
    # A typed function, not a lambda: mypy infers a lambda's list literal as list[object].
    return [8, 16, 32, 64, 128, 256, 512, 1024, "all"]


class EvaluationConfig(BaseModel):
    """What is measured besides accuracy.

    Attributes:
        n_boot: bootstrap resamples of the 95% intervals (0 disables them).
        ece_bins: equal-width confidence bins of the ECE and reliability diagrams.
        a_distance_rows: rows per domain for the proxy A-distance (held-out test splits).
        oracle: also train each setup on the target's own train split.
        target_only: also train the target-only learning curve: the frozen encoder + the same
            head on nested, class-balanced samples of ``label_budgets`` target train labels
            (seeds as the run), for each setup's worth in target labels. Frozen features are
            cached, so a curve costs one head fit per budget and seed.
        label_budgets: the curve's budgets (labeled target rows, > 0, or ``all``); budgets above
            the target's train split are clamped to it, below its class count dropped (noted).
        estimator: the label-free estimate in the summary that picks the recommended setup:
            ``cot`` (confidence optimal transport, Lu et al. 2023; the default, chosen on
            development pairs: :mod:`textransfer.evaluation.label_free`), ``cott`` (its
            thresholded form), ``doc`` (difference of confidences, Guillory et al. 2021), ``atc-ne`` (average
            thresholded confidence, negative entropy; Garg et al. 2022), ``atc-mc`` (the same
            with the top-class probability), ``ac`` (average calibrated confidence) or
            ``average`` (the mean of ATC-NE, DoC and AC). All are in ``metrics.json``, computed
            after temperature scaling on the source validation rows.
        plots: write PNG plots.
        a_distance_encoders: encoders (keys of ``encoders``) whose proxy A-distance is measured
            (default: all). Each costs one frozen encoding of every domain, which is wasted on
            an encoder that is only fine-tuned.
    """

    model_config = ConfigDict(extra="forbid")
    n_boot: int = Field(default=1000, ge=0)  # default= by name: mypy sees a positional one as no default
    ece_bins: int = Field(default=15, ge=1)
    a_distance_rows: int = Field(default=2000, ge=4)
    oracle: bool = True
    target_only: bool = True
    label_budgets: list[int | Literal["all"]] = Field(default_factory=_default_label_budgets)
    estimator: Method = DEFAULT_METHOD
    plots: bool = True
    a_distance_encoders: list[str] | None = None

    @field_validator("label_budgets")
    @classmethod
    def _budgets(cls, v: list[int | str]) -> list[int | str]:
        bad = [b for b in v if b != "all" and (isinstance(b, bool) or not isinstance(b, int) or b < 1)]
        if bad or not v:
            raise ValueError(
                f"label_budgets: give numbers of labeled target rows >= 1 and/or 'all', e.g. [8, 64, 512, all]; got {bad or v}"
            )
        return v


class CrossDomainConfig(BaseModel):
    """A cross-domain experiment (see the module docstring for the YAML)."""

    model_config = ConfigDict(extra="forbid")
    # The experiment kind (textransfer.experiments.EXPERIMENTS): optional in a file; the verb tells.
    kind: Literal["crossdomain"] = "crossdomain"
    name: RunName
    output_dir: str = "runs"
    cache_dir: str | None = Field(default_factory=lambda: cache_setting("features"))
    batch_size: PositiveInt = 32
    seeds: Seeds = Field(default_factory=lambda: [0])
    split_seed: Seed | None = None
    test_size: float = 0.2
    source_val_size: float = 0.1
    domains: dict[str, DataSource]
    sources: list[str]
    targets: list[str]
    encoders: dict[str, ComponentSpec]
    strategies: dict[str, GridStrategy]
    training: dict[str, Any] = Field(default_factory=dict)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    save_models: bool = False
    portable_models: bool = False  # saved models carry the frozen encoder's files (save(portable=True))
    tracking: TrackingConfig | None = None  # experiment trackers (textransfer.config.TrackingConfig)

    @field_validator("domains", mode="before")
    @classmethod
    def _domains(cls, v: Any) -> Any:
        if not isinstance(v, dict) or not v:
            raise ValueError("give at least one domain: `domains: {movies: movies, products: products}`")
        out = {}
        for name, spec in v.items():
            spec = dict(source_spec(spec)) if isinstance(spec, (str, dict)) else spec
            if isinstance(spec, dict):
                spec.setdefault("domain", str(name))
            out[str(name)] = spec
        return out

    @field_validator("strategies", mode="before")
    @classmethod
    def _strategies(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ({"name": s} if isinstance(s, str) else s) for k, s in v.items()}
        return v

    @field_validator("test_size")
    @classmethod
    def _fraction(cls, v: float) -> float:
        return split_fraction(v)

    @field_validator("source_val_size")
    @classmethod
    def _val_fraction(cls, v: float) -> float:
        if not 0.0 <= v <= 0.5:
            raise ValueError(
                f"must be 0 (no label-free estimates) or a fraction of the source train split up to 0.5 "
                f"(e.g. 0.1), got {v}"
            )
        return v

    @model_validator(mode="after")
    def _check(self) -> CrossDomainConfig:
        for key in ("sources", "targets"):
            names = getattr(self, key)
            if not names:
                raise ValueError(f"{key}: list at least one domain name from `domains` ({sorted(self.domains)})")
            unknown = [n for n in names if n not in self.domains]
            if unknown:
                raise ValueError(f"{key}: unknown domain(s) {unknown}; defined under `domains`: {sorted(self.domains)}")
            if (twice := repeated(names)):
                raise ValueError(f"{key}: {twice} listed more than once in {names}: list each domain once")
        if not self.seeds:
            raise ValueError("seeds: give at least one seed, e.g. [0]")
        if not self.encoders or not self.strategies:
            raise ValueError("the grid needs at least one entry under `encoders` and one under `strategies`")
        for sname, strat in self.strategies.items():
            unknown = [e for e in strat.encoders or [] if e not in self.encoders]
            if unknown:
                raise ValueError(
                    f"strategies.{sname}.encoders: unknown encoder(s) {unknown}; defined: {sorted(self.encoders)}"
                )
            if strat.baseline is not None and strat.baseline not in self.strategies:
                raise ValueError(f"strategies.{sname}.baseline: {strat.baseline!r} is not a key of `strategies`")
            extra = sorted(set(strat.seeds or []) - set(self.seeds))
            if extra:
                raise ValueError(f"strategies.{sname}.seeds: {extra} are not among the top-level seeds {self.seeds}")
        unknown = [e for e in self.evaluation.a_distance_encoders or [] if e not in self.encoders]
        if unknown:
            raise ValueError(f"evaluation.a_distance_encoders: unknown encoder(s) {unknown}; defined: {sorted(self.encoders)}")
        if not self.setups():
            raise ValueError("the grid is empty: every strategy's `encoders:` list excludes all encoders")
        for setup in self.setups():
            validate_components(setup, where=f"setup {setup.name}")
        return self

    def grid(self) -> list[tuple[SetupConfig, str, str]]:
        """``(setup, encoder key, strategy key)`` for each (encoder, strategy) of the grid; setups
        are named ``encoder+strategy``."""
        out = []
        for sname, strat in self.strategies.items():
            plain = StrategyConfig(name=strat.name, head=strat.head, **strat.params())
            for ename, enc in self.encoders.items():
                if strat.encoders is None or ename in strat.encoders:
                    training = {**self.training, **(strat.training or {})}
                    out.append((SetupConfig(name=f"{ename}+{sname}", encoder=enc, strategy=plain, training=training), ename, sname))
        return out

    def setups(self) -> list[SetupConfig]:
        """The SetupConfigs of :meth:`grid`."""
        return [g[0] for g in self.grid()]

    def seeds_of(self, strategy_key: str) -> list[int]:
        """The seeds a grid strategy runs on."""
        return self.strategies[strategy_key].seeds or self.seeds

    def pairs(self) -> list[tuple[str, str]]:
        """All (source, target) domain pairs."""
        return [(s, t) for s in self.sources for t in self.targets]

    def same_domain(self, a: str, b: str) -> bool:
        """True when two domain names read the same data (reported as in-domain)."""
        if a == b:
            return True
        da, db = (self.domains[x].model_dump(exclude={"domain"}) for x in (a, b))
        return da == db


def head_component(setup: SetupConfig) -> Component:
    """The head of a setup (never None once validated)."""
    assert setup.strategy is not None
    return setup.strategy.head


def load_crossdomain_config(path: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> CrossDomainConfig:
    """Reads and validates a cross-domain YAML config, applying ``key.sub=value`` overrides.

    Example:
        >>> cfg = load_crossdomain_config("configs/movies_to_products.yaml")  # doctest: +SKIP
    """
    return validate_config(CrossDomainConfig, path, overrides)
