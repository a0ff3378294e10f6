"""Cross-domain report at scale: a compact summary table, an accuracy figure readable at 30 rows,
row-normalised confusion matrices with counts and readable text, reliability bins with counts,
and figures grouped per setup in report.md."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from textransfer.evaluation import plots
from textransfer.evaluation.scoring import pool_seeds, score_predictions
from textransfer.experiments.crossdomain import plots as crossdomain_plots
from textransfer.experiments.crossdomain.report import more_table, summary_table, write_report


def _part(rng: np.random.Generator, acc: float, n: int = 60, seeds: int = 2) -> dict[str, Any]:
    scores = []
    for _ in range(seeds):
        y = rng.integers(0, 2, n)
        pred = np.where(rng.random(n) < acc, y, 1 - y)
        conf = rng.uniform(0.5, 1.0, n)
        proba = np.empty((n, 2))
        proba[np.arange(n), pred] = conf
        proba[np.arange(n), 1 - pred] = 1 - conf
        scores.append(score_predictions(y, proba, ["negative", "positive"], n_boot=20))
    return pool_seeds(scores, ["negative", "positive"], n_boot=20)


def _rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row = {
            "setup": f"enc{i % 6}+strat{i // 6}", "source": "movies", "target": "products", "same_domain": False,
            "strategy": "frozen", "seeds": [0, 1], "train_rows": [60, 60], "fit_seconds": {"mean": 0.1, "std": 0.0},
            "in_domain": _part(rng, 0.8), "cross_domain": _part(rng, 0.7), "oracle": _part(rng, 0.85),
            "a_distance": {"mean": 1.2, "std": 0.1}, "source_only": None,
        }
        row["transfer_gap"] = row["oracle"]["accuracy"]["mean"] - row["cross_domain"]["accuracy"]["mean"]
        row["transfer_loss"] = row["in_domain"]["accuracy"]["mean"] - row["cross_domain"]["accuracy"]["mean"]
        rows.append(row)
    return rows


def _columns(line: str) -> int:
    return len(line.strip().strip("|").split("|"))


def test_summary_is_compact_and_the_rest_is_below() -> None:
    rows = _rows(3)
    summary, more = summary_table(rows), more_table(rows)
    assert _columns(summary[0]) == 8 and all(_columns(line) == 8 for line in summary)
    assert len(summary) == 2 + 3
    assert "gap" in summary[0] and "ECE tgt" in summary[0] and "A-dist" not in summary[0]
    assert "A-dist" in more[0] and "F1 tgt" in more[0] and "loss" in more[0]


def test_accuracy_figure_grows_with_rows_at_a_fixed_width_and_zooms_in() -> None:
    small, big = crossdomain_plots.accuracy_figure(_rows(3)), crossdomain_plots.accuracy_figure(_rows(30))
    try:
        (w3, h3), (w30, h30) = small.get_size_inches(), big.get_size_inches()
        assert w3 == w30 == crossdomain_plots.FIG_WIDTH
        assert h30 > 3 * h3 and h30 / 30 >= 0.4  # at least 0.4 inch for each row's band
        ax = big.axes[0]
        assert len(ax.get_yticklabels()) == 30
        rows = _rows(30)
        means = [r[k]["accuracy"]["mean"] for r in rows for k in ("in_domain", "cross_domain", "oracle")]
        lows = [r[k]["accuracy"]["ci95"][0] for r in rows for k in ("in_domain", "cross_domain", "oracle")]
        majority = [r["cross_domain"]["majority_baseline"] for r in rows]
        x0, x1 = ax.get_xlim()
        assert 0.0 < x0 <= min(lows + majority) and min(lows + majority) - x0 < 0.1
        assert x1 >= max(means)
        assert x1 - x0 < 0.7  # a 1-point difference spans more than 1/70 of the axis
        labels = [c.get_label() for c in ax.collections]
        assert "majority class (target test)" in labels
    finally:
        plots._plt().close("all")


def test_confusion_cells_are_row_normalised_with_counts_and_readable_colours() -> None:
    cm = [[412, 85], [10, 490]]
    assert plots.row_normalised(cm) == pytest.approx(np.array([[412 / 497, 85 / 497], [10 / 500, 490 / 500]]))
    assert plots.row_normalised([[0, 0], [1, 3]]).tolist() == [[0.0, 0.0], [0.25, 0.75]]
    fig = plots.confusion_figure([("target test", cm, ["negative", "positive"])], "demo", n_seeds=3)
    try:
        texts = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
        assert set(texts) == {"0.83\n(412)", "0.17\n(85)", "0.02\n(10)", "0.98\n(490)"}
        assert texts["0.98\n(490)"] == "white" and texts["0.83\n(412)"] == "white"  # dark blue cells
        assert texts["0.02\n(10)"] == "black" and texts["0.17\n(85)"] == "black"  # light cells
        assert "counts summed over 3 seeds" in fig._suptitle.get_text()
    finally:
        plots._plt().close("all")
    assert plots.text_colour((0, 0, 0)) == "white" and plots.text_colour((1, 1, 1)) == "black"
    assert plots.text_colour((1.0, 1.0, 0.0)) == "black"  # yellow is light although one channel is 0


def test_reliability_diagram_shows_bin_counts() -> None:
    from textransfer.evaluation.calibration import reliability_bins

    proba = np.array([[0.95, 0.05]] * 7 + [[0.6, 0.4]] * 3)
    bins = reliability_bins(proba, np.array([0] * 8 + [1] * 2), n_bins=5)
    fig = plots.reliability_figure([("target test", bins)], "demo")
    try:
        hist = fig.axes[1]
        heights = [round(p.get_height()) for p in hist.patches]
        assert heights == bins["count"] == [0, 0, 3, 0, 7]
        assert sorted(t.get_text() for t in hist.texts) == ["3", "7"]
    finally:
        plots._plt().close("all")


def test_report_groups_figures_per_setup(tmp_path: Path) -> None:
    rows = _rows(2)
    rows[1]["setup"] = "other+frozen"
    metrics = {
        "name": "demo", "seeds": [0, 1], "rows": rows, "definitions": {"gap": "oracle - cross"},
        "domains": {"movies": {"source": "movies.csv", "rows": 60, "labels": {"negative": 30, "positive": 30}}},
    }
    config = SimpleNamespace(evaluation=SimpleNamespace(plots=True, oracle=True), test_size=0.2)
    write_report(tmp_path, config, metrics, {})
    report = (tmp_path / "report.md").read_text()
    figures = report[report.index("## Figures"):report.index("## Details per setup")]
    assert "plots/accuracy.png" in figures and "confusion_" not in figures
    sections = report.split("### ")[1:]
    assert len(sections) == 2
    for row, section in zip(rows, sections, strict=True):
        cm, rel = crossdomain_plots.row_figure_names(row)
        assert section.startswith(f"`{row['setup']}`")
        assert f"(plots/{cm})" in section and f"(plots/{rel})" in section
        assert section.index(f"(plots/{cm})") < section.index("| class |")  # figures above the tables
        assert "Confusion matrix summed over 2 seeds" in section
        assert (tmp_path / "plots" / cm).is_file() and (tmp_path / "plots" / rel).is_file()
