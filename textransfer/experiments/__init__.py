"""Experiments: every kind of run is a folder with the same shape, on one fit-and-score kernel.

::

    experiments/
      __init__.py     EXPERIMENTS: kind name -> config model, run, report (this module)
      _kernel.py      validate_components (registry names and keys, at config load),
                      build_components, fit_setup (the one place a strategy is fitted: a
                      FitContext in, a FitResult out), probabilities / score, FeatureStore,
                      run_cache, is_main_process
      _analysis.py    what the curve and layer configs share
      train/          config.py run.py report.py              ``textransfer run``
      crossdomain/    config.py run.py report.py matrix.py plots.py trust_report.py
                                                              ``textransfer crossdomain``
      curve/          config.py run.py report.py plots.py     ``textransfer curve``
      layers/         config.py run.py report.py plots.py     ``textransfer layers``

The CLI makes one subcommand per entry of :data:`EXPERIMENTS` (its ``verb``), and the scripts in
``pipelines/`` run them through the CLI. Adding a kind is one folder plus one
:func:`register_experiment` call. A config file may name its kind (``kind: crossdomain``); without
it the verb tells, and a config of another kind is refused with the command that runs it.

Nothing here is imported by ``import textransfer``: entries name their functions as
``"module:attribute"`` strings, imported when a run starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EXPERIMENTS", "ExperimentKind", "check_config_kind", "experiment_for_verb", "register_experiment"]

# A function given directly, or as "package.module:attribute" (imported on first use).
Ref = str | Callable[..., Any]


def _resolve(ref: Ref) -> Any:
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ExperimentKind:
    """One kind of experiment.

    Attributes:
        name: the kind, as a config's ``kind:`` names it.
        verb: the ``textransfer`` subcommand that runs it.
        help: one line for ``textransfer --help``.
        config: the pydantic config model (or its ``"module:Class"``).
        run: ``run(config_or_path, overrides, **options) -> result`` with ``result.run_dir`` and
            ``result.metrics``; writes ``report.md`` and ``metrics.json`` into the run directory.
        report: ``report(result) -> list[str]``, the summary lines the CLI prints.
        outputs: what the run directory holds, printed after it.
        options: extra CLI options: ``(flags, argparse keyword arguments)``; each ``dest`` is
            passed to ``run`` as a keyword.
        config_help: the ``config`` argument's help.
        set_example: the ``--set`` example of the help.
    """

    name: str
    verb: str
    help: str
    config: Ref
    run: Ref
    report: Ref
    outputs: str = "report.md, metrics.json"
    options: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = field(default_factory=tuple)
    config_help: str = "YAML config file"
    set_example: str = "seeds=[0]"

    def config_model(self) -> Any:
        """The config model class."""
        return _resolve(self.config)

    def run_config(self, config: Any, overrides: list[str] | tuple[str, ...] = (), **options: Any) -> Any:
        """Runs ``config`` (a path, dict or config model) and returns the kind's result."""
        if isinstance(config, (str, Path)):
            check_config_kind(config, self)
        return _resolve(self.run)(config, overrides, **options)

    def summary(self, result: Any) -> list[str]:
        """The summary lines of a finished run."""
        return list(_resolve(self.report)(result))


EXPERIMENTS: dict[str, ExperimentKind] = {}


def register_experiment(kind: ExperimentKind) -> ExperimentKind:
    """Adds ``kind`` to :data:`EXPERIMENTS` (and so a subcommand to the CLI).

    Raises:
        ValueError: another kind already has its name or verb.
    """
    for other in EXPERIMENTS.values():
        if other.name != kind.name and other.verb == kind.verb:
            raise ValueError(f"experiment kind {kind.name!r}: the verb {kind.verb!r} is taken by {other.name!r}")
    EXPERIMENTS[kind.name] = kind
    return kind


def experiment_for_verb(verb: str) -> ExperimentKind | None:
    """The kind a CLI subcommand runs, or None when ``verb`` is no experiment."""
    return next((k for k in EXPERIMENTS.values() if k.verb == verb), None)


def check_config_kind(path: str | Path, kind: ExperimentKind) -> None:
    """Refuses a config file whose ``kind:`` is another experiment kind, naming the command that
    runs it. A file without ``kind:`` (or one that cannot be read: the config loader says why)
    passes.

    Raises:
        ValueError: the file names another or an unknown kind.
    """
    from textransfer.config import read_kind

    found = read_kind(path)
    if found is None or found == kind.name:
        return
    other = EXPERIMENTS.get(found)
    if other is None:
        raise ValueError(
            f"{path}: unknown kind {found!r} (known: {', '.join(sorted(EXPERIMENTS))}); fix `kind:` in the file, "
            f"or remove it to run it with `textransfer {kind.verb}`"
        )
    raise ValueError(
        f"{path} is a `kind: {found}` config, which `textransfer {kind.verb}` cannot run (it runs `kind: "
        f"{kind.name}` configs): run it with `textransfer {other.verb} {path}`"
    )


register_experiment(ExperimentKind(
    name="train", verb="run", help="train and evaluate from a YAML config",
    config="textransfer.experiments.train.config:RunConfig",
    run="textransfer.experiments.train.run:run",
    report="textransfer.experiments.train.report:summary_lines",
    outputs="report.md, metrics.json, plots/, the trained model",
    set_example="strategy.head=mlp",
    options=(
        (("--resume",), {"dest": "resume", "action": "store_true",
                         "help": "continue interrupted fine-tuning from the last epoch checkpoint in the run directory"}),
        (("--fresh",), {"dest": "fresh", "action": "store_true",
                        "help": "start over: delete the checkpoints an interrupted run left in the run directory"}),
    ),
))
register_experiment(ExperimentKind(
    name="crossdomain", verb="crossdomain", help="cross-domain evaluation grid: sources x targets x setups x seeds",
    config="textransfer.experiments.crossdomain.config:CrossDomainConfig",
    run="textransfer.experiments.crossdomain.run:run_crossdomain",
    report="textransfer.experiments.crossdomain.report:summary_lines",
    outputs="report.md, metrics.json, plots/",
    config_help="YAML config (see configs/crossdomain_*.yaml)",
))
register_experiment(ExperimentKind(
    name="curve", verb="curve", help="learning curves: target accuracy vs number of labeled target examples",
    config="textransfer.experiments.curve.config:CurveConfig",
    run="textransfer.experiments.curve.run:run_curve",
    report="textransfer.experiments.curve.report:summary_lines",
    outputs="report.md, metrics.json, samples.json, plots/",
    config_help="YAML config (see configs/curve_*.yaml)",
))
register_experiment(ExperimentKind(
    name="layers", verb="layers",
    help="layer transfer (Yosinski et al. 2014): keep k layer groups, re-initialise the rest",
    config="textransfer.experiments.layers.config:LayersConfig",
    run="textransfer.experiments.layers.run:run_layers",
    report="textransfer.experiments.layers.report:summary_lines",
    outputs="report.md, metrics.json, samples.json, plots/",
    config_help="YAML config (see configs/*layers*.yaml)",
))
