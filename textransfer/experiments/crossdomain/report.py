"""``report.md`` of a cross-domain run: tables, a plain verdict on each adaptation, label-free
estimates and the recommended setup, worth in target labels, figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textransfer.experiments.crossdomain.trust_report import (
    estimate_cell,
    label_free_section,
    method_name,
    missing_lines,
    recommendation_section,
    verdict_cell,
    worth_cell,
    worth_section,
)

if TYPE_CHECKING:
    from textransfer.evaluation.scoring import Scored
    from textransfer.experiments.crossdomain.config import CrossDomainConfig


def _acc(part: dict[str, Any] | None, key: str = "accuracy", ci: bool = True) -> str:
    if not part or key not in part:
        return "n/a"
    m = part[key]
    text = f"{m['mean']:.3f}"
    if m.get("std"):
        text += f" ± {m['std']:.3f}"
    if ci and "ci95" in m:
        text += f" [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"
    return text


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _verdict(row: dict[str, Any], twin: dict[str, Any]) -> str:
    gain, ci = row["adaptation_gain"], row.get("adaptation_gain_ci95")
    adapted, frozen = row["cross_domain"]["accuracy"]["mean"], twin["cross_domain"]["accuracy"]["mean"]
    seeds = row.get("adaptation_gain_seeds")
    shared = ""
    if seeds and row.get("adaptation_gain_accuracies") and (seeds != row["seeds"] or seeds != twin["seeds"]):
        adapted, frozen = row["adaptation_gain_accuracies"]  # the gain's own terms, not seed means
        shared = f" on the seed(s) both ran ({', '.join(map(str, seeds))})"
    text = (
        f"`{row['setup']}` {row['source']} → {row['target']}: cross-domain accuracy {adapted:.3f} vs "
        f"{frozen:.3f} for `{twin['setup']}` (source-only){shared}; gain {gain:+.3f}"
    )
    if ci is None:
        return text + " (no paired CI)" + (f" — **{row['strategy']} does not help here**." if gain <= 0 else ".")
    text += f", paired 95% CI [{ci[0]:+.3f}, {ci[1]:+.3f}]" + (f" on seeds {seeds}" if seeds else "")
    if ci[1] < 0:
        return text + f" — **{row['strategy']} hurts here: negative transfer**."
    if ci[0] > 0:
        return text + f" — {row['strategy']} helps (the CI excludes 0)." + _source_side(row)
    return text + " — the CI contains 0: **no clear difference**."


def _source_side(row: dict[str, Any]) -> str:
    """The caveat for a cross-domain gain that the source test split shows as well: the
    adaptation trained the source task further than its twin (self-training's rounds train on
    the source again), so the gain may not come from the target texts."""
    gain, ci = row.get("in_domain_gain"), row.get("in_domain_gain_ci95")
    if gain is None or ci is None or ci[0] <= 0:
        return ""
    return (
        f" Its in-domain (source test) accuracy rose as well, {gain:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]: part of "
        "the gain may be more training on the source rather than adaptation to the target; a source-only "
        "`baseline:` trained as long tells them apart (for `self_train` over `finetune`: rounds + 1 times the epochs)."
    )


def _pair(r: dict[str, Any]) -> str:
    return f"{r['source']} → {r['target']}" + (" (in-domain)" if r["same_domain"] else "")


def _cross(r: dict[str, Any]) -> str:
    return _acc(r["cross_domain"]) if "accuracy" in r["cross_domain"] else "n/a (no labels)"


SUMMARY_COLUMNS = [
    "setup", "source → target", "cross-domain acc [95% CI]", "est. acc [err]", "gap", "worth in labels",
    "neg. transfer", "ECE tgt",
]
MORE_COLUMNS = [
    "setup", "source → target", "in-domain acc", "oracle acc", "loss", "A-dist", "ECE src", "F1 src", "F1 tgt",
]


def summary_table(rows: list[dict[str, Any]]) -> list[str]:
    """The compact table, one line per (setup, source, target): the headline numbers only
    (:data:`SUMMARY_COLUMNS`); :func:`more_table` holds the rest."""
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    for r in rows:
        cells = [
            f"`{r['setup']}`", _pair(r), _cross(r), estimate_cell(r), _num(r.get("transfer_gap"), True),
            worth_cell(r), verdict_cell(r), _acc(r["cross_domain"], "ece", False),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def more_table(rows: list[dict[str, Any]]) -> list[str]:
    """The other per-row measures (:data:`MORE_COLUMNS`): in-domain and oracle accuracy,
    transfer loss, A-distance, source ECE and macro-F1 on both domains."""
    lines = ["| " + " | ".join(MORE_COLUMNS) + " |", "|" + "---|" * len(MORE_COLUMNS)]
    for r in rows:
        distance = r.get("a_distance")  # proxy A-distance
        cells = [
            f"`{r['setup']}`", _pair(r), _acc(r["in_domain"], ci=False), _acc(r.get("oracle"), ci=False),
            _num(r.get("transfer_loss"), True), "n/a" if distance is None else f"{distance['mean']:.2f}",
            _acc(r["in_domain"], "ece", False), _acc(r["in_domain"], "macro_f1", False),
            _acc(r["cross_domain"], "macro_f1", False),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _details(r: dict[str, Any], figures: list[str] | None = None) -> list[str]:
    lines = [f"### `{r['setup']}` {r['source']} → {r['target']}", ""]
    fit = f"fit {r['fit_seconds']['mean']:.1f} s per model"
    if r.get("base_fit_seconds"):
        fit += (f", after the {r['base_fit_seconds']['mean']:.1f} s of the source-only model it starts from "
                "(its twin's, copied: not trained again)")
    if r.get("shared_fit_seeds"):
        fit += (f"; seed(s) {r['shared_fit_seeds']}: the model trained for an earlier target of the run, "
                "scored here too (a source-only fit does not read the target)")
    lines.append(f"Seeds {r['seeds']}; source training rows used per seed: {r['train_rows']}; {fit}.")
    lines.append("")
    lf, worth = r.get("label_free") or {}, r.get("worth_in_labels") or {}
    if "estimates" in lf:
        est = ", ".join(f"{method_name(m)} {v['mean']:.3f}" for m, v in lf["estimates"].items())
        true = f"true accuracy {lf['true_accuracy']:.3f}" if "true_accuracy" in lf else "no target labels: estimates only"
        lines += [f"Label-free estimates ({lf['target_rows']}, {lf['n_target']} rows): {est}; {true}.", ""]
    if worth.get("curve"):
        lines += [f"Worth in target labels: {worth_cell(r)} (target-only curve of {worth['yardstick']}, under "
                  "Worth in target labels above).", ""]
    neg = r.get("negative_transfer")
    if neg:
        ci = f", 95% CI [{neg['ci95'][0]:+.3f}, {neg['ci95'][1]:+.3f}]" if neg.get("ci95") else ""
        base = (f"the target's majority class, {neg['baseline']:.3f} (chance {neg['chance']:.3f})"
                if neg["against"] == "majority class" else f"its source-only twin `{neg['twin']}`")
        lines += [f"Negative transfer, at 0 target labels against {base}: {neg['difference']:+.3f}{ci}: "
                  f"**{neg['verdict']}**.", ""]
    # The figures first (confusion matrices, reliability), then the tables they summarise.
    for f in figures or []:
        lines += [f"![{Path(f).stem}](plots/{Path(f).name})", ""]
    # One block per distinct model: the target-only model is summarised by its curve above.
    for part in ("in_domain", "cross_domain", "oracle"):
        ev = r.get(part)
        if ev is None or (part == "cross_domain" and r["same_domain"]):
            continue
        if "missing" in ev:
            lines += [f"- {part}: {ev['missing']}", ""]
            continue
        labels = ev["labels"]
        lines += [
            f"**{part}** (n={ev['n']} per seed): accuracy {_acc(ev)}, macro-F1 {_acc(ev, 'macro_f1')}, "
            f"ECE {_acc(ev, 'ece', False)}, majority class {ev['majority_baseline']:.3f}",
            "",
            "| class | precision | recall |",
            "|---|---|---|",
        ]
        lines += [f"| {lab} | {pc['precision']:.3f} | {pc['recall']:.3f} |" for lab, pc in ev["per_class"].items()]
        summed = f" summed over {ev['n_seeds']} seeds" if ev.get("n_seeds", 1) > 1 else ""
        lines += ["", f"Confusion matrix{summed} (rows: true, columns: predicted):", ""]
        lines.append("| | " + " | ".join(labels) + " |")
        lines.append("|---|" + "---|" * len(labels))
        lines += [f"| {lab} | " + " | ".join(str(c) for c in row) + " |" for lab, row in zip(labels, ev["confusion_matrix"], strict=True)]
        lines.append("")
    return lines


def write_report(
    run_dir: Path, config: CrossDomainConfig, metrics: dict[str, Any], scores: dict[tuple[str, ...], list[Scored]]
) -> None:
    """Writes ``report.md`` (and, when ``evaluation.plots`` is on, ``plots/*.png``) into ``run_dir``."""
    rows = metrics["rows"]
    figures: list[str] = []
    row_figures: dict[int, list[str]] = {}
    if config.evaluation.plots:
        from textransfer.experiments.crossdomain.plots import row_figure_names, write_plots

        figures = write_plots(run_dir / "plots", metrics)
        by_name = {Path(f).name: f for f in figures}
        # Each row's own figures go into its subsection; the overview figures stay together.
        for i, r in enumerate(rows):
            row_figures[i] = [by_name.pop(n) for n in row_figure_names(r) if n in by_name]
        figures = list(by_name.values())
    seeds = metrics["seeds"]
    lines = [f"# Cross-domain report `{metrics['name']}`", ""]
    lines += ["| domain | source | rows | labels |", "|---|---|---|---|"]
    for n, d in metrics["domains"].items():
        lines.append(f"| {n} | `{d['source']}` | {d['rows']} | {d['labels'] or '**no labels**'} |")
    lines += [
        "",
        f"Seeds {seeds}: each seed makes a stratified {1 - config.test_size:.0%}/{config.test_size:.0%} train/test "
        "split of every labeled domain and trains every model again. Accuracies are `mean ± std over seeds "
        "[95% bootstrap CI of the mean]`. Models trained on a source see the target only as the texts of its "
        "train split, without labels; target labels are used to score, and to train the oracle and the "
        "target-only curves. Nothing is tuned or selected on a target test split.",
        "",
        "## Summary",
        "",
        f"est. acc: the {method_name((metrics.get('label_free') or {}).get('method', 'atc-ne'))} estimate of "
        "the target accuracy made without target labels [its error against the true accuracy]. worth in "
        "labels: target labels a target-only model needs to match the row. neg. transfer: worse than not "
        "transferring at the same target-label budget (0: the majority class; adaptations: their source-only "
        "twin); **yes** only when the 95% CI excludes 0, n.s. when it does not.",
        "",
        *summary_table(rows),
        "",
        "More measures per row (in-domain and oracle accuracy, transfer loss, A-distance, source ECE, macro-F1):",
        "",
        *more_table(rows),
        "",
        "## Which setup to use on the target",
        "",
        *recommendation_section(metrics),
        "",
        "## Can the target accuracy be trusted without labels?",
        "",
        *label_free_section(metrics),
        "",
    ]
    worth = worth_section(rows)
    if worth:
        lines += ["## Worth in target labels", "", *worth, ""]
    lines += ["## Does adaptation help?", ""]
    by_setup = {(r["setup"], r["source"], r["target"]): r for r in rows}
    verdicts = [
        "- " + _verdict(r, by_setup[(r["source_only"], r["source"], r["target"])])
        for r in rows if "adaptation_gain" in r
    ]
    lines += verdicts or ["No adapted setup has a source-only counterpart (same encoder and head) in this grid."]
    missing = sorted({r["cross_domain"]["missing"] for r in rows if "missing" in r["cross_domain"]})
    missing += [
        f"`{r['setup']}` {r['source']} → {r['target']}: no oracle was trained (`oracle: false` in its strategy), "
        "so no transfer gap" for r in rows
        if "oracle" not in r and "accuracy" in r["cross_domain"] and not r["same_domain"] and config.evaluation.oracle
    ]
    missing += missing_lines(rows)
    if missing:
        lines += ["", "## What could not be measured", "", *[f"- {m}" for m in missing]]
    if metrics.get("notes"):
        lines += ["", "## Notes", "", *[f"- {n}" for n in metrics["notes"]]]
    lines += ["", "## Definitions", ""]
    lines += [f"- **{k}**: {v}" for k, v in metrics["definitions"].items()]
    if figures:
        lines += ["", "## Figures", "", "Confusion matrices and reliability diagrams are under each setup below.", ""]
        lines += [f"![{Path(f).stem}](plots/{Path(f).name})" for f in figures]
    lines += ["", "## Details per setup", ""]
    for i, r in enumerate(rows):
        lines += _details(r, row_figures.get(i))
    (run_dir / "report.md").write_text("\n".join(lines) + "\n")


def summary_lines(result: Any) -> list[str]:
    """What ``textransfer crossdomain`` prints: the summary table of the rows."""
    return summary_table(result.metrics["rows"])
