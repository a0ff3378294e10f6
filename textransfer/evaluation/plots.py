"""PNG plots of a cross-domain run (matplotlib, Agg backend, imported only when plotting)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


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


def _err(part: dict[str, Any]) -> tuple[float, float]:
    m = part["accuracy"]
    low, high = m.get("ci95", [m["mean"], m["mean"]])
    return m["mean"] - low, high - m["mean"]


def accuracy_bars(rows: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars: in-domain vs cross-domain (vs oracle) accuracy per row, 95% CI error bars."""
    import numpy as np

    plt = _plt()
    labels = [f"{r['setup']}\n{r['source']}→{r['target']}" for r in rows]
    parts = [("in_domain", "in-domain (source test)"), ("cross_domain", "cross-domain (target test)"), ("oracle", "target oracle")]
    x = np.arange(len(rows))
    width = 0.8 / len(parts)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 4.5))
    for i, (key, name) in enumerate(parts):
        vals, errs = [], [[], []]
        for r in rows:
            part = r.get(key)
            ok = part is not None and "accuracy" in part
            vals.append(part["accuracy"]["mean"] if ok else np.nan)
            lo, hi = _err(part) if ok else (0.0, 0.0)
            errs[0].append(lo)
            errs[1].append(hi)
        ax.bar(x + (i - 1) * width, vals, width, yerr=errs, capsize=3, label=name)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.15)  # headroom for the legend above the bars
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax.set_title("In-domain vs cross-domain accuracy (95% bootstrap CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def confusion_and_reliability(row: dict[str, Any], cm_path: Path, rel_path: Path) -> None:
    """Confusion matrices (source test, target test) and reliability diagrams of one row."""
    import numpy as np

    plt = _plt()
    parts = [(k, n) for k, n in (("in_domain", "source test"), ("cross_domain", "target test")) if "confusion_matrix" in row[k]]
    fig, axes = plt.subplots(1, len(parts), figsize=(4 * len(parts), 3.6), squeeze=False)
    for ax, (key, name) in zip(axes[0], parts, strict=True):
        cm = np.asarray(row[key]["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="black")
        labels = row[key]["labels"]
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name} ({row[key]['accuracy']['mean']:.3f})", fontsize=9)
    fig.suptitle(f"{row['setup']} {row['source']}→{row['target']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(cm_path, dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    for key, name in parts:
        rel = row[key]["reliability"]
        pts = [(c, a) for c, a in zip(rel["confidence"], rel["accuracy"], strict=True) if c is not None]
        ax.plot(*zip(*pts, strict=True), marker="o", label=f"{name} (ECE {row[key]['ece']['mean']:.3f})")
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title(f"Reliability: {row['setup']} {row['source']}→{row['target']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(rel_path, dpi=90)
    plt.close(fig)


def write_plots(directory: Path, metrics: dict[str, Any]) -> list[str]:
    """Writes every plot of ``metrics`` into ``directory``; returns the file paths."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = metrics["rows"]
    files = [directory / "accuracy.png"]
    accuracy_bars(rows, files[0])
    if adistance_vs_gap(rows, directory / "a_distance_vs_gap.png"):
        files.append(directory / "a_distance_vs_gap.png")
    for r in rows:
        stem = _slug(f"{r['setup']}_{r['source']}-{r['target']}")
        cm, rel = directory / f"confusion_{stem}.png", directory / f"reliability_{stem}.png"
        confusion_and_reliability(r, cm, rel)
        files += [cm, rel]
    return [str(f) for f in files]
