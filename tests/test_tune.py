"""`textransfer tune`: trials through the normal run machinery, scored on the validation split,
a seeded sampler, best.yaml, and `search:` ranges checked when the config is read."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import make_toy
from tests.fixtures.data import write_labeled_csv
from textransfer.cli import main
from textransfer.config import ConfigError
from textransfer.experiments.train.config import load_config

pytest.importorskip("optuna")


@pytest.fixture
def tune_config(tmp_path: Path) -> dict[str, Any]:
    data = make_toy("movies", ["film", "movie", "plot", "actor"], n=80, seed=1)
    return {
        "name": "toy_tune",
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": None,
        "data": {"train": write_labeled_csv(tmp_path / "toy.csv", data), "test_size": 0.2, "val_size": 0.25},
        "encoder": {"name": "tfidf", "min_df": 1},
        "strategy": {"name": "frozen", "head": {"name": "logreg", "C": 1.0}},
        "search": {
            "strategy.head.C": {"low": 0.001, "high": 10, "log": True},
            "encoder.max_features": {"choices": [5, 20, 100]},
            "encoder.min_df": {"low": 1, "high": 2, "type": "int"},
        },
    }


def _write(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_three_trials_through_the_cli(tune_config: dict[str, Any], tmp_path: Path, capsys) -> None:
    import textransfer
    from textransfer.experiments.train.run import evaluate, load_splits

    assert main(["tune", str(_write(tmp_path, tune_config)), "--trials", "3"]) == 0
    tune_dir = tmp_path / "runs" / "toy_tune"
    with (tune_dir / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    assert set(rows[0]) >= {"strategy.head.C", "encoder.max_features", "encoder.min_df", "val_accuracy", "seconds"}
    for r in rows:
        assert 0.001 <= float(r["strategy.head.C"]) <= 10 and r["encoder.max_features"] in ("5", "20", "100")
        assert r["encoder.min_df"] in ("1", "2") and 0.0 <= float(r["val_accuracy"]) <= 1.0
        assert (tune_dir / "trials" / f"trial_{int(r['trial']):03d}" / "model" / "textransfer.json").is_file()
    best = max(rows, key=lambda r: (float(r["val_accuracy"]), -int(r["trial"])))

    # best.yaml is a valid run config carrying the best trial's values, without `search:`.
    cfg = load_config(tune_dir / "best.yaml")
    assert cfg.name == "toy_tune_best"
    assert cfg.strategy.head.params()["C"] == pytest.approx(float(best["strategy.head.C"]))
    assert cfg.encoder.params()["max_features"] == int(best["encoder.max_features"])
    assert "search" not in yaml.safe_load((tune_dir / "best.yaml").read_text())

    # The objective is the validation split of the run (same loader, same seed), not the test split.
    trial_cfg = load_config(tune_dir / "trials" / f"trial_{int(best['trial']):03d}" / "config.resolved.yaml")
    splits = load_splits(trial_cfg)
    clf = textransfer.load(tune_dir / "trials" / f"trial_{int(best['trial']):03d}" / "model")
    assert float(best["val_accuracy"]) == pytest.approx(evaluate(clf, splits.val, None)["accuracy"], abs=1e-6)
    assert len(splits.val) == 16  # 25% of the 64 rows left after the 20% test split

    report = (tune_dir / "report.md").read_text()
    assert "accuracy on the validation split" in report and "| `strategy.head.C` |" in report
    assert json.loads((tune_dir / "tune.json").read_text())["status"] == "done"
    assert f"best: trial {best['trial']}" in capsys.readouterr().out


def test_a_rerun_proposes_the_same_trials(tune_config: dict[str, Any], tmp_path: Path) -> None:
    from textransfer.tuning import tune

    first = tune(tune_config, 3)
    second = tune({**tune_config, "output_dir": str(tmp_path / "again")}, 3)
    assert [t["params"] for t in first.trials] == [t["params"] for t in second.trials]
    assert [t["value"] for t in first.trials] == [t["value"] for t in second.trials]
    other = tune({**tune_config, "output_dir": str(tmp_path / "other")}, 3, seed=7)
    assert [t["params"] for t in other.trials] != [t["params"] for t in first.trials]


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"strategy.head.C": {"low": 10, "high": 0.1}}, "strategy.head.C: low (10) is above high (0.1)"),
        ({"strategy.head.C": {"low": 1, "high": 1}}, "strategy.head.C: empty range"),
        ({"strategy.head.C": {"low": 0, "high": 1, "log": True}}, "strategy.head.C: a log range needs low > 0"),
        ({"training.epochs": {"low": 1, "high": 4.5, "type": "int"}}, "training.epochs: type int needs whole-number bounds"),
        ({"training.epochs": {"low": 1, "high": 4, "type": "integer"}}, "training.epochs: type must be float or int"),
        ({"strategy.head.C": {"low": "a", "high": 1}}, "strategy.head.C: low must be a number"),
        ({"strategy.head.C": {"lo": 1, "high": 2}}, "strategy.head.C: unknown setting(s) ['lo']"),
        ({"strategy.head.C": {"choices": []}}, "strategy.head.C: choices must be a non-empty list"),
        ({"strategy.head.C": 3}, "strategy.head.C: expected {low: .., high: ..}"),
        ({"training.lrr": {"low": 0.001, "high": 0.01}}, "search: training.lrr = 0.001 does not make a valid config"),
        ({"strategy.head.CC": {"low": 0.1, "high": 1}}, "CC"),
        ({"seed": {"choices": [0, 1]}}, "search: seed: this key cannot be searched"),
        ({"data.val_size": {"low": 0.1, "high": 0.3}}, "search: data.val_size: this key cannot be searched"),
        # Ends whose components refuse them: before the first trial, not when a trial draws them.
        ({"strategy.head.C": {"low": -1, "high": 1}},
         "search: strategy.head.C = -1 does not make a setup that runs: logreg: C must be > 0, got -1"),
        ({"strategy.name": {"choices": ["frozen", "finetune"]}},
         "search: strategy.name = 'finetune' does not make a setup that runs: setup toy_tune: finetune needs an "
         "encoder whose weights can be trained; 'tfidf' cannot"),
    ],
)
def test_bad_search_ranges_fail_at_load(tune_config: dict[str, Any], search: dict[str, Any], message: str) -> None:
    from textransfer.tuning import load_search

    with pytest.raises(ConfigError) as exc:
        load_search({**tune_config, "search": search})
    assert message in str(exc.value)


def test_no_validation_split_or_no_search_is_an_error(tune_config: dict[str, Any], tmp_path: Path, capsys) -> None:
    tune_config["data"]["val_size"] = 0.0
    assert main(["tune", str(_write(tmp_path, tune_config)), "--trials", "2"]) == 2
    assert "tune needs a validation split" in capsys.readouterr().err
    tune_config["data"]["val_size"] = 0.25
    del tune_config["search"]
    assert main(["tune", str(_write(tmp_path, tune_config)), "--trials", "2"]) == 2
    assert "no `search:` section" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_a_run_folder_of_the_same_name_is_not_overwritten(tune_config: dict[str, Any], tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "runs" / "toy_tune"
    run_dir.mkdir(parents=True)
    (run_dir / "report.md").write_text("the report of `textransfer run`")
    assert main(["tune", str(_write(tmp_path, tune_config)), "--trials", "1"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (run_dir / "report.md").read_text() == "the report of `textransfer run`"
    assert main(["tune", str(_write(tmp_path, tune_config)), "--trials", "1", "--set", "name=toy_tune2"]) == 0
