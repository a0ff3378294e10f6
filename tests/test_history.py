"""Training histories (issue 15, item 3): every training run records loss, validation metric,
learning rate and speed per epoch; runs write history.json and plots/training.png next to the
model; `run` reports carry CIs, ECE and figures; a finished run deletes its checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import textransfer
from tests.fixtures.data import write_labeled_csv
from textransfer.experiments.train.run import run
from textransfer.training import TrainingArgs

PNG = b"\x89PNG\r\n\x1a\n"


def _tiny_loaders(n: int = 40, seed: int = 0):
    import torch
    from torch.utils.data import DataLoader

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    rows = [{"features": x[i], "labels": y[i]} for i in range(n)]

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}

    return (DataLoader(rows[:32], batch_size=8, shuffle=True, collate_fn=collate, generator=g),
            DataLoader(rows[32:], batch_size=8, collate_fn=collate))


def _head():
    head = textransfer.create_head("linear")
    head.build(4, 2)
    return head.module


def test_every_epoch_records_loss_metric_lr_and_speed():
    from textransfer import tracking
    from textransfer.training.loop import train

    train_loader, val_loader = _tiny_loaders()
    args = TrainingArgs(epochs=3, batch_size=8, lr=0.1, metric="macro_f1", patience=None, warmup_ratio=0.0)
    with tracking.recording(label="tiny") as record:
        result = train(_head(), train_loader, val_loader, args)
    rows = result.history
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert {"train_loss", "lr", "val_loss", "val_accuracy", "val_macro_f1"} <= set(r)
    # Linear decay to 0 over 12 steps: the lr after epoch e is 0.1 * (1 - 4e / 12).
    np.testing.assert_allclose([r["lr"] for r in rows], [0.1 * (1 - 4 * e / 12) for e in (1, 2, 3)], atol=1e-9)
    assert [t["epoch"] for t in result.timing] == [1, 2, 3]
    assert all(t["samples_per_s"] > 0 and t["seconds"] > 0 for t in result.timing)
    assert "samples_per_s" not in rows[0]  # timing is kept apart: histories stay reproducible
    # The active record got the whole run, timing merged into its rows.
    (fit,) = record.fits
    assert fit["label"] == "tiny" and fit["metric"] == "macro_f1" and fit["best_epoch"] == result.best_epoch
    assert [e["epoch"] for e in fit["epochs"]] == [1, 2, 3] and fit["epochs"][2]["samples_per_s"] > 0
    assert fit["epochs"][1]["val_macro_f1"] == rows[1]["val_macro_f1"]


def _ft_config(tmp_path: Path, bert: Path, data, **training: Any) -> dict[str, Any]:
    return {
        "name": "ft", "output_dir": str(tmp_path / "runs"), "cache_dir": None,
        "data": {"train": write_labeled_csv(tmp_path / "m.csv", data), "test_size": 0.25, "val_size": 0.2},
        "encoder": {"name": "transformer", "model": str(bert), "max_length": 16},
        "strategy": {"name": "finetune", "head": "linear"},
        "training": {"epochs": 2, "lr": 2e-3, "batch_size": 8, "patience": None, **training},
    }


def test_run_writes_history_plots_and_a_report_with_intervals(tiny_bert_dir, toy_movies, tmp_path):
    result = run(_ft_config(tmp_path, tiny_bert_dir, toy_movies))
    d = result.run_dir
    history = json.loads((d / "history.json").read_text())
    (fit,) = history["fits"]
    assert [e["epoch"] for e in fit["epochs"]] == [1, 2] and fit["metric"] == "accuracy"
    for e in fit["epochs"]:
        assert {"train_loss", "val_loss", "val_accuracy", "lr", "seconds", "samples_per_s"} <= set(e)
    for png in ("training.png", "confusion.png", "reliability.png"):
        assert (d / "plots" / png).read_bytes().startswith(PNG), png
    test = result.metrics["ft"]["eval"]["test"]
    low, high = test["accuracy_ci95"]
    assert low <= test["accuracy"] <= high and 0 <= test["ece"] <= 1 and sum(test["reliability"]["count"]) == test["n"]
    assert result.metrics["ft"]["training"]["epochs"] == 2
    report = (d / "report.md").read_text()
    assert f"accuracy {test['accuracy']:.3f} [{low:.3f}, {high:.3f}]" in report and f"ECE {test['ece']:.3f}" in report
    for link in ("(plots/confusion.png)", "(plots/reliability.png)", "(plots/training.png)", "`history.json`"):
        assert link in report, link
    # A finished run deletes its checkpoints (the model is written); asked to, it keeps them.
    assert not (d / "checkpoints").exists()
    kept = run(_ft_config(tmp_path, tiny_bert_dir, toy_movies, keep_checkpoints_after_run=True))
    assert sorted(p.name for p in (kept.run_dir / "checkpoints").iterdir()) == ["epoch-2"]


def test_several_setups_keep_their_files_apart_and_frozen_logreg_has_no_history(toy_movies, tmp_path):
    cfg = {
        "name": "multi", "output_dir": str(tmp_path / "runs"), "cache_dir": None,
        "data": {"train": write_labeled_csv(tmp_path / "m.csv", toy_movies), "test_size": 0.25},
        "encoder": "tfidf", "training": {"epochs": 3},
        "setups": [{"name": "mlp", "strategy": {"name": "frozen", "head": "mlp"}},
                   {"name": "logreg", "strategy": {"name": "frozen", "head": "logreg"}}],
    }
    d = run(cfg).run_dir
    fits = json.loads((d / "mlp" / "history.json").read_text())["fits"]
    assert len(fits) == 1 and len(fits[0]["epochs"]) == 3
    assert (d / "mlp" / "plots" / "training.png").read_bytes().startswith(PNG)
    assert not (d / "logreg" / "history.json").exists()  # no training loop, no history
    assert (d / "logreg" / "plots" / "confusion.png").is_file() and not (d / "plots").exists()
    report = (d / "report.md").read_text()
    assert "(mlp/plots/training.png)" in report and "(logreg/plots/reliability.png)" in report


def test_crossdomain_and_curve_write_histories_under_models(toy_movies, toy_products, tmp_path):
    from textransfer.experiments.crossdomain.run import run_crossdomain
    from textransfer.experiments.curve.run import run_curve

    movies = write_labeled_csv(tmp_path / "m.csv", toy_movies)
    products = write_labeled_csv(tmp_path / "p.csv", toy_products)
    xd = {
        "name": "xd", "output_dir": str(tmp_path / "runs"), "cache_dir": None, "seeds": [0, 1],
        "domains": {"movies": movies, "products": products}, "sources": ["movies"], "targets": ["products"],
        "encoders": {"tfidf": {"name": "tfidf", "min_df": 1}},
        "strategies": {"mlp": {"name": "frozen", "head": "mlp"}, "logreg": {"name": "frozen", "head": "logreg"}},
        "training": {"epochs": 2},
        "evaluation": {"n_boot": 10, "label_budgets": ["all"], "a_distance_encoders": []},
    }
    d = run_crossdomain(xd).run_dir / "models" / "tfidf+mlp"
    source = json.loads((d / "movies_to_products" / "history.json").read_text())["fits"]
    assert [f["label"] for f in source] == ["seed 0", "seed 1"] and all(len(f["epochs"]) == 2 for f in source)
    oracle = json.loads((d / "products_to_products" / "history.json").read_text())["fits"]  # trained on the target
    assert len(oracle) == 2
    assert (d / "movies_to_products" / "plots" / "training.png").read_bytes().startswith(PNG)
    assert not (d.parent / "tfidf+logreg").exists()

    curve = {
        "name": "cv", "output_dir": str(tmp_path / "runs"), "cache_dir": None, "seeds": [0], "target": products,
        "budgets": [8, "all"], "baseline": "tfidf",
        "setups": {"tfidf": {"encoder": "tfidf", "strategy": {"name": "frozen", "head": "logreg"}, "transfer": False},
                   "mlp": {"encoder": "tfidf", "strategy": {"name": "frozen", "head": "mlp"}, "training": {"epochs": 2}}},
    }
    out = run_curve(curve).run_dir / "models"
    fits = json.loads((out / "mlp" / "history.json").read_text())["fits"]
    assert [f["label"] for f in fits] == ["seed 0, 8 labels", "seed 0, 38 labels"]
    assert (out / "mlp" / "plots" / "training.png").is_file() and not (out / "tfidf").exists()


def test_training_figure_handles_fits_with_and_without_validation():
    from textransfer.tracking import training_figure

    with_val = {"label": "a", "metric": "accuracy", "best_epoch": 2, "epochs": [
        {"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "val_accuracy": 0.6},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.5, "val_accuracy": 0.8}]}
    without = {"label": "b", "metric": "accuracy", "best_epoch": None, "epochs": [
        {"epoch": 1, "train_loss": 0.9}, {"epoch": 2, "train_loss": 0.8}]}
    fig = training_figure([with_val, without], "t")
    loss, metric = fig.axes[:2]
    assert len(loss.lines) == 3  # a: train + val, b: train
    assert [list(line.get_ydata()) for line in metric.lines][0] == [0.6, 0.8]
    assert metric.get_title().startswith("validation metric")
    lonely = training_figure([without])
    assert lonely.axes[1].get_title() == "no validation split"


def test_an_interrupted_run_keeps_its_checkpoints(tiny_bert_dir, toy_movies, tmp_path, monkeypatch):
    import functools

    import textransfer.training.loop as loop

    def stop(epoch: int, row: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train", functools.partial(loop.train, on_epoch_end=stop))
    with pytest.raises(KeyboardInterrupt):
        run(_ft_config(tmp_path, tiny_bert_dir, toy_movies))
    assert sorted(p.name for p in (tmp_path / "runs" / "ft" / "checkpoints").iterdir()) == ["epoch-1"]
