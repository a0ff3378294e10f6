"""The three benefits of transfer, read off learning curves (Torrey & Shavlik 2009, fig. 1).

A curve is accuracy against the number of labeled target examples. Against a no-transfer
baseline, transfer can give:

- a higher **start**: accuracy at the smallest budget both curves have;
- a higher **slope**, measured as the area under the curve over log budget, normalised by the
  log range (the mean accuracy along a log x axis), so faster learning shows as a larger area;
- a higher **asymptote**: accuracy at the largest budget both curves have (all labels).

A setup whose start, area or asymptote is below the baseline's shows **negative transfer** there.
Curves are ``{budget: [accuracy per seed]}``; everything here is plain numpy on those.

Example:
    >>> base = {8: [0.5], 100: [0.6], 1000: [0.7]}
    >>> tl = {8: [0.6], 100: [0.7], 1000: [0.72]}
    >>> b = transfer_benefits(tl, base)
    >>> round(b["start"]["gain"], 2), round(b["asymptote"]["gain"], 2), b["matches_baseline_at"]
    (0.1, 0.02, 100)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textransfer.evaluation.scoring import mean_std

__all__ = [
    "budget_label",
    "curve_stats",
    "format_stats",
    "log_area",
    "matching_budget",
    "transfer_benefits",
]

Curve = Mapping[int, Sequence[float]]


def curve_stats(curve: Curve) -> dict[int, dict[str, float]]:
    """``{budget: {"mean", "std", "n"}}`` over seeds, budgets ascending (empty budgets dropped)."""
    return {b: {**mean_std(v), "n": len(v)} for b, v in sorted(curve.items()) if len(v)}


def log_area(budgets: Sequence[int], values: Sequence[float]) -> float:
    """Area under ``values`` against ``log(budgets)``, divided by the log range.

    The trapezoid rule on a log x axis; the result is an accuracy (the curve's mean height on
    that axis). Budget 0 has no logarithm and is left out; one budget gives its own value.

    Raises:
        ValueError: no positive budget.
    """
    pts = sorted((b, v) for b, v in zip(budgets, values, strict=True) if b > 0)
    if not pts:
        raise ValueError("log_area needs at least one positive budget")
    if len(pts) == 1:
        return float(pts[0][1])
    x = np.log([b for b, _ in pts])
    y = np.asarray([v for _, v in pts], dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (x[-1] - x[0]))


def matching_budget(curve: Curve, target: float) -> int | None:
    """The smallest budget whose mean accuracy reaches ``target`` (None: never)."""
    for b, s in curve_stats(curve).items():
        if s["mean"] >= target - 1e-12:
            return b
    return None


def _part(
    budget: int, ours: dict[str, float], base: dict[str, float], base_budget: int | None = None
) -> dict[str, Any]:
    return {
        "budget": budget,
        "baseline_budget": budget if base_budget is None else base_budget,
        "setup": ours["mean"],
        "baseline": base["mean"],
        "gain": ours["mean"] - base["mean"],
    }


def transfer_benefits(curve: Curve, baseline: Curve) -> dict[str, Any]:
    """Start, slope (log-area) and asymptote of ``curve`` against ``baseline``.

    The start compares each curve's first point (a zero-shot or source-model point at budget 0
    against the baseline's smallest budget: transfer starting higher with fewer labels); the
    area and the asymptote use the budgets both curves have.

    Returns:
        ``{"budgets": common budgets, "start": {"budget", "baseline_budget", "setup",
        "baseline", "gain"}, "area": {"setup", "baseline", "gain", "budgets"}, "asymptote":
        {...}, "baseline_full": the baseline's accuracy at its largest budget,
        "matches_baseline_at": smallest budget of ``curve`` reaching ``baseline_full`` (or None),
        "negative_transfer": benefits with a negative gain, "losing_budgets": common budgets
        where the mean is below the baseline's}``; area and asymptote are absent without a
        common (positive) budget.
    """
    ours, base = curve_stats(curve), curve_stats(baseline)
    common = [b for b in ours if b in base]
    out: dict[str, Any] = {"budgets": common, "negative_transfer": [], "losing_budgets": []}
    if not ours or not base:
        return out
    first, base_first, full = min(ours), min(base), max(base)
    out["start"] = _part(first, ours[first], base[base_first], base_first)
    if common:
        out["asymptote"] = _part(common[-1], ours[common[-1]], base[common[-1]])
    positive = [b for b in common if b > 0]
    if positive:
        a_ours = log_area(positive, [ours[b]["mean"] for b in positive])
        a_base = log_area(positive, [base[b]["mean"] for b in positive])
        out["area"] = {
            "setup": a_ours,
            "baseline": a_base,
            "gain": a_ours - a_base,
            "budgets": positive,
        }
    out["baseline_full"] = {"budget": full, "accuracy": base[full]["mean"]}
    out["matches_baseline_at"] = matching_budget(curve, base[full]["mean"])
    out["negative_transfer"] = [
        k for k in ("start", "area", "asymptote") if k in out and out[k]["gain"] < 0
    ]
    out["losing_budgets"] = [b for b in common if ours[b]["mean"] < base[b]["mean"]]
    return out


def format_stats(stats: dict[str, Any] | None) -> str:
    """``"0.812 ± 0.010"`` (``"0.812"`` for one seed; ``"-"`` for no result) for a report cell."""
    if not stats:
        return "-"
    if stats.get("n", 1) > 1:
        return f"{stats['mean']:.3f} ± {stats['std']:.3f}"
    return f"{stats['mean']:.3f}"


def budget_label(budget: int, pool_size: int) -> str:
    """``"all (2388)"`` for the whole pool, else the number."""
    return f"all ({pool_size})" if budget == pool_size else str(budget)
