"""PNG plots of evaluations (matplotlib, Agg backend, imported only when plotting).

Figure builders return a matplotlib ``Figure`` (so tests and callers can inspect it);
:func:`save_figure` writes one atomically. The building blocks are shared by ``textransfer
evaluate``, the run reports and the figures of each experiment kind
(:mod:`textransfer.experiments`):

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


def row_normalised(cm: Any) -> np.ndarray:
    """Each row of a confusion matrix divided by its sum (the recall of each true class);
    a class without rows stays 0."""
    cm = np.asarray(cm, dtype=np.float64)
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def draw_confusion(ax: Any, cm: Any, labels: Sequence[Any], title: str) -> None:
    r"""A row-normalised confusion matrix on ``ax``; each cell reads ``"0.83\n(412)"``
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
