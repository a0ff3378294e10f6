"""What every experiment config is made of: YAML in, validated early, strict about unknown keys,
saved with the outputs.

- :class:`Component` (``{name: registry-name, **constructor kwargs}``), :class:`StrategyConfig`,
  :class:`SetupConfig` (one encoder/strategy combination), :class:`TrackingConfig`;
- reading and checking: :func:`validate_config` (a YAML file or dict plus dotted ``--set``
  overrides, every problem one :class:`ConfigError` naming the key), :func:`resolve_config`,
  :func:`read_kind`, :func:`dump_config`;
- :class:`RunDirectory`: every experiment kind writes its folder through it: paths checked first,
  one run at a time per folder (a lock), outputs renamed into place only once complete, and only
  the main process of a multi-process launch writes.

The config of each experiment kind lives with the kind (:mod:`textransfer.experiments`); the
single run's ``RunConfig`` and ``load_config`` are in :mod:`textransfer.experiments.train.config`
(``textransfer.load_config`` at the top level).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from textransfer._folders import check_folder, make_folder
from textransfer._seeds import Seed
from textransfer.data.sources import DataSource
from textransfer.distributed import is_main_process

logger = logging.getLogger("textransfer.config")


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


def repeated(items: list[Any]) -> list[Any]:
    """The values listed more than once in ``items``, each once, in the order they repeat."""
    return list(dict.fromkeys(x for i, x in enumerate(items) if x in items[:i]))


def _distinct_seeds(v: list[int]) -> list[int]:
    if (twice := repeated(v)):
        raise ValueError(
            f"seed(s) {twice} listed more than once in {v}: a seed repeats the very same split and "
            "training, so a repeat would count one run twice in the mean, std and CIs. Fix: list "
            f"distinct seeds, e.g. {sorted(set(v))}"
        )
    return v


# A list of seeds, each at most once (mean +- std and CIs over seeds assume distinct runs).
Seeds = Annotated[list[Seed], AfterValidator(_distinct_seeds)]


# Which head a strategy gets when its config names none (logreg; cosine for zero_shot). The
# experiments layer, which knows the strategy registry, installs the lookup when it is imported
# (every config loader lives there), so this module stays below the registries; without it, logreg.
_default_head_lookup: Callable[[str], str | None] | None = None


def set_default_head_lookup(lookup: Callable[[str], str | None] | None) -> None:
    """Installs ``lookup(strategy_name) -> head name or None`` for configs that name no head."""
    global _default_head_lookup
    _default_head_lookup = lookup


class StrategyConfig(Component):
    """A strategy with its head: ``{name: frozen, head: {name: logreg, C: 1.0}, **kwargs}``."""

    name: str = "frozen"
    head: ComponentSpec = Field(default_factory=lambda: Component(name="logreg"))

    @model_validator(mode="after")
    def _default_head(self) -> StrategyConfig:
        # Without `head:`, the strategy's own default (see set_default_head_lookup).
        if "head" not in self.model_fields_set and _default_head_lookup is not None:
            head = _default_head_lookup(self.name)
            if head is not None:
                self.head = Component(name=head)
        return self


StrategySpec = Annotated[StrategyConfig, BeforeValidator(_component)]


class SetupConfig(BaseModel):
    """One encoder/strategy combination of a multi-setup run."""

    model_config = ConfigDict(extra="forbid")
    name: str
    encoder: ComponentSpec | None = None
    strategy: StrategySpec | None = None
    training: dict[str, Any] | None = None


# Experiment trackers: config name -> (module that must be importable, how to install it).
TRACKERS = {
    "tensorboard": ("tensorboard", "pip install 'textransfer[tracking]'"),
    "mlflow": ("mlflow", "pip install 'textransfer[tracking]'"),
    "wandb": ("wandb", "pip install wandb"),
}


class TrackingConfig(BaseModel):
    """Experiment tracking (``tracking:`` of a run, crossdomain or curve config).

    For example::

        tracking: {log_with: [tensorboard, mlflow], project: sentiment, dir: runs/tracking}

    Attributes:
        log_with: trackers (:data:`TRACKERS`): each is checked when the config is loaded, its
            package too.
        project: the TensorBoard folder level / MLflow experiment / wandb project.
        dir: where local trackers write (default ``<output_dir>/tracking``).
        log_every: log the training loss every this many optimiser steps.
    """

    model_config = ConfigDict(extra="forbid")
    log_with: list[str]
    project: str = "textransfer"
    dir: str | None = None
    log_every: PositiveInt = 1

    @field_validator("log_with", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("log_with")
    @classmethod
    def _known_and_installed(cls, v: list[str]) -> list[str]:
        import importlib.util

        if not v:
            raise ValueError(f"name at least one tracker: {', '.join(TRACKERS)}")
        names = list(dict.fromkeys(name.strip().lower() for name in v))
        for name in names:
            if name not in TRACKERS:
                raise ValueError(f"unknown tracker {name!r}; supported: {', '.join(TRACKERS)}")
            module, install = TRACKERS[name]
            if importlib.util.find_spec(module) is None:
                raise ValueError(f"tracker {name!r} needs the {module} package, which is not installed: {install}")
        return names

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        if not v.strip() or "/" in v or v.startswith("."):
            raise ValueError(f"must be a plain name (no '/'), got {v!r}")
        return v


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
            lines.append(f"{loc}: {msg}" if loc else msg)
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


def _alternatives(tp: Any) -> list[Any]:
    """The types a field annotation allows: ``Annotated`` and unions (``X | None``) unpacked."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _alternatives(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [t for arg in typing.get_args(tp) for t in _alternatives(arg)]
    return [] if tp is type(None) else [tp]


def _section_type(model: Any, keys: list[str]) -> Any:
    """The annotation of the section at ``keys`` under ``model`` (None when unknown)."""
    tp: Any = model
    for key in keys:
        nxt = None
        for alt in _alternatives(tp):
            if isinstance(alt, type) and issubclass(alt, BaseModel) and key in alt.model_fields:
                nxt = alt.model_fields[key].annotation
            elif typing.get_origin(alt) is dict:
                nxt = typing.get_args(alt)[1]
            if nxt is not None:
                break
        if nxt is None:
            return None
        tp = nxt
    return tp


def _shorthand(model: Any, keys: list[str], value: str) -> dict[str, Any]:
    """A one-word section as its mapping: ``{source: movies}`` for a data source (``train:
    movies``), ``{name: tfidf}`` for a component (``encoder: tfidf``)."""
    is_source = any(alt is DataSource for alt in _alternatives(_section_type(model, keys)))
    return {"source": value} if is_source else {"name": value}


def set_dotted(tree: dict[str, Any], dotted: str, value: Any, model: type[BaseModel] | None = None) -> None:
    """Sets ``tree["a"]["b"] = value`` for ``dotted == "a.b"``, creating sections as needed.

    A one-word section on the way is expanded first: a data source (``train: movies``) to
    ``{source: movies}``, a component (``encoder: tfidf``) to ``{name: tfidf}``; ``model`` (the
    config class) tells which is which (without it, every one-word section is a component).
    """
    keys = dotted.split(".")
    node = tree
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if isinstance(child, str):  # `encoder: tfidf` / `train: movies` shorthand being extended
            child = _shorthand(model, keys[: i + 1], child) if model is not None else {"name": child}
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
        set_dotted(raw, key, value, model=model)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    except ValueError as exc:  # raised by component checks (unknown names / keys)
        raise ConfigError(f"invalid config {source}: {exc}") from None


def read_kind(path: str | Path) -> str | None:
    """The ``kind:`` a YAML config file names, or None (no such key, or a file that cannot be read
    as a mapping: loading it reports that)."""
    try:
        raw = _yaml_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    kind = raw.get("kind") if isinstance(raw, dict) else None
    return None if kind is None else str(kind)


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


class RunDirectoryLocked(ValueError):
    """Another process is running with the same run directory."""


LOCK_FILE = ".lock"
_STAGING_PREFIX = ".outputs-"
_CACHE_FIX = " (or set cache_dir: null to turn the feature cache off)"


class RunDirectory:
    """The folder ``output_dir/name/`` of one run, shared by every run kind.

    Entering it checks ``output_dir`` and ``cache_dir`` (a file in the way, no permission: one
    ValueError naming the path), creates the folder and takes an exclusive lock on
    ``<folder>/.lock`` (``fcntl.flock``, released on exit and by the kernel when the process
    dies, so a killed run leaves no stale lock); a second run on the same folder fails naming the
    process that holds it. Outputs are written into :meth:`outputs`, a staging folder whose
    files are renamed into place once all are written, ``config.resolved.yaml`` among them: a
    failed run leaves the previous run's files as they were. Under a multi-process launch only
    rank 0 creates, locks and writes.

    Example:
        >>> with RunDirectory(config) as run_dir:  # doctest: +SKIP
        ...     metrics = train_and_score(config, run_dir.path)
        ...     with run_dir.outputs() as out:
        ...         (out / "metrics.json").write_text(json.dumps(metrics))
    """

    def __init__(self, config: Any) -> None:
        self.config = config
        self.path = Path(config.output_dir).expanduser() / config.name
        self.main = is_main_process()
        self._fd: int | None = None
        self._created: list[Path] = []

    def __enter__(self) -> RunDirectory:
        self.check()
        if self.main:
            self._created = make_folder(self.path, "output_dir")
            try:
                self._lock()
                for old in self.path.glob(_STAGING_PREFIX + "*"):  # left by a killed run
                    shutil.rmtree(old, ignore_errors=True)
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> None:
        """The path checks of ``output_dir``, the run folder and ``cache_dir`` (writes nothing)."""
        check_folder(self.config.output_dir, "output_dir")
        check_folder(self.path, "output_dir")
        cache_dir = getattr(self.config, "cache_dir", None)
        if cache_dir:
            check_folder(cache_dir, "cache_dir", _CACHE_FIX)

    def _lock(self) -> None:
        lock = self.path / LOCK_FILE
        try:
            import fcntl
        except ImportError:  # not a POSIX system
            logger.warning("cannot lock %s on this system: a second run of the same name would not be detected", lock)
            return
        while True:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ValueError(
                    f"output_dir: cannot create {lock}: {exc.strerror or exc}; give output_dir a folder you can write to"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _lock_holder(fd)
                os.close(fd)
                raise RunDirectoryLocked(
                    f"run directory {self.path} is in use by {holder}: wait for that run to finish, or give "
                    "this one another name (e.g. --set name=NEW_NAME)"
                ) from None
            except OSError as exc:  # a file system without locks (some network mounts)
                os.close(fd)
                logger.warning("cannot lock %s (%s): a second run of the same name would not be detected", lock, exc)
                return
            # The previous holder unlinks the file when it finishes: if that happened between our
            # open and flock, we hold a lock on a deleted file; open the new one instead.
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(mine).encode())
        self._fd = fd

    def close(self) -> None:
        """Releases the lock; removes the folders this run created when nothing was written."""
        if self._fd is not None:
            try:
                (self.path / LOCK_FILE).unlink(missing_ok=True)  # while still held: nobody else has it
            finally:
                os.close(self._fd)
                self._fd = None
        for folder in reversed(self._created):
            try:
                folder.rmdir()  # only when empty: a run that failed before writing anything
            except OSError:
                break
        self._created = []

    @contextlib.contextmanager
    def outputs(self) -> Iterator[Path]:
        """A staging folder for the run's outputs, with ``config.resolved.yaml`` already in it.

        When the block ends without an exception, each file in it is renamed to the same place
        under the run folder (``metrics.json`` files last: their presence means the run is
        complete); on an exception nothing is published. Other processes of a multi-process
        launch get a scratch folder that is discarded.
        """
        if not self.main:
            with tempfile.TemporaryDirectory(prefix="textransfer-discarded-") as scratch:
                yield Path(scratch)
            return
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=self.path))
        try:
            (staging / "config.resolved.yaml").write_text(dump_config(self.config), encoding="utf-8")
            yield staging
            files = sorted((f for f in staging.rglob("*") if f.is_file()), key=lambda f: (f.name == "metrics.json", str(f)))
            for f in files:
                dest = self.path / f.relative_to(staging)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _lock_holder(fd: int) -> str:
    """Who holds a run lock, from what it wrote into the lock file."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
        return f"process {info['pid']} on {info['host']} (started {info['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
