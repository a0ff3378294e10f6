"""The plot of a learning-curve run: target accuracy against the number of labeled target
examples (log budget axis, +-std bands; matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from textransfer.evaluation.plots import _legend_outside, _plt


def learning_curves(
    curves: dict[str, dict[int, dict[str, float]]],
    path: Path,
    title: str,
    pool_size: int,
    majority: float | None = None,
) -> None:
    """One mean line with a +-std band per setup; x: labeled target examples on a log scale
    (``symlog``, so a 0-label point sits at the left edge).

    Args:
        curves: ``{setup: {budget: {"mean", "std"}}}``.
        path: the PNG to write.
        title: the figure title.
        pool_size: the "all" budget, labelled as such on the axis.
        majority: majority-class accuracy, drawn as a dotted line (None: no line).
    """
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    budgets: set[int] = set()
    for name, pts in curves.items():
        if not pts:
            continue
        xs = sorted(pts)
        budgets |= set(xs)
        mean = np.array([pts[b]["mean"] for b in xs])
        std = np.array([pts[b]["std"] for b in xs])
        marker = "*" if xs == [0] else "o"
        line = ax.plot(xs, mean, marker=marker, ms=9 if marker == "*" else 4, label=name)[0]
        ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.15, lw=0)
    if majority is not None:
        ax.axhline(majority, color="grey", ls=":", lw=1, label=f"majority class ({majority:.3f})")
    ax.set_xscale("symlog", linthresh=1)
    ticks = sorted(budgets)
    if ticks:  # symlog's default margins leave an empty stretch left of the first budget
        ax.set_xlim(ticks[0] - 0.3 if ticks[0] < 1 else ticks[0] / 1.3, ticks[-1] * 1.3)
    ax.set_xticks(ticks, [f"all\n({b})" if b == pool_size else str(b) for b in ticks], fontsize=8)
    ax.set_xlabel("labeled target examples (log scale)")
    ax.set_ylabel("target test accuracy")
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
