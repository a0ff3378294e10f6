"""The experiment registry: every kind runs through the CLI the same way; a new kind is one
registration; a config's `kind:` is checked; unlabeled target texts reach adaptation strategies
in every kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from tests.conftest import make_toy
from tests.fixtures.data import write_labeled_csv
from textransfer import cli
from textransfer.config import RunDirectory, RunName, resolve_config
from textransfer.experiments import EXPERIMENTS, ExperimentKind, register_experiment
from textransfer.strategies.base import STRATEGIES, register_strategy
from textransfer.strategies.frozen import FrozenStrategy

FROZEN = {"name": "frozen", "head": "logreg"}


def _data(tmp_path: Path) -> tuple[str, str]:
    movies = write_labeled_csv(tmp_path / "m.csv", make_toy("movies", ["film", "plot"], n=32, seed=1))
    products = write_labeled_csv(tmp_path / "p.csv", make_toy("products", ["phone", "battery"], n=40, seed=2))
    return movies, products


def _tiny_configs(tmp_path: Path, tiny_bert_dir: Path) -> dict[str, dict[str, Any]]:
    """A config of every kind that runs in seconds, keyed by kind (without `kind:`)."""
    movies, products = _data(tmp_path)
    common = {"output_dir": str(tmp_path / "runs"), "cache_dir": None}
    return {
        "train": {"name": "c_train", **common, "data": {"train": movies, "test_size": 0.25},
                  "encoder": "tfidf", "strategy": FROZEN},
        "crossdomain": {"name": "c_xd", **common, "seeds": [0], "test_size": 0.25,
                        "domains": {"movies": movies, "products": products}, "sources": ["movies"],
                        "targets": ["products"], "encoders": {"tfidf": "tfidf"}, "strategies": {"frozen": FROZEN},
                        "evaluation": {"n_boot": 0, "plots": False, "label_budgets": [8, "all"]}},
        "curve": {"name": "c_curve", **common, "seeds": [0], "test_size": 0.25, "target": products,
                  "budgets": [8, "all"], "baseline": "tfidf",
                  "setups": {"tfidf": {"encoder": "tfidf", "strategy": FROZEN, "transfer": False}}},
        "layers": {"name": "c_layers", "output_dir": common["output_dir"], "seeds": [0], "test_size": 0.25,
                   "target": products, "budget": 16,
                   "encoder": {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16},
                   "strategy": {"name": "finetune", "head": "linear", "val_fraction": 0.0},
                   "training": {"epochs": 1, "batch_size": 8, "patience": None}, "ks": [0]},
    }


def _write(tmp_path: Path, cfg: dict[str, Any], name: str = "cfg.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


# -- the contract: every registered kind, through the CLI --------------------------------------


@pytest.mark.parametrize("kind", sorted(EXPERIMENTS))
def test_every_kind_runs_a_tiny_config_through_the_cli(kind, tmp_path, tiny_bert_dir, capsys):
    configs = _tiny_configs(tmp_path, tiny_bert_dir)
    assert kind in configs, f"give the experiment kind {kind!r} a tiny config in this test"
    verb = EXPERIMENTS[kind].verb
    cfg = {"kind": kind, **configs[kind]}
    assert cli.main(["-q", verb, _write(tmp_path, cfg)]) == 0
    run_dir = tmp_path / "runs" / cfg["name"]
    assert (run_dir / "report.md").read_text().startswith("# ")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert isinstance(metrics, dict) and metrics
    assert yaml.safe_load((run_dir / "config.resolved.yaml").read_text())["kind"] == kind
    assert f"run directory: {run_dir}" in capsys.readouterr().out
    # The same config without `kind:` runs with its verb, as before kinds existed.
    assert cli.main(["-q", verb, _write(tmp_path, configs[kind], "no_kind.yaml")]) == 0


def test_a_config_of_another_kind_is_refused_with_the_command_that_runs_it(tmp_path, tiny_bert_dir, capsys):
    configs = _tiny_configs(tmp_path, tiny_bert_dir)
    path = _write(tmp_path, {"kind": "crossdomain", **configs["crossdomain"]})
    assert cli.main(["run", path]) == 2
    err = capsys.readouterr().err
    assert f"{path} is a `kind: crossdomain` config" in err and f"textransfer crossdomain {path}" in err
    assert not (tmp_path / "runs").exists()
    path = _write(tmp_path, {"kind": "grid", **configs["crossdomain"]}, "unknown.yaml")
    assert cli.main(["crossdomain", path]) == 2
    assert "unknown kind 'grid'" in capsys.readouterr().err


def test_the_cli_verbs_come_from_the_registry():
    sub = next(a for a in cli._parser()._actions if a.dest == "command")
    assert {k.verb for k in EXPERIMENTS.values()} <= set(sub.choices)
    assert {"run", "crossdomain", "curve", "layers"} <= set(sub.choices)  # the verbs users know


# -- a new kind: one registration ---------------------------------------------------------------


class ToyConfig(BaseModel):
    """The config of the toy kind: a name, where it writes, and a number to report."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["toy"] = "toy"
    name: RunName
    output_dir: str = "runs"
    value: int = 1


class ToyResult(BaseModel):
    run_dir: Path
    metrics: dict[str, Any]


def run_toy(config: Any, overrides: list[str] | tuple[str, ...] = ()) -> ToyResult:
    config = resolve_config(ToyConfig, config, overrides)
    with RunDirectory(config) as run_dir, run_dir.outputs() as out:
        metrics = {"name": config.name, "doubled": 2 * config.value}
        (out / "metrics.json").write_text(json.dumps(metrics))
        (out / "report.md").write_text(f"# Toy `{config.name}`\n\ndoubled: {metrics['doubled']}\n")
    return ToyResult(run_dir=run_dir.path, metrics=metrics)


@pytest.fixture
def toy_kind():
    kind = register_experiment(ExperimentKind(
        name="toy", verb="toy", help="a toy experiment", config=ToyConfig, run=run_toy,
        report=lambda result: [f"doubled {result.metrics['doubled']}"],
    ))
    yield kind
    del EXPERIMENTS["toy"]


def test_a_registered_kind_runs_through_the_cli(toy_kind, tmp_path, capsys):
    path = _write(tmp_path, {"kind": "toy", "name": "t", "output_dir": str(tmp_path / "runs"), "value": 4})
    assert cli.main(["toy", path, "--set", "value=5"]) == 0
    out = capsys.readouterr().out
    assert "doubled 10" in out and f"run directory: {tmp_path / 'runs' / 't'}" in out
    assert json.loads((tmp_path / "runs" / "t" / "metrics.json").read_text())["doubled"] == 10
    assert cli.main(["run", path]) == 2  # a toy config is not a run config
    assert "textransfer toy" in capsys.readouterr().err


def test_a_verb_cannot_be_registered_twice(toy_kind):
    with pytest.raises(ValueError, match="the verb 'toy' is taken by 'toy'"):
        register_experiment(ExperimentKind(name="toy2", verb="toy", help="", config=ToyConfig, run=run_toy,
                                           report=lambda r: []))


# -- unlabeled target texts reach an adaptation strategy in every kind -------------------------

SEEN: list[dict[str, Any]] = []


class RecordingAdaptation(FrozenStrategy):
    """A test adaptation: needs unlabeled target texts (as CORAL does) and records what it got."""

    needs_target_texts = True

    def fit_with_context(self, encoder, head, train, *, val=None, target_unlabeled=None, context=None):  # noqa: ANN001, ANN201
        if target_unlabeled is None:
            raise ValueError("recording_adaptation needs target texts (target_unlabeled)")
        SEEN.append({"train": train.domain, "target": target_unlabeled.domain, "rows": len(target_unlabeled),
                     "labels": target_unlabeled.labels})
        return super().fit_with_context(encoder, head, train, val=val, target_unlabeled=target_unlabeled,
                                        context=context)


@pytest.fixture
def adaptation():
    register_strategy("recording_adaptation")(RecordingAdaptation)
    SEEN.clear()
    yield {"name": "recording_adaptation", "head": "logreg"}
    STRATEGIES._entries.pop("recording_adaptation", None)


def test_a_run_config_passes_data_unlabeled_to_the_strategy(adaptation, tmp_path, tiny_bert_dir):
    cfg = {**_tiny_configs(tmp_path, tiny_bert_dir)["train"], "strategy": adaptation}
    _, products = _data(tmp_path)
    path = _write(tmp_path, cfg)
    assert cli.main(["-q", "run", path]) == 2  # without data.unlabeled the adaptation has no target
    cfg["data"]["unlabeled"] = products
    assert cli.main(["-q", "run", _write(tmp_path, cfg)]) == 0
    assert SEEN == [{"train": "m", "target": "p", "rows": 40, "labels": None}]
    metrics = json.loads((tmp_path / "runs" / "c_train" / "metrics.json").read_text())
    assert metrics["setups"]["c_train"]["unlabeled"] == {"domain": "p", "n": 40}


def test_an_adaptation_strategy_works_in_run_crossdomain_and_curve(adaptation, tmp_path, tiny_bert_dir):
    configs = _tiny_configs(tmp_path, tiny_bert_dir)
    movies, products = _data(tmp_path)
    runs = {
        "run": {**configs["train"], "strategy": adaptation, "data": {**configs["train"]["data"], "unlabeled": products}},
        "crossdomain": {**configs["crossdomain"], "strategies": {"frozen": FROZEN, "adapt": adaptation}},
        "curve": {**configs["curve"], "source": movies, "setups": {
            **configs["curve"]["setups"],
            "adapt": {"encoder": "tfidf", "source": {"strategy": adaptation}, "strategy": adaptation}}},
    }
    for verb, cfg in runs.items():
        SEEN.clear()
        assert cli.main(["-q", verb, _write(tmp_path, cfg, f"{verb}.yaml")]) == 0, verb
        assert SEEN and all(s["labels"] is None for s in SEEN), verb  # texts only, never labels
        # The source-trained fits see the target domain's texts.
        assert any(s["train"] in ("m", "movies") and s["target"] in ("p", "products") for s in SEEN), (verb, SEEN)
