"""The plot of a layer-transfer run: target accuracy against the number of kept layer groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textransfer.evaluation.plots import _legend_outside, _plt


def layer_curves(
    results: dict[str, dict[int, dict[str, float]]],
    path: Path,
    title: str,
    groups: list[str],
    reference: dict[str, Any] | None = None,
) -> None:
    """Accuracy against k (bottom layer groups transferred) for AnB, AnB+, BnB, BnB+.

    Args:
        results: ``{variant: {k: {"mean", "std"}}}``.
        path: the PNG to write.
        title: the figure title.
        groups: layer group names bottom -> top (k = i keeps ``groups[:i]``).
        reference: optional ``{"label": ..., "mean": ...}`` drawn as a horizontal line (base B).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    styles = {"AnB": ("tab:red", "o", "-"), "AnB+": ("tab:red", "s", "--"),
              "BnB": ("tab:blue", "o", "-"), "BnB+": ("tab:blue", "s", "--")}  # fmt: skip
    for variant, pts in results.items():
        if not pts:
            continue
        ks = sorted(pts)
        color, marker, ls = styles.get(variant, (None, "o", "-"))
        ax.errorbar(
            ks,
            [pts[k]["mean"] for k in ks],
            yerr=[pts[k]["std"] for k in ks],
            color=color,
            marker=marker,
            ls=ls,
            capsize=3,
            label=variant,
        )
    if reference is not None:
        ax.axhline(reference["mean"], color="grey", ls=":", label=reference["label"])
    n = len(groups)
    ax.set_xticks(
        range(n + 1), [f"{k}\n{groups[k - 1] if k else 'none'}" for k in range(n + 1)], fontsize=7
    )
    ax.set_xlabel("k: bottom layer groups kept from the base network (rest re-initialised)")
    ax.set_ylabel("target test accuracy")
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
