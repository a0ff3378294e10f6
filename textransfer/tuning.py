"""Hyperparameter search over a run config: ``textransfer tune CONFIG --trials N``.

A run config gains a ``search:`` section of dotted keys (the same keys ``--set`` takes) and
their ranges::

    search:
      strategy.head.C: {low: 0.01, high: 10, log: true}      # float, log-uniform
      training.lr: {low: 1.0e-5, high: 1.0e-3, log: true}
      training.epochs: {low: 1, high: 4, type: int}           # integers 1..4
      strategy.freeze_bottom: {choices: [0, 2, 4]}            # one of these values

The ranges are checked when the config is read (empty or inverted ranges, wrong types, unknown
keys: one error naming the key). Each trial applies its sampled values as overrides and runs
the config through :func:`textransfer.experiments.train.run.run` as ``trials/trial_NNN`` under the tune
directory ``output_dir/NAME/``. The objective is the metric on the **validation split** of the
source data (``data.val`` or ``data.val_size``), never a test split. The sampler is Optuna's
TPE seeded with the config's ``seed``, so a rerun proposes the same trials.

Outputs in ``output_dir/NAME/``: ``trials.csv`` (one row per trial: values, validation metric,
seconds), ``best.yaml`` (the full config with the best values, named ``NAME_best``, ready for
``textransfer run``), ``report.md`` and ``trials/trial_NNN/`` (each trial's run directory).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from textransfer.config import ConfigError, dump_config, parse_override, set_dotted
from textransfer.experiments.train.config import RunConfig, load_config

__all__ = ["SearchParam", "TuneResult", "load_search", "trials_table", "tune"]

logger = logging.getLogger("textransfer.tune")

# Keys the search may not touch: the tune sets name and output_dir per trial, and the seed and
# the split settings decide which rows are validation rows (trials must score the same rows).
_RESERVED = ("name", "output_dir", "seed", "data.test", "data.test_size", "data.val", "data.val_size", "setups")
_RANGE_KEYS = {"low", "high", "log", "type", "step"}
MARKER, MARKER_FILE = "textransfer tune", "tune.json"  # tune.json["written_by"]: the folder is a tune's


@dataclass(frozen=True)
class SearchParam:
    """One searched key: a numeric range (``low``..``high``, optionally ``log`` or ``step``) or a
    list of ``choices``."""

    key: str
    kind: Literal["float", "int", "categorical"]
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value of this key for an Optuna ``trial``."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        assert self.low is not None and self.high is not None  # a range: _parse_param sets both
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def ends(self) -> list[Any]:
        """Values that must all make a valid config: both ends of a range, or every choice."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]

    def describe(self) -> str:
        if self.kind == "categorical":
            return "one of " + ", ".join(map(str, self.choices))
        text = f"{self.kind} in [{self.low:g}, {self.high:g}]"
        return text + (", log scale" if self.log else "") + (f", step {self.step:g}" if self.step else "")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _parse_param(key: Any, spec: Any) -> SearchParam:
    """One ``search:`` entry -> :class:`SearchParam`; a ConfigError naming the key otherwise."""
    where = f"search: {key}"
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"search: keys are dotted config keys such as training.lr, got {key!r}")
    if any(key == r or key.startswith(r + ".") for r in _RESERVED):
        raise ConfigError(
            f"{where}: this key cannot be searched (the tune sets names and output folders itself, and "
            "the seed and split settings decide which rows are validation rows)"
        )
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected {{low: .., high: ..}} or {{choices: [..]}}, got {spec!r}")
    if "choices" in spec:
        extra = set(spec) - {"choices"}
        if extra:
            raise ConfigError(f"{where}: 'choices' cannot be combined with {sorted(extra)}")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices must be a non-empty list, got {choices!r}")
        if any(isinstance(c, (dict, list)) for c in choices):
            raise ConfigError(f"{where}: choices must be plain values (numbers, strings, booleans, null)")
        return SearchParam(key, "categorical", choices=tuple(choices))
    unknown = set(spec) - _RANGE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {sorted(unknown)}; a range takes low, high, log, type, step")
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: a range needs both low and high (or give choices: [..])")
    low, high, kind = spec["low"], spec["high"], spec.get("type", "float")
    if kind not in ("float", "int"):
        raise ConfigError(f"{where}: type must be float or int, got {kind!r}")
    for name, v in (("low", low), ("high", high)):
        if not _is_number(v):
            raise ConfigError(f"{where}: {name} must be a number, got {v!r}")
        if kind == "int" and not isinstance(v, int):
            raise ConfigError(f"{where}: type int needs whole-number bounds, got {name}={v!r}")
    if low > high:
        raise ConfigError(f"{where}: low ({low}) is above high ({high})")
    if low == high:
        raise ConfigError(f"{where}: empty range (low = high = {low}); set the value with --set instead")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low}")
    step = spec.get("step")
    if step is not None:
        if not _is_number(step) or step <= 0 or (kind == "int" and not isinstance(step, int)):
            raise ConfigError(f"{where}: step must be a positive {kind}, got {step!r}")
        if log:
            raise ConfigError(f"{where}: step and log cannot be combined")
    return SearchParam(key, kind, low=low, high=high, log=log, step=step)


def _read_tree(config: str | Path | dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The raw YAML tree of a config file (or a copy of a dict) and how messages name it."""
    if isinstance(config, dict):
        return copy.deepcopy(config), "(dict)"
    from textransfer.config import _yaml_load  # the run configs' own reader (reads 3e-4 as a float)

    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (cwd: {Path.cwd()})")
    try:
        tree = _yaml_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}): re-save it as UTF-8") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(tree).__name__}")
    return tree, str(path)


def _with_values(tree: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(tree)
    for key, value in values.items():
        set_dotted(out, key, value)
    return out


def load_search(
    config: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> tuple[dict[str, Any], RunConfig, list[SearchParam]]:
    """Reads a run config with a ``search:`` section and checks everything a tune needs.

    Returns:
        ``(tree, config, params)``: the config tree without ``search:`` (overrides applied),
        it validated as a :class:`RunConfig`, and the searched keys.

    Raises:
        ConfigError: no or a bad ``search:`` section (naming the key), an invalid config, more
            than one setup, or no validation split.
    """
    tree, source = _read_tree(config)
    search = tree.pop("search", None)
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(tree, key, value)
    base = load_config(tree)
    if not search:
        raise ConfigError(
            f"{source}: no `search:` section; add the keys to search and their ranges, e.g. "
            "search: {strategy.head.C: {low: 0.01, high: 10, log: true}}"
        )
    if not isinstance(search, dict):
        raise ConfigError(f"{source}: `search:` must map dotted keys to ranges, got {type(search).__name__}")
    params = [_parse_param(k, v) for k, v in search.items()]
    from textransfer.experiments._kernel import check_buildable
    from textransfer.strategies.base import CapabilityError

    for p in params:  # every end of every range must give a valid config (catches unknown keys)
        for value in p.ends():
            try:
                # ...whose components build and go together (a constructor's range, a strategy
                # that cannot train that encoder): before the first trial, not in the middle.
                check_buildable(load_config(_with_values(tree, {p.key: value})).resolved_setups())
            except ConfigError as exc:
                detail = str(exc).removeprefix("invalid config (dict):").strip()
                raise ConfigError(f"{source}: search: {p.key} = {value!r} does not make a valid config: {detail}") from None
            except (CapabilityError, ValueError) as exc:
                raise ConfigError(f"{source}: search: {p.key} = {value!r} does not make a setup that runs: {exc}") from None
    if len(base.resolved_setups()) > 1:
        raise ConfigError(
            f"{source}: tune searches one setup, this config has {len(base.setups)} (`setups:`); keep one "
            "(or move its encoder and strategy to the top level)"
        )
    if base.data.val is None and base.data.val_size <= 0:
        raise ConfigError(
            f"{source}: tune needs a validation split to score trials on (never the test split): set "
            "data.val_size (e.g. 0.2, held out of the training data) or data.val (a labeled source)"
        )
    return tree, base, params


# -- the search ------------------------------------------------------------------------------


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes:
        tune_dir: ``output_dir/NAME/`` (trials.csv, best.yaml, report.md, trials/).
        metric: the validation metric maximised.
        trials: one dict per trial: ``trial``, ``params``, ``value``, ``seconds``, ``run_dir``.
        best: the trial with the highest value (the first of equals).
        best_config: the path of ``best.yaml``.
    """

    tune_dir: Path
    metric: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    best_config: Path | None = None


class _ValScorer:
    """Scores a trial's model on the validation split of its config, the split ``run`` trained
    with (same loader, same seed); splits are cached while the data section does not change."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._splits: Any = None

    def __call__(self, config: RunConfig, clf: Any, metric: str) -> dict[str, Any]:
        from textransfer.encoders.cache import FeatureCache
        from textransfer.experiments.train.run import evaluate, load_splits

        key = json.dumps([config.data.model_dump(mode="json"), config.seed], sort_keys=True, default=str)
        if key != self._key:
            self._splits, self._key = load_splits(config), key
        val = self._splits.val
        if val is None or val.labels is None:
            raise ConfigError("the validation split has no labels: tune scores trials on labeled validation data")
        cache = FeatureCache(Path(config.cache_dir).expanduser()) if config.cache_dir else None
        scores = evaluate(clf, val, cache, config.batch_size)
        return {"value": float(scores[metric]), "n": int(scores["n"])}


def tune(
    config: str | Path | dict[str, Any],
    trials: int,
    overrides: list[str] | tuple[str, ...] = (),
    metric: Literal["accuracy", "macro_f1"] = "accuracy",
    seed: int | None = None,
) -> TuneResult:
    """Runs ``trials`` trials of the ``search:`` ranges of a run config; writes the tune directory.

    Args:
        config: a YAML run config (or its dict) with a ``search:`` section and a validation split.
        trials: how many trials to run.
        overrides: ``KEY=VALUE`` overrides applied to the config before the search.
        metric: the validation metric to maximise.
        seed: seeds the TPE sampler (default: the config's ``seed``).

    Example:
        >>> result = textransfer.tune("configs/tune_example.yaml", trials=20)  # doctest: +SKIP
        >>> result.best["params"], result.best_config  # doctest: +SKIP
    """
    from textransfer._optional import require
    from textransfer.experiments._kernel import is_main_process
    from textransfer.experiments.train.run import run

    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"--trials must be a whole number >= 1, got {trials!r}")
    if metric not in ("accuracy", "macro_f1"):
        raise ValueError(f"metric must be accuracy or macro_f1, got {metric!r}")
    tree, base, params = load_search(config, overrides)
    optuna = require("optuna", extra="tune", feature="textransfer tune")
    tune_dir = Path(base.output_dir) / base.name
    _claim(tune_dir, trials, metric)
    result = TuneResult(tune_dir=tune_dir, metric=metric)
    score_val = _ValScorer()

    def objective(trial: Any) -> float:
        values = {p.key: p.suggest(trial) for p in params}
        trial_tree = _with_values(tree, values)
        trial_tree.update(name=f"trial_{trial.number:03d}", output_dir=str(tune_dir / "trials"))
        # Extra eval sets only cost time here: `textransfer run best.yaml` scores them.
        trial_tree["data"] = {k: v for k, v in trial_tree["data"].items() if k != "eval"}
        cfg = load_config(trial_tree)
        start = time.perf_counter()
        run_result = run(cfg)
        clf = next(iter(run_result.classifiers.values()))
        score = score_val(cfg, clf, metric)
        seconds = time.perf_counter() - start
        record = {"trial": trial.number, "params": values, "value": score["value"], "val_rows": score["n"],
                  "seconds": round(seconds, 2), "run_dir": str(run_result.run_dir)}
        result.trials.append(record)
        logger.info("trial %d/%d %s: val %s %.4f (%.1f s)", trial.number + 1, trials,
                    json.dumps(values, default=str), metric, score["value"], seconds)
        return score["value"]

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own line per trial instead
    sampler = optuna.samplers.TPESampler(seed=base.seed if seed is None else seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=trials)
    result.best = max(result.trials, key=lambda t: (t["value"], -t["trial"]))
    if is_main_process():
        _write_outputs(result, tree, base, params, source=str(config) if not isinstance(config, dict) else "(dict)")
    return result


# -- outputs ---------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return json.dumps(v)  # YAML spelling: null, true, false
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def trials_table(result: TuneResult) -> str:
    """A markdown table of the trials, best first."""
    keys = list(result.trials[0]["params"]) if result.trials else []
    head = ["trial", *keys, f"val {result.metric}", "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in sorted(result.trials, key=lambda t: (-t["value"], t["trial"])):
        mark = " (best)" if t is result.best else ""
        cells = [f"{t['trial']}{mark}", *[_fmt(t["params"][k]) for k in keys], f"{t['value']:.4f}", f"{t['seconds']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> None:
    """Temp file + rename: a crash never leaves a half-written file."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _claim(tune_dir: Path, trials: int, metric: str) -> None:
    """Marks ``tune_dir`` as a tune directory (``tune.json``) before any trial runs; refuses a
    non-empty folder that a tune did not write (e.g. the outputs of ``textransfer run`` of the
    same name, whose report.md a tune would overwrite)."""
    from textransfer.experiments._kernel import is_main_process

    marker = tune_dir / MARKER_FILE
    if tune_dir.is_dir() and any(tune_dir.iterdir()):
        try:
            ours = json.loads(marker.read_text(encoding="utf-8")).get("written_by") == MARKER
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise ConfigError(
                f"{tune_dir} already holds files that textransfer tune did not write (a `textransfer run` of the "
                "same name?); nothing was changed. Give the tune its own name: --set name=NAME_tune"
            )
    elif tune_dir.exists() and not tune_dir.is_dir():
        raise ConfigError(f"{tune_dir} is a file: the tune directory must be a folder (set name or output_dir)")
    if is_main_process():
        tune_dir.mkdir(parents=True, exist_ok=True)
        _write_text(marker, json.dumps({"written_by": MARKER, "status": "running", "trials": trials, "metric": metric}) + "\n")


def _write_outputs(
    result: TuneResult, tree: dict[str, Any], base: RunConfig, params: list[SearchParam], source: str
) -> None:
    d = result.tune_dir
    d.mkdir(parents=True, exist_ok=True)
    keys = [p.key for p in params]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", *keys, f"val_{result.metric}", "val_rows", "seconds", "run_dir"])
    for t in result.trials:
        w.writerow([t["trial"], *[t["params"][k] for k in keys], f"{t['value']:.6f}", t["val_rows"], t["seconds"], t["run_dir"]])
    _write_text(d / "trials.csv", buf.getvalue())

    best_tree = _with_values(tree, result.best["params"])
    best_tree["name"] = f"{base.name}_best"  # its own run directory, beside this tune directory
    best = load_config(best_tree)
    header = (
        f"# Best of {len(result.trials)} trials of {source} (textransfer tune): trial {result.best['trial']}, "
        f"val {result.metric} {result.best['value']:.4f}.\n"
        f"# Searched: {', '.join(f'{k} = {v}' for k, v in result.best['params'].items())}.\n"
        f"# Train and evaluate it: textransfer run {d / 'best.yaml'}\n"
    )
    result.best_config = d / "best.yaml"
    _write_text(result.best_config, header + dump_config(best))

    val = base.data.val.source if base.data.val is not None else f"{base.data.val_size:.0%} of the training data (seed {base.seed})"
    lines = [
        f"# Hyperparameter search `{base.name}`",
        "",
        f"{len(result.trials)} trials, Optuna TPE sampler seeded with {base.seed}. Objective: **{result.metric} "
        f"on the validation split** ({val}; {result.best['val_rows']} rows), never a test split. Each trial "
        "is a normal run, so its folder also holds the scores `textransfer run` computes on the test split; "
        "the search does not read them.",
        "",
        "| searched key | range |",
        "|---|---|",
        *[f"| `{p.key}` | {p.describe()} |" for p in params],
        "",
        f"Best: trial {result.best['trial']}, val {result.metric} {result.best['value']:.4f} with "
        + ", ".join(f"`{k}` = {_fmt(v)}" for k, v in result.best["params"].items())
        + f". Its full config is `best.yaml`; `textransfer run {d / 'best.yaml'}` trains it and scores the test "
        "and eval sets.",
        "",
        "## Trials (best first)",
        "",
        trials_table(result),
        "",
        "Each trial's run directory (model, metrics, resolved config) is `trials/trial_NNN/`.",
        "",
    ]
    _write_text(d / "report.md", "\n".join(lines))
    summary = {"written_by": MARKER, "status": "done", "metric": result.metric, "best": result.best,
               "trials": result.trials, "search": {p.key: p.describe() for p in params}}
    _write_text(d / MARKER_FILE, json.dumps(summary, indent=2, default=str) + "\n")
