"""Experiment tracking (issue 15, item 3): `tracking:` in run, crossdomain and curve configs is
checked at load; a tracked run's config, step losses, epochs and final metrics are read back from
TensorBoard event files and an MLflow file store."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.data import write_labeled_csv
from textransfer.config import ConfigError
from textransfer.experiments.crossdomain.config import load_crossdomain_config
from textransfer.experiments.curve.config import load_curve_config
from textransfer.experiments.train.config import load_config
from textransfer.experiments.train.run import run

pytest.importorskip("tensorboard")
mlflow = pytest.importorskip("mlflow")


def _run_config(tmp_path: Path, data, tracking: dict[str, Any] | None) -> dict[str, Any]:
    cfg = {
        "name": "tracked", "output_dir": str(tmp_path / "runs"), "cache_dir": None,
        "data": {"train": write_labeled_csv(tmp_path / "m.csv", data), "test_size": 0.25},
        "encoder": "tfidf", "strategy": {"name": "frozen", "head": "mlp"},
        "training": {"epochs": 3, "batch_size": 8, "patience": None},
    }
    if tracking is not None:
        cfg["tracking"] = tracking
    return cfg


_XD = {"name": "x", "domains": {"movies": "movies", "products": "products"}, "sources": ["movies"],
       "targets": ["products"], "encoders": {"tfidf": "tfidf"}, "strategies": {"frozen": "frozen"}}
_CURVE = {"name": "c", "target": "products", "baseline": "tfidf", "setups": {"tfidf": {"encoder": "tfidf"}}}
_RUN = {"name": "r", "data": {"train": "movies"}}
_LOADERS = [(load_config, _RUN), (load_crossdomain_config, _XD), (load_curve_config, _CURVE)]


@pytest.mark.parametrize(("loader", "base"), _LOADERS)
def test_tracking_section_is_checked_when_the_config_loads(loader, base, monkeypatch):
    ok = loader({**base, "tracking": {"log_with": "TensorBoard", "project": "p"}})
    assert ok.tracking.log_with == ["tensorboard"] and ok.tracking.dir is None
    with pytest.raises(ConfigError, match=r"unknown tracker 'neptune'; supported: tensorboard, mlflow, wandb"):
        loader({**base, "tracking": {"log_with": ["mlflow", "neptune"]}})
    with pytest.raises(ConfigError, match="unknown key 'logwith'"):
        loader({**base, "tracking": {"logwith": ["mlflow"]}})
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("wandb", "tensorboard") else real(name, *a))
    with pytest.raises(ConfigError, match=r"tracker 'wandb' needs the wandb package.*pip install wandb"):
        loader({**base, "tracking": {"log_with": ["wandb"]}})
    with pytest.raises(ConfigError, match=r"tracker 'tensorboard' needs the tensorboard package.*textransfer\[tracking\]"):
        loader({**base, "tracking": {"log_with": ["tensorboard"]}})
    assert loader(base).tracking is None


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _tensorboard_run(root: Path, project: str, name: str) -> Path:
    (found,) = [p for p in (root / "tensorboard" / project).iterdir() if p.name.startswith(f"{name}_")]
    return found


def test_a_tracked_run_is_read_back_from_tensorboard_and_mlflow(toy_movies, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    track_dir = tmp_path / "tracking"
    cfg = _run_config(tmp_path, toy_movies, {"log_with": ["tensorboard", "mlflow"], "project": "sentiment",
                                             "dir": str(track_dir)})
    result = run(cfg)
    test = result.metrics["tracked"]["eval"]["test"]
    (fit,) = json.loads((result.run_dir / "history.json").read_text())["fits"]
    assert fit["mixed_precision"] == result.metrics["tracked"]["training"]["mixed_precision"] == "no"

    tb = _scalars(_tensorboard_run(track_dir, "sentiment", "tracked"))
    steps = [s for s, _ in tb["train/loss"]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) % 3 == 0  # every optimiser step, 3 epochs
    assert [s for s, _ in tb["epoch/val_accuracy"]] == [1, 2, 3]
    assert [v for _, v in tb["epoch/train_loss"]] == pytest.approx([e["train_loss"] for e in fit["epochs"]], rel=1e-6)
    assert tb["test/accuracy"][0][1] == pytest.approx(test["accuracy"])
    assert tb["test/ece"][0][1] == pytest.approx(test["ece"])
    assert tb["test/accuracy_ci95_low"][0][1] == pytest.approx(test["accuracy_ci95"][0])

    client = MlflowClient()
    exp = client.get_experiment_by_name("sentiment")
    (mrun,) = client.search_runs([exp.experiment_id])
    assert mrun.info.run_name == "tracked" and mrun.info.status == "FINISHED"
    params = mrun.data.params
    assert params["kind"] == "run" and params["training.epochs"] == "3" and params["strategy.head.name"] == "mlp"
    assert mrun.data.metrics["test/accuracy"] == pytest.approx(test["accuracy"])
    history = client.get_metric_history(mrun.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == steps
    val = sorted((m.step, m.value) for m in client.get_metric_history(mrun.info.run_id, "epoch/val_accuracy"))
    assert val == [(e["epoch"], pytest.approx(e["val_accuracy"])) for e in fit["epochs"]]


def test_a_failed_run_is_marked_failed_and_default_dirs_are_used(toy_movies, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    import textransfer.experiments.train.run as runner

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)  # as in a fresh process

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(runner, "write_report", crash)
    cfg = _run_config(tmp_path, toy_movies, {"log_with": ["mlflow", "tensorboard"]})
    with pytest.raises(RuntimeError, match="disk full"):
        run(cfg)
    store = tmp_path / "runs" / "tracking" / "mlruns"  # default: <output_dir>/tracking
    assert store.is_dir() and (tmp_path / "runs" / "tracking" / "tensorboard" / "textransfer").is_dir()
    client = MlflowClient(tracking_uri=store.as_uri())
    (mrun,) = client.search_runs([client.get_experiment_by_name("textransfer").experiment_id])
    assert mrun.info.status == "FAILED" and "train/loss" in mrun.data.metrics


def test_crossdomain_and_curve_track_final_metrics(toy_movies, toy_products, tmp_path):
    from textransfer.experiments.crossdomain.run import run_crossdomain
    from textransfer.experiments.curve.run import run_curve

    movies = write_labeled_csv(tmp_path / "m.csv", toy_movies)
    products = write_labeled_csv(tmp_path / "p.csv", toy_products)
    track = {"log_with": ["tensorboard"], "dir": str(tmp_path / "tb")}
    xd = {
        "name": "xd", "output_dir": str(tmp_path / "runs"), "cache_dir": None, "seeds": [0],
        "domains": {"movies": movies, "products": products}, "sources": ["movies"], "targets": ["products"],
        "encoders": {"tfidf": {"name": "tfidf", "min_df": 1}}, "training": {"epochs": 2},
        "strategies": {"mlp": {"name": "frozen", "head": "mlp"}, "logreg": {"name": "frozen", "head": "logreg"}},
        "evaluation": {"n_boot": 10, "label_budgets": ["all"]}, "tracking": track,
    }
    res = run_crossdomain(xd)
    tb = _scalars(_tensorboard_run(tmp_path / "tb", "textransfer", "xd"))
    rows = {r["setup"]: r for r in res.metrics["rows"]}
    for setup in ("tfidf+mlp", "tfidf+logreg"):  # a frozen logreg has no loop: final metrics only
        key = f"{setup}/movies_to_products/cross_domain/accuracy"
        assert tb[key][0][1] == pytest.approx(rows[setup]["cross_domain"]["accuracy"]["mean"])
    assert "tfidf+mlp/movies_to_products/seed0/train/loss" in tb
    assert [s for s, _ in tb["tfidf+mlp/products_to_products/seed0/epoch/train_loss"]] == [1, 2]  # the oracle

    curve = {
        "name": "cv", "output_dir": str(tmp_path / "runs"), "cache_dir": None, "seeds": [0], "target": products,
        "budgets": [8, "all"], "baseline": "tfidf", "tracking": track,
        "setups": {"tfidf": {"encoder": "tfidf", "strategy": {"name": "frozen", "head": "logreg"}}},
    }
    cres = run_curve(curve)
    tb = _scalars(_tensorboard_run(tmp_path / "tb", "textransfer", "cv"))
    mean = {int(b): s["mean"] for b, s in cres.metrics["setups"]["tfidf"]["curve"].items()}
    assert dict(tb["tfidf/accuracy_mean"]) == pytest.approx(mean)  # the curve: accuracy against budget
