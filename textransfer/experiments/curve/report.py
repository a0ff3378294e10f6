"""``report.md`` and the plot of a learning-curve run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textransfer.evaluation.curves import budget_label, curve_stats, format_stats


def _gain(part: dict[str, Any] | None, with_budget: bool = False) -> str:
    if not part:
        return "n/a"
    text = f"{part['setup']:.3f} vs {part['baseline']:.3f} (**{part['gain']:+.3f}**)"
    if not with_budget:
        return text
    at = (
        part["budget"]
        if part["budget"] == part["baseline_budget"]
        else f"{part['budget']} vs {part['baseline_budget']}"
    )
    return f"{text} at {at} labels"


def benefit_rows(metrics: dict[str, Any]) -> list[str]:
    """Markdown table of start / area / asymptote gains, matching budget and negative transfer."""
    base = metrics["baseline"]
    pool = metrics["target"]["pool"]
    # the baseline's largest budget: all labels, unless the run stops earlier
    base_budgets = [int(b) for b in metrics["setups"][base]["curve"]]
    top = budget_label(max(base_budgets), pool) if base_budgets else "?"
    head = ["setup", "start (acc vs baseline, gain)", "slope: log-area", "asymptote", f"reaches `{base}` at {top}",
            "negative transfer"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, s in metrics["setups"].items():
        b = s.get("benefits")
        if b is None:
            continue
        if "start" not in b:
            lines.append(f"| `{key}` | no results | | | | |")
            continue
        match = b.get("matches_baseline_at")
        match_text = "not reached" if match is None else budget_label(match, pool)
        neg = ", ".join(b["negative_transfer"])
        neg_text = f"**yes** ({neg})" if neg else "no"
        if b["losing_budgets"] and not neg:
            neg_text += f" (below at {', '.join(map(str, b['losing_budgets']))})"
        lines.append(
            f"| `{key}` | {_gain(b.get('start'), True)} | {_gain(b.get('area'))} | {_gain(b.get('asymptote'))} "
            f"| {match_text} | {neg_text} |"
        )
    return lines


def write_report(
    run_dir: Path, metrics: dict[str, Any], curves: dict[str, dict[int, list[float]]]
) -> None:
    """Writes ``report.md`` and ``plots/learning_curve.png`` into ``run_dir``."""
    from textransfer.experiments.curve.plots import learning_curves

    t, pool = metrics["target"], metrics["target"]["pool"]
    budgets = metrics["budgets"]
    stats = {k: curve_stats(v) for k, v in curves.items()}
    lines = [f"# Learning curve `{metrics['name']}`", ""]
    lines.append(
        f"Target `{t['domain']}`: {t['rows']} rows {t['labels']}, split per seed into a labeled pool of {t['pool']} "
        f"and a test split of {t['test']}. Budgets are {metrics['balance']} nested samples of the pool "
        f"(row ids in `samples.json`); seeds {metrics['seeds']}; accuracy on the target test split, mean ± std "
        f"over seeds. Majority class on the test split: {metrics['majority_class']:.3f}."
    )
    if metrics.get("source"):
        lines.append(
            f"Two-step setups first train on the source `{metrics['source']['domain']}` ({metrics['source']['rows']} rows)."
        )
    for note in metrics["notes"]:
        lines.append(f"- Note: {note}")
    lines += ["", "## Target test accuracy by number of labeled target examples", ""]
    head = ["setup", "strategy", "seeds", *[budget_label(b, pool) for b in budgets]]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, s in metrics["setups"].items():
        tag = " (no transfer)" if not s["transfer"] else (" (two-step)" if s["two_step"] else "")
        cells = [f"`{key}`{tag}", s["strategy"], str(len(s["seeds"]))]
        cells += [format_stats(stats[key].get(b)) for b in budgets]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"## Benefits of transfer against `{metrics['baseline']}` (no transfer)", ""]
    lines += benefit_rows(metrics)
    lines += ["", "Definitions:", ""]
    lines += [f"- **{k}**: {v}" for k, v in metrics["definitions"].items()]
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    title = f"{metrics['name']}: target `{t['domain']}`"
    learning_curves(stats, plots / "learning_curve.png", title, pool, metrics.get("majority_class"))
    lines += ["", "![learning curves](plots/learning_curve.png)", ""]
    (run_dir / "report.md").write_text("\n".join(lines))


def summary_lines(result: Any) -> list[str]:
    """What ``textransfer curve`` prints: the benefits of transfer of each setup."""
    return benefit_rows(result.metrics)
