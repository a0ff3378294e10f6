"""The figures of a cross-domain report (``plots/*.png``), built on :mod:`textransfer.evaluation.plots`.

They are:

- :func:`accuracy_figure`: horizontal bars, one band per row, a height that grows with the rows
  and a fixed width, an x range that starts just below the smallest value (so 1-5 point
  differences show), and the majority-class accuracy of each row's target as a dotted mark;
- per row, confusion matrices and a reliability diagram (:func:`confusion_and_reliability`);
- the proxy A-distance against the transfer gap, label-free estimates against true accuracy, and
  each target's worth-in-labels curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textransfer.evaluation.plots import (
    _legend_outside,
    _plt,
    _slug,
    confusion_figure,
    reliability_figure,
    save_figure,
)

FIG_WIDTH = 8.0  # inches; the accuracy figure keeps this width whatever the row count
ROW_HEIGHT = 0.42  # inches per row of the accuracy figure


# -- accuracy bars -----------------------------------------------------------------------------

_PARTS = (
    ("in_domain", "in-domain (source test)", "tab:blue"),
    ("cross_domain", "cross-domain (target test)", "tab:orange"),
    ("oracle", "target oracle", "tab:green"),
)


def _mean_ci(part: dict[str, Any] | None) -> tuple[float, float, float] | None:
    if not part or "accuracy" not in part:
        return None
    m = part["accuracy"]
    low, high = m.get("ci95", [m["mean"], m["mean"]])
    return m["mean"], low, high


def accuracy_range(values: Sequence[float], majorities: Sequence[float]) -> tuple[float, float]:
    """The x range of the accuracy figure: from a little below the smallest value or majority
    line (not 0, so that 1-5 point differences are visible) to a little above the largest."""
    pts = [v for v in (*values, *majorities) if v is not None and np.isfinite(v)]
    if not pts:
        return 0.0, 1.0
    lo, hi = min(pts), max(pts)
    pad = max(0.02, 0.08 * (hi - lo))
    low = max(0.0, np.floor((lo - pad) * 50) / 50)  # a round tick (multiple of 0.02) below
    high = min(1.0, hi + pad)
    if high - low < 0.05:  # all values (nearly) equal: still a readable range
        high = min(1.0, low + 0.05)
        low = min(low, high - 0.05)
    return float(low), float(high)


def accuracy_figure(rows: list[dict[str, Any]]) -> Any:
    """Horizontal bars of in-domain, cross-domain and oracle accuracy per row (95% CI whiskers).

    The height grows with the number of rows, the width is fixed, the x axis starts just below
    the smallest value, and each row's target majority-class accuracy is a dotted mark.
    """
    plt = _plt()
    parts = [p for p in _PARTS if any(_mean_ci(r.get(p[0])) for r in rows)]
    n, k = len(rows), max(1, len(parts))
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 1.6 + ROW_HEIGHT * n * max(1.0, k / 2)))
    height = 0.8 / k
    values, majorities = [], []
    for j, (key, name, colour) in enumerate(parts):
        ys: list[float] = []
        means: list[float] = []
        errs: list[list[float]] = [[], []]
        for i, r in enumerate(rows):
            mc = _mean_ci(r.get(key))
            if mc is None:
                continue
            mean, low, high = mc
            ys.append(i - 0.4 + height * (j + 0.5))
            means.append(mean)
            errs[0].append(max(0.0, mean - low))
            errs[1].append(max(0.0, high - mean))
            values += [mean, low, high]
        ax.barh(ys, means, height * 0.9, xerr=errs, color=colour, label=name,
                error_kw={"capsize": 2, "lw": 0.8})
        for y, m, up in zip(ys, means, errs[1], strict=True):  # the value right of the CI whisker
            ax.text(m + up, y, f" {m:.3f}", va="center", ha="left", fontsize=6, color="0.15")
    labelled = False
    for i, r in enumerate(rows):
        # The majority class of the target test set (none for a target without labels).
        maj = (r.get("cross_domain") or {}).get("majority_baseline")
        if maj is None:
            continue
        majorities.append(maj)
        ax.vlines(maj, i - 0.45, i + 0.45, colors="black", linestyles=":", lw=1.2,
                  label=None if labelled else "majority class (target test)")
        labelled = True
    low, high = accuracy_range(values, majorities)
    ax.set_xlim(low, high + 0.06 * (high - low))  # room for the value labels
    ax.set_yticks(range(n), [f"{r['setup']}\n{r['source']}→{r['target']}" for r in rows], fontsize=7)
    ax.set_ylim(n - 0.5, -0.5)  # first row on top
    ax.set_xlabel(f"accuracy (axis starts at {low:.2f})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(parts) + 1, frameon=False)
    ax.set_title("Accuracy with 95% bootstrap CI", fontsize=9, pad=22)
    fig.tight_layout()
    return fig


def accuracy_bars(rows: list[dict[str, Any]], path: Path) -> None:
    """Writes :func:`accuracy_figure` of ``rows`` to ``path``."""
    save_figure(accuracy_figure(rows), path)


# -- confusion matrices --------------------------------------------------------------------------


def adistance_vs_gap(rows: list[dict[str, Any]], path: Path) -> bool:
    """Scatter of proxy A-distance (x) against transfer gap (y), one point per row."""
    pts = [r for r in rows if r.get("a_distance") and r.get("transfer_gap") is not None]
    if not pts:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    markers = "osD^v<>Px*"
    for i, r in enumerate(pts):  # a legend, not annotations: setups of one encoder share an x
        ax.scatter(r["a_distance"]["mean"], r["transfer_gap"], marker=markers[i % len(markers)], s=50,
                   label=f"{r['setup']} {r['source']}→{r['target']}")
    _legend_outside(ax, fontsize=7)
    ax.set_xlabel("proxy A-distance (frozen features)")
    ax.set_ylabel("transfer gap (oracle - cross-domain acc)")
    ax.axhline(0, color="grey", lw=0.5)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def estimate_vs_true(rows: list[dict[str, Any]], path: Path) -> bool:
    """Label-free estimate (y) against true target accuracy (x), one point per cross-domain row
    and estimator, with the y = x line; False (nothing written) when no row has both."""
    pts = [r for r in rows if not r["same_domain"] and "true_accuracy" in (r.get("label_free") or {})]
    if not pts:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5.0))
    # ATC-NE as large rings around the ATC-MC squares: with two classes the two coincide.
    styles = {"atc-ne": ("ATC-NE", {"marker": "o", "s": 90, "facecolors": "none", "edgecolors": "tab:blue", "lw": 1.5}),
              "atc-mc": ("ATC-MC", {"marker": "s", "s": 18, "color": "tab:orange"}),
              "doc": ("DoC", {"marker": "^", "s": 36, "color": "tab:green"}),
              "cot": ("COT", {"marker": "D", "s": 26, "color": "tab:red"})}
    values: list[float] = []
    for method, (name, style) in styles.items():
        if method not in pts[0]["label_free"]["estimates"]:  # metrics.json of an earlier version
            continue
        xs = [r["label_free"]["true_accuracy"] for r in pts]
        ys = [r["label_free"]["estimates"][method]["mean"] for r in pts]
        mae = float(np.mean(np.abs(np.subtract(ys, xs))))
        ax.scatter(xs, ys, label=f"{name} (MAE {mae:.3f})", **style)
        values += xs + ys
    low, high = max(0.0, min(values) - 0.03), min(1.0, max(values) + 0.03)
    ax.plot([low, high], [low, high], "--", color="grey", lw=1, label="estimate = true")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("true target accuracy (test split)")
    ax.set_ylabel("estimated without target labels")
    ax.set_title(f"Label-free estimates, {len(pts)} cross-domain rows", fontsize=9)
    _legend_outside(ax)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def worth_figure(rows: list[dict[str, Any]], target: str) -> Any:
    """The target-only curves of one target (log budget axis) and each setup's cross-domain
    accuracy placed where it meets its curve (at the axis ends for "< smallest" / "> all")."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    mine = [r for r in rows if r["target"] == target and (r.get("worth_in_labels") or {}).get("curve")]
    colour: dict[str, Any] = {}  # each setup's point takes the colour of the curve it is read off
    for r in mine:
        w = r["worth_in_labels"]
        if w["yardstick"] in colour:
            continue
        budgets = sorted(int(b) for b in w["curve"])
        means = [w["curve"][str(b)]["mean"] for b in budgets]
        line = ax.plot(budgets, means, marker=".", lw=1.5, label=f"target-only: {w['yardstick']}")[0]
        colour[w["yardstick"]] = line.get_color()
    markers = "osD^v<>Px*"
    for i, r in enumerate(m for m in mine if "accuracy" in m["cross_domain"]):
        w = r["worth_in_labels"]
        budgets = sorted(int(b) for b in w["curve"])
        x = {"=": w.get("labels"), "<": budgets[0], ">": budgets[-1]}.get(w.get("bound"))
        if x is None:
            continue
        ax.scatter([x], [r["cross_domain"]["accuracy"]["mean"]], marker=markers[i % len(markers)], s=55,
                   color=colour[w["yardstick"]], edgecolors="black", linewidths=0.6, zorder=3,
                   label=f"{r['setup']} ({r['source']}): {w['text']}")
    ax.set_xscale("log")
    ax.set_xlabel(f"labeled {target} examples (log scale)")
    ax.set_ylabel(f"accuracy on the {target} test split")
    ax.set_title(f"Worth in {target} labels", fontsize=9)
    ax.grid(alpha=0.3)
    _legend_outside(ax, fontsize=7)
    fig.tight_layout()
    return fig


_ROW_PARTS = (("in_domain", "source test"), ("cross_domain", "target test"))


def row_figure_names(row: dict[str, Any]) -> tuple[str, str]:
    """File names of a cross-domain row's confusion and reliability figures."""
    stem = _slug(f"{row['setup']}_{row['source']}-{row['target']}")
    return f"confusion_{stem}.png", f"reliability_{stem}.png"


def confusion_and_reliability(row: dict[str, Any], cm_path: Path, rel_path: Path) -> None:
    """Confusion matrices (source test, target test) and reliability diagrams of one row."""
    parts = [(k, n) for k, n in _ROW_PARTS if "confusion_matrix" in row[k]]
    title = f"{row['setup']} {row['source']}→{row['target']}"
    panels = [
        (f"{name} (acc {row[key]['accuracy']['mean']:.3f})", row[key]["confusion_matrix"], row[key]["labels"])
        for key, name in parts
    ]
    n_seeds = max((int(row[key].get("n_seeds", 1)) for key, _ in parts), default=1)
    save_figure(confusion_figure(panels, title, n_seeds=n_seeds), cm_path)
    series = [(f"{name} (ECE {row[key]['ece']['mean']:.3f})", row[key]["reliability"]) for key, name in parts]
    if n_seeds > 1:
        title += f" (rows of {n_seeds} seeds)"
    save_figure(reliability_figure(series, f"Reliability: {title}"), rel_path)


def write_plots(directory: Path, metrics: dict[str, Any]) -> list[str]:
    """Writes every plot of ``metrics`` into ``directory``; returns the file paths."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = metrics["rows"]
    files = [directory / "accuracy.png"]
    accuracy_bars(rows, files[0])
    if adistance_vs_gap(rows, directory / "a_distance_vs_gap.png"):
        files.append(directory / "a_distance_vs_gap.png")
    if estimate_vs_true(rows, directory / "estimate_vs_true.png"):
        files.append(directory / "estimate_vs_true.png")
    for target in dict.fromkeys(r["target"] for r in rows if (r.get("worth_in_labels") or {}).get("curve")):
        path = directory / f"worth_in_labels_{_slug(target)}.png"
        save_figure(worth_figure(rows, target), path)
        files.append(path)
    for r in rows:
        cm, rel = (directory / name for name in row_figure_names(r))
        confusion_and_reliability(r, cm, rel)
        files += [cm, rel]
    return [str(f) for f in files]
