"""The trust parts of the cross-domain ``report.md``: label-free estimates beside the true
accuracy, the recommended setup and its regret, worth in target labels, negative-transfer cells.

Each function takes rows / metrics as :func:`textransfer.experiments.crossdomain.matrix.summarise` writes
them and returns markdown lines or a table cell; a row without a measure gets ``n/a`` and the
reason is listed under "What could not be measured", never a NaN.
"""

from __future__ import annotations

from typing import Any

from textransfer.evaluation.label_free import DEFAULT_METHOD

METHOD_NAMES = {"atc-ne": "ATC-NE", "atc-mc": "ATC-MC", "doc": "DoC", "ac": "AC", "average": "average", "cot": "COT",
                "cott": "COTT"}


def method_name(method: str) -> str:
    """``"ATC-NE"`` for ``"atc-ne"``."""
    return METHOD_NAMES.get(method, method)


def estimate_cell(row: dict[str, Any]) -> str:
    """``0.812 [err 0.013]``; ``0.812 (estimate only)`` without target labels; ``n/a`` without
    an estimate."""
    lf = row.get("label_free") or {}
    if "estimate" not in lf:
        return "n/a"
    text = f"{lf['estimate']:.3f}"
    if "abs_error" in lf:
        return text + f" [err {lf['abs_error'][lf['method']]:.3f}]"
    return text + " (estimate only)"


def worth_cell(row: dict[str, Any]) -> str:
    """``≈ 181``, ``< 8``, ``> all (2388)``; a † marks a curve of the frozen twin of a
    fine-tuned setup."""
    worth = row.get("worth_in_labels")
    if not worth or worth.get("text", "n/a") == "n/a":
        return "n/a"
    return worth["text"] + (" †" if worth.get("encoder_trained") else "")


def verdict_cell(row: dict[str, Any]) -> str:
    """``no (+0.120 vs majority)``, ``**yes** (-0.031 vs twin)``, ``n.s. (-0.010 vs twin)``."""
    neg = row.get("negative_transfer")
    if not neg:
        return "n/a"
    against = "majority" if neg["against"] == "majority class" else "twin"
    diff = f"{neg['difference']:+.3f} vs {against}"
    word = {
        "yes": "**yes**",
        "no": "no",
        "not significant": "n.s.",
        "worse, no CI": "worse, no CI",
    }[neg["verdict"]]
    return f"{word} ({diff})"


def _pair(r: dict[str, Any]) -> str:
    return f"{r['source']} → {r['target']}" + (" (in-domain)" if r["same_domain"] else "")


def _spread(estimates: dict[str, Any]) -> float:
    values = [v["mean"] for v in estimates.values()]
    return max(values) - min(values)


def _seed_mean(r: dict[str, Any], key: str) -> float | None:
    """The mean over seeds of a per-seed label-free number (temperature, prediction shift)."""
    values = [
        p["label_free"][key]
        for p in r.get("per_seed") or []
        if isinstance((p.get("label_free") or {}).get(key), (int, float))
    ]
    return sum(values) / len(values) if values else None


def _opt(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def label_free_section(metrics: dict[str, Any]) -> list[str]:
    """The estimates of every row beside the true accuracy, and each estimator's mean error."""
    rows = metrics["rows"]
    summary = metrics.get("label_free") or {}
    method = summary.get("method", DEFAULT_METHOD)
    shown = [r for r in rows if "estimate" in (r.get("label_free") or {})]
    val = metrics.get("source_validation") or {}
    lines = [
        f"Target accuracy estimated from the model's confidences on the target texts, with no target label: "
        f"{method_name(method)} heads the summary; every estimator is calibrated on labeled source validation "
        f"rows ({val.get('size', 0):.0%} of each source's train split, stratified and seeded, held out of training: "
        "the domains define no validation split). A target without labels gets estimates only.",
        "",
    ]
    if not shown:
        return lines + ["No row has a label-free estimate (see What could not be measured)."]
    methods = list(shown[0]["label_free"]["estimates"])
    lines += [
        "| setup | source → target | source-val acc (n) | T | pred. shift | "
        + " | ".join(method_name(m) for m in methods)
        + " | spread | true acc | target rows |",
        "|---|---|---|---|---|" + "---|" * len(methods) + "---|---|---|",
    ]
    for r in shown:
        lf = r["label_free"]
        est = lf["estimates"]

        def cell(m: str, lf: dict[str, Any] = lf, est: dict[str, Any] = est) -> str:
            text = f"{est[m]['mean']:.3f}"
            return text + (f" (err {lf['abs_error'][m]:.3f})" if "abs_error" in lf else "")

        true = (
            f"{lf['true_accuracy']:.3f}"
            if "true_accuracy" in lf
            else "**no labels: estimate only**"
        )
        lines.append(
            f"| `{r['setup']}` | {_pair(r)} | {lf['source_val_accuracy']['mean']:.3f} ({lf['n_source_val']}) | "
            f"{_opt(_seed_mean(r, 'temperature'), '.2f')} | {_opt(_seed_mean(r, 'prediction_shift'), '.2f')} | "
            + " | ".join(cell(m) for m in methods)
            + f" | {_spread(est):.3f} | {true} | {lf['target_rows']}, {lf['n_target']} |"
        )
    lines += [
        "",
        "T: the temperature fitted on the source validation rows (> 1: the model was overconfident there); "
        "every estimate is computed on the temperature-scaled probabilities (two-class ATC does not depend on "
        "it). pred. shift: how far the mix of predicted classes moves from source validation to target (total "
        "variation); a large one warns of a model that sees the target very differently (or a target whose "
        "classes are balanced differently): of the estimators only COT takes it into account. AC: the mean calibrated confidence on the target; average: the mean of "
        "ATC-NE, DoC and AC. COT: AC after matching the target rows to labels in the source's class mix by "
        "optimal transport, so a drift of the predicted mix counts against the model (a target whose classes "
        "really are balanced differently is then underestimated); COTT: its thresholded form. spread: largest minus smallest estimate of the row, a label-free warning: "
        "estimators that disagree cannot all be right.",
    ]
    lines.append("")
    if "mae" in summary:
        mae = ", ".join(f"{method_name(m)} {v:.3f}" for m, v in summary["mae"].items())
        lines.append(f"Mean absolute error over the {summary['rows']} {summary['over']}: {mae}.")
        used = [
            r for r in shown if not r["same_domain"] and "true_accuracy" in r["label_free"]
        ]
        if used:
            no_shift = sum(
                abs(r["label_free"]["source_val_accuracy"]["mean"] - r["label_free"]["true_accuracy"])
                for r in used
            ) / len(used)
            lines.append(
                f"For scale: taking the source validation accuracy as the target accuracy (assuming no shift) "
                f"errs by {no_shift:.3f} on the same rows."
            )
    else:
        lines.append("No cross-domain row has target labels: the estimates cannot be checked here.")
    return lines


def recommendation_section(metrics: dict[str, Any]) -> list[str]:
    """One line per cross-domain pair: the recommended setup, how it was chosen, its regret."""
    method = method_name((metrics.get("label_free") or {}).get("method", DEFAULT_METHOD))
    lines = []
    for rec in metrics.get("recommendation") or []:
        head = f"- {rec['source']} → {rec['target']}: "
        if "missing" in rec:
            lines.append(head + f"no recommendation ({rec['missing']}).")
            continue
        chosen_by = (
            f"the highest smallest-of-the-estimators ({rec['lower']:.3f}, the estimate minus their "
            f"disagreement) of {rec['candidates']} setup(s), {method} estimate {rec['estimate']:.3f}"
            if rec.get("rule") == "lower" and rec.get("lower") is not None
            else f"the highest {method} estimate of {rec['candidates']} setup(s), {rec['estimate']:.3f}"
        )
        text = (
            f"use **`{rec['setup']}`**: {chosen_by} (source validation accuracy "
            f"{rec['source_val_accuracy']:.3f}, the tie-breaker), chosen without a single {rec['target']} label."
        )
        if "regret" in rec and rec["best_setup"] == rec["setup"]:
            text += f" Its true accuracy, {rec['accuracy']:.3f}, is also the best of the pair: regret 0."
        elif "regret" in rec:
            text += (
                f" Its true accuracy is {rec['accuracy']:.3f}; the best row, `{rec['best_setup']}`, has "
                f"{rec['best_accuracy']:.3f}: regret {rec['regret']:.3f}."
            )
            paired = rec.get("regret_shared_seeds")
            if paired is not None:
                seeds = ", ".join(str(x) for x in paired["seeds"])
                text += (
                    f" The two rows ran different seeds; over the seed(s) both ran ({seeds}) the regret "
                    f"is {paired['regret']:.3f}."
                )
        else:
            text += " The target has no labels, so its regret is unknown."
        others = {m: s for m, s in (rec.get("by_method") or {}).items() if method_name(m) != method}
        if others:
            same = [method_name(m) for m, s in others.items() if s == rec["setup"]]
            differ = [
                f"{method_name(m)} would pick `{s}`" for m, s in others.items() if s != rec["setup"]
            ]
            text += (
                " "
                + "; ".join(
                    ([f"{' and '.join(same)} agree{'s' if len(same) == 1 else ''}"] if same else [])
                    + differ
                )
                + "."
            )
        lines.append(head + text)
    return lines or ["No cross-domain pair: nothing to recommend."]


def worth_section(rows: list[dict[str, Any]]) -> list[str]:
    """The target-only curves (one line per yardstick and target) and what each setup is worth."""
    curves: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        w = r.get("worth_in_labels")
        if w and w.get("curve"):
            curves.setdefault(
                (r["target"], w["yardstick"], ",".join(map(str, r["seeds"]))), w["curve"]
            )
    if not curves:
        return []
    budgets = sorted({int(b) for c in curves.values() for b in c})
    lines = [
        "Target-only learning curves (mean accuracy on the target test split over the seeds; nested, "
        "class-balanced samples of the target train split). A setup's worth in target labels is where its "
        "target-only curve reaches its cross-domain accuracy (log-interpolated).",
        "",
        "| target | target-only model | seeds | " + " | ".join(str(b) for b in budgets) + " |",
        "|---|---|---|" + "---|" * len(budgets),
    ]
    for (target, yardstick, seeds), curve in curves.items():
        cells = [f"{curve[str(b)]['mean']:.3f}" if str(b) in curve else "–" for b in budgets]
        lines.append(f"| {target} | {yardstick} | {seeds} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| setup | source → target | cross-domain acc | worth in target labels | read off |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        w = r.get("worth_in_labels")
        if not w or "accuracy" not in r["cross_domain"]:
            continue
        lines.append(
            f"| `{r['setup']}` | {_pair(r)} | {r['cross_domain']['accuracy']['mean']:.3f} | {worth_cell(r)} | "
            f"{w['yardstick']} |"
        )
    if any((r.get("worth_in_labels") or {}).get("encoder_trained") for r in rows):
        lines += [
            "",
            "† The setup fine-tunes its encoder; its worth is read off the curve of its frozen twin (the "
            "same pretrained encoder, frozen, with the same head). A fine-tuned target-only curve is not "
            "computed: target-only fine-tuning may need more or fewer labels.",
        ]
    if any(r.get("head") == "linear" and r.get("worth_in_labels") for r in rows):
        lines += [
            "",
            "A linear head's target-only curve is fitted as logistic regression (the same linear model, trained "
            "to convergence): a torch head trained for a few epochs on a few hundred rows stays near its random "
            "initialisation and would make the transfer look worth more labels than it is.",
        ]
    return lines


def missing_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Why a row has no label-free estimate (too few rows, no source validation split)."""
    return sorted(
        {
            f"`{r['setup']}` {r['source']} → {r['target']}: {r['label_free']['missing']}"
            for r in rows
            if "missing" in (r.get("label_free") or {})
        }
    )
