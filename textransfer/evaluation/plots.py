"""PNG plots of evaluations (matplotlib, Agg backend, imported only when plotting).

Figure builders return a matplotlib ``Figure`` (so tests and callers can inspect it);
:func:`save_figure` writes one atomically. The building blocks are shared by the cross-domain
report and ``textransfer evaluate``:

- :func:`accuracy_figure`: horizontal bars, one band per row, a height that grows with the rows
  and a fixed width, an x range that starts just below the smallest value (so 1-5 point
  differences show), and the majority-class accuracy of each row's target as a dotted mark;
- :func:`confusion_figure`: row-normalised confusion matrices (recall per true class) that still
  show the counts, with the text colour of each cell picked from the cell's luminance;
- :func:`reliability_figure`: reliability diagrams with the number of rows in every bin.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FIG_WIDTH = 8.0  # inches; the accuracy figure keeps this width whatever the row count
ROW_HEIGHT = 0.42  # inches per row of the accuracy figure
DPI = 90


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _legend_outside(ax: Any, fontsize: int = 8) -> None:
    """The legend to the right of the axes, where it never covers a line or a point
    (``fig.tight_layout()`` makes room for it)."""
    ax.legend(fontsize=fontsize, loc="center left", bbox_to_anchor=(1.02, 0.5))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def save_figure(fig: Any, path: str | Path, dpi: int = DPI) -> Path:
    """Writes ``fig`` as PNG to a temporary file beside ``path``, renames it, closes the figure.

    A crash mid-write leaves the previous file (or none), never a truncated PNG.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened by savefig itself, so the file gets the usual permissions (umask),
    # not mkstemp's owner-only 0600.
    tmp = str(path.parent / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        _plt().close(fig)
    return path


# -- colours -----------------------------------------------------------------------------------


def relative_luminance(rgb: Sequence[float]) -> float:
    """WCAG relative luminance of an sRGB colour with channels in [0, 1]."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(float(c)) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_colour(background: Sequence[float]) -> str:
    """``"black"`` or ``"white"``, whichever contrasts more with ``background`` (RGB(A) in [0, 1]).

    Black and white give the same WCAG contrast ratio at luminance sqrt(1.05 * 0.05) - 0.05.
    """
    return "white" if relative_luminance(background) < 0.179 else "black"


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
        ys, means, errs = [], [], [[], []]
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


def row_normalised(cm: Any) -> np.ndarray:
    """Each row of a confusion matrix divided by its sum (the recall of each true class);
    a class without rows stays 0."""
    cm = np.asarray(cm, dtype=np.float64)
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def draw_confusion(ax: Any, cm: Any, labels: Sequence[Any], title: str) -> None:
    """A row-normalised confusion matrix on ``ax``; each cell reads ``"0.83\\n(412)"``
    (share of the true class, count), in black or white after the cell's luminance."""
    counts = np.asarray(cm, dtype=np.int64)
    norm = row_normalised(counts)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    k = len(labels)
    size = 8 if k <= 4 else max(4, 8 - (k - 4) // 2)
    for (i, j), v in np.ndenumerate(norm):
        colour = text_colour(im.cmap(im.norm(v)))
        ax.text(j, i, f"{v:.2f}\n({counts[i, j]})", ha="center", va="center", color=colour, fontsize=size)
    names = [str(lab) for lab in labels]
    ax.set_xticks(range(k), names, fontsize=7, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)


def confusion_figure(
    panels: Sequence[tuple[str, Any, Sequence[Any]]], title: str = "", n_seeds: int = 1
) -> Any:
    """One row-normalised confusion matrix per panel ``(title, counts (k, k), labels)``.

    Args:
        panels: the matrices to draw side by side.
        title: the figure title.
        n_seeds: seeds whose counts were summed into each matrix (said in the title when > 1).
    """
    plt = _plt()
    k = max((len(p[2]) for p in panels), default=2)
    side = max(3.6, 0.55 * k + 1.6)
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels), side), squeeze=False)
    for ax, (name, cm, labels) in zip(axes[0], panels, strict=True):
        draw_confusion(ax, cm, labels, name)
    note = "rows: share of each true class; (count)"
    if n_seeds > 1:
        note += f"; counts summed over {n_seeds} seeds"
    fig.suptitle(f"{title}\n{note}" if title else note, fontsize=8)
    fig.tight_layout()
    return fig


# -- reliability diagrams ------------------------------------------------------------------------


def reliability_figure(series: Sequence[tuple[str, dict[str, Any]]], title: str = "") -> Any:
    """Reliability diagrams with bin counts: accuracy against mean confidence per bin (top), and
    the rows in each confidence bin as bars with the count written over them (bottom).

    Args:
        series: ``(name, bins)`` pairs; ``bins`` as from
            :func:`textransfer.evaluation.calibration.reliability_bins`.
        title: the figure title.
    """
    plt = _plt()
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(5.0, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    m = max(1, len(series))
    for s, (name, bins) in enumerate(series):
        pts = [(c, a) for c, a in zip(bins["confidence"], bins["accuracy"], strict=True) if c is not None]
        line = ax.plot(*zip(*pts, strict=True), marker="o", ms=4, label=name)[0] if pts else None
        edges = np.asarray(bins["edges"], dtype=np.float64)
        width = (edges[1:] - edges[:-1]) / m
        left = edges[:-1] + s * width
        counts = np.asarray(bins["count"], dtype=np.int64)
        colour = line.get_color() if line is not None else None
        hist.bar(left, counts, width * 0.95, align="edge", color=colour, alpha=0.8)
        for x, w, c in zip(left, width, counts, strict=True):
            if c:
                hist.text(x + w / 2, c, str(int(c)), ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or "Reliability", fontsize=9)
    hist.set_xlabel("confidence (top-class probability)")
    hist.set_ylabel("rows per bin", fontsize=8)
    top = max((max(b["count"]) for _, b in series if b["count"]), default=1)
    hist.set_ylim(0, top * 1.35 + 1)  # room for the count labels
    fig.tight_layout()
    return fig


# -- the cross-domain report -------------------------------------------------------------------


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
              "doc": ("DoC", {"marker": "^", "s": 36, "color": "tab:green"})}
    values: list[float] = []
    for method, (name, style) in styles.items():
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
