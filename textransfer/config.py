"""Typed run configs: YAML in, validated early, strict about unknown keys, saved with outputs.

A config names components by registry name; every other key of a component section is a
constructor argument, checked against the component's signature when the config is loaded::

    name: movies_frozen
    data:
      train: movies            # packaged domain, a file path, or hf:NAME
      test_size: 0.2           # in-domain test split held out from train
      eval: {products: products}
    encoder: {name: static, vectors: glove-6b-50d, pooling: mean}
    strategy: {name: frozen, head: logreg}
    training: {epochs: 10}     # for torch heads / fine-tuning

``setups:`` (optional) lists several encoder/strategy combinations run on the same data.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from textransfer._registry import check_params
from textransfer.data.sources import DataSource


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and section."""


def _component(value: Any) -> Any:
    # `encoder: tfidf` is shorthand for `encoder: {name: tfidf}`.
    return {"name": value} if isinstance(value, str) else value


class Component(BaseModel):
    """``{name: registry-name, **constructor kwargs}``."""

    model_config = ConfigDict(extra="allow")
    name: str

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


ComponentSpec = Annotated[Component, BeforeValidator(_component)]


def source_spec(v: Any) -> Any:
    """A data source given as a bare string (``movies``, ``file.csv``) -> ``{"source": v}``."""
    return {"source": v} if isinstance(v, str) else v


def split_fraction(v: float) -> float:
    """Checks a test-split fraction: strictly between 0 and 1."""
    if not 0.0 < v < 1.0:
        raise ValueError(f"must be a fraction strictly between 0 and 1 (e.g. 0.2), got {v}")
    return v


def _run_name(v: str) -> str:
    if not v or "/" in v or v.startswith("."):
        raise ValueError(f"must be a plain folder name (no '/'), got {v!r}")
    return v


# The name of a run: its outputs go to output_dir/<name>/.
RunName = Annotated[str, AfterValidator(_run_name)]


class StrategyConfig(Component):
    """A strategy with its head: ``{name: frozen, head: {name: logreg, C: 1.0}, **kwargs}``."""

    name: str = "frozen"
    head: ComponentSpec = Field(default_factory=lambda: Component(name="logreg"))

    @model_validator(mode="after")
    def _default_head(self) -> StrategyConfig:
        # Without `head:`, the strategy's own default (logreg; cosine for zero_shot).
        if "head" not in self.model_fields_set:
            from textransfer.strategies.base import STRATEGIES

            if self.name in STRATEGIES:
                self.head = Component(name=getattr(STRATEGIES.get(self.name), "default_head", "logreg"))
        return self


StrategySpec = Annotated[StrategyConfig, BeforeValidator(_component)]


class DataConfig(BaseModel):
    """Where the training and evaluation data come from."""

    model_config = ConfigDict(extra="forbid")
    train: DataSource
    test: DataSource | None = None
    val: DataSource | None = None
    test_size: float = 0.2
    val_size: float = 0.0
    eval: dict[str, DataSource] = Field(default_factory=dict)

    @field_validator("train", "test", "val", mode="before")
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


class SetupConfig(BaseModel):
    """One encoder/strategy combination of a multi-setup run."""

    model_config = ConfigDict(extra="forbid")
    name: str
    encoder: ComponentSpec | None = None
    strategy: StrategySpec | None = None
    training: dict[str, Any] | None = None


class RunConfig(BaseModel):
    """A whole run: data, components, training settings and where outputs go."""

    model_config = ConfigDict(extra="forbid")
    name: RunName
    seed: int = 0
    output_dir: str = "runs"
    cache_dir: str | None = "~/.cache/textransfer/features"
    batch_size: int = 32
    data: DataConfig
    encoder: ComponentSpec = Field(default_factory=lambda: Component(name="tfidf"))
    strategy: StrategySpec = Field(default_factory=StrategyConfig)
    training: dict[str, Any] = Field(default_factory=dict)
    setups: list[SetupConfig] = Field(default_factory=list)

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


def validate_components(setup: SetupConfig, where: str = "") -> None:
    """Checks registry names and constructor keys of a setup's components."""
    from textransfer.encoders.base import ENCODERS
    from textransfer.heads.base import HEADS
    from textransfer.strategies.base import STRATEGIES
    from textransfer.training.loop import TrainingArgs

    prefix = f"{where}." if where else ""
    assert setup.encoder is not None and setup.strategy is not None
    strategy_params = {k: v for k, v in setup.strategy.params().items()}
    for section, registry, comp, params in (
        ("encoder", ENCODERS, setup.encoder, setup.encoder.params()),
        ("strategy", STRATEGIES, setup.strategy, strategy_params),
        ("strategy.head", HEADS, setup.strategy.head, setup.strategy.head.params()),
    ):
        check_params(registry.get(comp.name), params, section=prefix + section, name=comp.name)
    check_params(TrainingArgs, setup.training or {}, section=prefix + "training", name="training")


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            section, _, key = loc.rpartition(".")
            lines.append(f"unknown key {key!r} in section {section or 'top level'!r}")
        elif err["type"] == "missing":
            lines.append(f"missing required key {loc!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{loc or 'config'}: {msg}")
    return f"invalid config {source}:\n  " + "\n  ".join(lines)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``3e-4`` as a float (YAML 1.1 needs ``3.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Sets ``tree["a"]["b"] = value`` for ``dotted == "a.b"``, creating sections as needed."""
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if isinstance(child, str):  # `encoder: tfidf` shorthand being extended
            child = {"name": child}
        elif child is None:
            child = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {key!r} is not a section (it is {child!r})")
        node[key] = child
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"training.lr=1e-4"`` -> ``("training.lr", 0.0001)``; values are parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE (e.g. strategy.head=mlp), got {text!r}")
    try:
        value = _yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(path: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Reads and validates a YAML config, applying dotted ``overrides`` (``key.sub=value``).

    Example:
        >>> cfg = load_config("configs/movies_frozen.yaml", ["strategy.head=mlp"])  # doctest: +SKIP
    """
    return validate_config(RunConfig, path, overrides)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def validate_config(
    model: type[ConfigT], path: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> ConfigT:
    """Reads YAML (or copies a dict), applies dotted ``overrides`` and validates it as ``model``;
    every problem becomes one :class:`ConfigError` that names the key and section."""
    if isinstance(path, dict):
        # A deep copy: overrides must not write into the caller's nested sections.
        raw, source = copy.deepcopy(path), "(dict)"
    else:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file not found: {p} (cwd: {Path.cwd()})")
        source = str(p)
        try:
            raw = _yaml_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p} is not UTF-8 text (byte {exc.start}): re-save it as UTF-8") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(raw, key, value)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    except ValueError as exc:  # raised by component checks (unknown names / keys)
        raise ConfigError(f"invalid config {source}: {exc}") from None


def resolve_config(
    model: type[ConfigT], config: ConfigT | str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> ConfigT:
    """``config`` as a validated ``model``: read from YAML (or a dict), or re-validated with
    ``overrides`` applied when it already is one."""
    if isinstance(config, model):
        return validate_config(model, config.model_dump(mode="json"), overrides) if overrides else config
    return validate_config(model, config, overrides)  # type: ignore[arg-type]


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML (what ``config.resolved.yaml`` holds)."""
    data = config.model_dump(mode="json", exclude_none=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def open_run_dir(config: Any) -> Path:
    """Creates ``config.output_dir/config.name/`` and writes ``config.resolved.yaml`` into it."""
    run_dir = Path(config.output_dir) / config.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.resolved.yaml").write_text(dump_config(config))
    return run_dir
