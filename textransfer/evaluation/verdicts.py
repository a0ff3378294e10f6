"""Verdicts of a cross-domain report, as plain functions on numbers: negative transfer, the worth
of a transferred model in target labels, and which setup to use when the target has no labels.

- **Negative transfer** (Wang et al., CVPR 2019, "Characterizing and Avoiding Negative
  Transfer"): transferring does worse than not transferring *at the same target-label budget*.
  A model trained on the source alone uses 0 target labels, so it is compared with the target's
  majority class (chance is reported beside it); an adaptation method is compared with its
  source-only twin (same encoder and head), through the adaptation gain and its paired 95% CI.
  An oracle trained on all target labels being better is the transfer gap, not negative transfer.
- **Worth in target labels**: the number of labeled target examples a target-only model needs to
  match the transferred one, read off the target-only learning curve (interpolated on a log
  budget axis between the two budgets around the crossing).
- **Recommendation**: the setup with the highest label-free estimate of target accuracy (ties:
  the higher source-validation accuracy); with target labels, its regret against the best row.
  With ``rule="lower"`` the setup whose *most pessimistic* estimate (the smallest of several
  estimators, ``lower``) is highest: a setup whose estimators disagree is trusted less.

Example:
    >>> worth_in_labels({8: 0.55, 64: 0.70, 512: 0.80}, 0.75)["labels"]
    181
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

__all__ = [
    "majority_verdict",
    "paired_gain",
    "recommend",
    "twin_verdict",
    "worth_in_labels",
]


def _verdict(difference: float, ci: Sequence[float] | None) -> dict[str, Any]:
    """``flag`` only when the whole 95% CI of ``difference`` lies below 0."""
    worse = difference < 0
    flag = bool(worse and ci is not None and ci[1] < 0)
    if flag:
        word = "yes"
    elif worse:
        word = "not significant" if ci is not None else "worse, no CI"
    else:
        word = "no"
    return {
        "difference": float(difference),
        "ci95": None if ci is None else [float(ci[0]), float(ci[1])],
        "worse": bool(worse),
        "flag": flag,
        "significant": flag,
        "verdict": word,
    }


def majority_verdict(
    accuracy: float, accuracy_ci: Sequence[float] | None, majority: float, num_classes: int
) -> dict[str, Any]:
    """Negative transfer of a source-only model (0 target labels): below the majority class?

    Args:
        accuracy: cross-domain accuracy (seed mean).
        accuracy_ci: its 95% CI, or None (no bootstrap).
        majority: accuracy of always predicting the target's majority class.
        num_classes: classes, for the chance level ``1 / k``.

    Returns:
        ``{"against": "majority class", "label_budget": 0, "baseline", "chance", "difference"
        (accuracy - majority), "ci95" (of the difference), "worse", "flag" (CI entirely below
        0), "significant" (= flag), "verdict": "yes" | "no" | "not significant" | "worse, no CI"}``.
    """
    ci = None if accuracy_ci is None else [accuracy_ci[0] - majority, accuracy_ci[1] - majority]
    return {
        "against": "majority class",
        "label_budget": 0,
        "baseline": float(majority),
        "chance": 1.0 / num_classes,
        **_verdict(accuracy - majority, ci),
    }


def twin_verdict(gain: float, gain_ci: Sequence[float] | None, twin: str) -> dict[str, Any]:
    """Negative transfer of an adaptation method: worse than its source-only twin?

    Args:
        gain: adaptation gain, accuracy - twin accuracy (same target rows, same seeds).
        gain_ci: its paired 95% CI, or None.
        twin: the twin setup's name.

    Returns:
        As :func:`majority_verdict`, with ``"against": "source-only twin"`` and ``"twin"``.
    """
    return {
        "against": "source-only twin",
        "twin": twin,
        "label_budget": 0,
        **_verdict(gain, gain_ci),
    }


def paired_gain(
    groups: Sequence[tuple[Any, Any, Any]],
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy of A minus accuracy of B on the same rows, averaged over seeds, with a paired
    percentile-bootstrap CI (each resample draws every seed's rows once, for both models).

    Args:
        groups: one ``(y_true (n,), pred_a (n,), pred_b (n,))`` int triple per seed.
        n_boot: resamples (0: no interval).
        confidence: interval mass.
        seed: seeds the resampling.

    Returns:
        ``{"gain", "ci95": [low, high] or None, "n_seeds"}``.
    """
    if not groups or any(len(y) == 0 for y, _, _ in groups):
        raise ValueError("paired_gain needs at least one non-empty (y_true, pred_a, pred_b) group")
    diffs = []
    for y, a, b in groups:
        y, a, b = (np.asarray(v) for v in (y, a, b))
        if not (y.shape == a.shape == b.shape):
            raise ValueError(
                f"paired_gain: y_true, pred_a and pred_b must have one shape, got {y.shape}, {a.shape}, {b.shape}"
            )
        diffs.append((a == y).astype(np.float64) - (b == y))
    gain = float(np.mean([d.mean() for d in diffs]))
    if not n_boot:
        return {"gain": gain, "ci95": None, "n_seeds": len(groups)}
    rng = np.random.default_rng(seed)
    stats = np.zeros(n_boot)
    for d in diffs:
        stats += d[rng.integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
    stats /= len(diffs)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return {
        "gain": gain,
        "ci95": [float(min(low, gain)), float(max(high, gain))],
        "n_seeds": len(groups),
    }


def worth_in_labels(
    curve: Mapping[int, float], accuracy: float, pool_size: int | None = None
) -> dict[str, Any]:
    """Target labels a target-only model needs to reach ``accuracy`` (first crossing of its curve).

    Args:
        curve: ``{budget: mean accuracy}`` of the target-only model (budgets > 0).
        accuracy: the transferred model's accuracy on the same target test rows.
        pool_size: the largest budget's row count, to say ``"> all (2388)"``.

    Returns:
        ``{"labels": interpolated count or None, "bound": "=" | "<" | ">", "budget": the budget
        of a bound, "between": [b1, b2] around the crossing, "text"}``: ``"≈ 181"``, ``"< 8"``
        (already matched at the smallest budget) or ``"> all (2388)"`` (never reached).
    """
    pts = sorted((int(b), float(a)) for b, a in curve.items() if b > 0)
    if not pts:
        return {"labels": None, "bound": None, "text": "n/a", "missing": "no target-only curve"}
    if pts[0][1] >= accuracy:
        b = pts[0][0]
        return {"labels": None, "bound": "<", "budget": b, "text": f"< {b}"}
    for (b1, a1), (b2, a2) in zip(pts, pts[1:], strict=False):
        if a1 < accuracy <= a2:
            x = math.log(b1) + (accuracy - a1) / (a2 - a1) * (math.log(b2) - math.log(b1))
            labels = int(round(math.exp(x)))
            return {"labels": labels, "bound": "=", "between": [b1, b2], "text": f"≈ {labels}"}
    last = pts[-1][0]
    where = f"all ({last})" if pool_size is None or last == pool_size else str(last)
    return {"labels": None, "bound": ">", "budget": last, "text": f"> {where}"}


def recommend(
    candidates: Sequence[Mapping[str, Any]], rule: Literal["estimate", "lower"] = "estimate"
) -> dict[str, Any]:
    """The setup to use on an unlabeled target, chosen from label-free signals only.

    Args:
        candidates: ``{"setup", "estimate", "source_val_accuracy", "accuracy"}`` per setup,
            plus ``"lower"`` (the smallest of several label-free estimates) for
            ``rule="lower"``; ``estimate`` None (no estimate) is skipped; ``accuracy`` (true
            target accuracy) may be None and is never used to choose.
        rule: ``"estimate"``: the highest ``estimate``; ``"lower"``: the highest ``lower``
            (then ``estimate``), i.e. the estimate minus the estimators' disagreement.

    Returns:
        ``{"setup", "estimate", "source_val_accuracy", "accuracy", "candidates", "rule"
        (+ "lower"), "best_setup", "best_accuracy", "regret"}`` (the last three when the pick has a true accuracy; the best
        row is the best of all candidates, estimated or not), or ``{"missing": reason}``.
    """
    if rule not in ("estimate", "lower"):
        raise ValueError(f"unknown recommendation rule {rule!r}: use 'estimate' or 'lower'")
    usable = [c for c in candidates if c.get("estimate") is not None]
    if not usable:
        return {"missing": "no setup has a label-free estimate for this pair"}
    if rule == "lower" and any(c.get("lower") is None for c in usable):
        raise ValueError("rule='lower' needs a 'lower' estimate for every candidate with an estimate")

    def key(c: Mapping[str, Any]) -> tuple[float, ...]:
        # Rounded so that estimates equal up to float noise tie and go to source-validation accuracy.
        first = (round(float(c["lower"]), 9),) if rule == "lower" else ()
        return (*first, round(float(c["estimate"]), 9), float(c.get("source_val_accuracy") or 0.0))

    pick = max(usable, key=key)
    out = {k: pick.get(k) for k in ("setup", "estimate", "source_val_accuracy", "accuracy")}
    out["candidates"], out["rule"] = len(usable), rule
    if rule == "lower":
        out["lower"] = pick["lower"]
    scored = [c for c in candidates if c.get("accuracy") is not None]
    if pick.get("accuracy") is not None:  # the best row may be one without an estimate
        best = max(scored, key=lambda c: float(c["accuracy"]))
        out.update(
            best_setup=best["setup"],
            best_accuracy=float(best["accuracy"]),
            regret=float(best["accuracy"]) - float(pick["accuracy"]),
        )
    return out
