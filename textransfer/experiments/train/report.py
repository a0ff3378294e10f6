"""``report.md`` and the plots of a single run (``textransfer run``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textransfer import tracking

if TYPE_CHECKING:
    from textransfer.experiments.train.config import RunConfig
    from textransfer.experiments.train.run import Splits

__all__ = ["setup_folder", "summary_table", "write_report", "write_setup_plots"]


def summary_table(metrics: dict[str, Any]) -> str:
    """A markdown table: one row per setup, accuracy / macro-F1 per evaluation set."""
    eval_names: list[str] = []
    for res in metrics.values():
        for name in res["eval"]:
            if name not in eval_names:
                eval_names.append(name)
    header = ["setup", "encoder", "head", "strategy"]
    for name in eval_names:
        header += [f"{name} acc", f"{name} F1"]
    header.append("fit s")
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setup, res in metrics.items():
        cells = [setup, res["encoder"]["name"], res["head"]["name"], res["strategy"]]
        for name in eval_names:
            ev = res["eval"].get(name, {})
            cells += [f"{ev['accuracy']:.3f}" if "accuracy" in ev else "-", f"{ev['macro_f1']:.3f}" if "macro_f1" in ev else "-"]
        cells.append(f"{res['fit_seconds']:.1f}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _ci(ev: dict[str, Any], key: str) -> str:
    ci = ev.get(f"{key}_ci95")
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def setup_folder(metrics: dict[str, Any], setup: str) -> str:
    """Where a setup's files go, relative to the run folder: ``""`` (one setup) or ``"NAME/"``."""
    return "" if len(metrics) == 1 else f"{setup}/"


def write_setup_plots(folder: Path, setup: str, res: dict[str, Any]) -> list[str]:
    """``plots/confusion.png`` (one panel per labeled eval set) and ``plots/reliability.png`` (one
    series each) of a setup, under ``folder``; returns their names relative to ``folder``."""
    scored = [(name, ev) for name, ev in res["eval"].items() if "confusion_matrix" in ev and "reliability" in ev]
    if not scored:
        return []
    from textransfer.evaluation.plots import confusion_figure, reliability_figure, save_figure

    panels = [(f"{name} ({ev['domain']}, acc {ev['accuracy']:.3f}, n={ev['n']})", ev["confusion_matrix"], ev["labels"])
              for name, ev in scored]
    save_figure(confusion_figure(panels, f"{setup}: confusion matrices"), folder / "plots" / "confusion.png")
    series = [(f"{name} ({ev['domain']}): ECE {ev['ece']:.3f}", ev["reliability"]) for name, ev in scored]
    save_figure(reliability_figure(series, f"Reliability: {setup}"), folder / "plots" / "reliability.png")
    return ["plots/confusion.png", "plots/reliability.png"]


def write_report(run_dir: Path, config: RunConfig, splits: Splits, metrics: dict[str, Any]) -> None:
    """Writes ``report.md`` into ``run_dir``: the data, its warnings, then the scores with 95%
    bootstrap intervals, ECE and the figures of each setup (written here too, under its folder:
    confusion matrices, reliability diagram; ``training.png`` when :func:`run` wrote one)."""
    lines = [f"# Run `{config.name}`", ""]
    lines.append(f"Training data: `{splits.train.domain}`, {len(splits.train)} rows {splits.train.label_counts()}.")
    if splits.test is not None:
        lines.append(f"In-domain test split (`test`): {len(splits.test)} rows, seed {config.seed}.")
    for name, data in splits.evals.items():
        lines.append(f"Evaluation set `{name}`: domain `{data.domain}`, {len(data)} rows {data.label_counts()}.")
    if splits.notes:
        lines += ["", "## Warnings", "", *(f"- {note}" for note in splits.notes)]
    lines += ["", "## Accuracy and macro-F1", "", summary_table(metrics), ""]
    lines += ["Intervals: 95% percentile bootstrap over the rows of each evaluation set; ECE over "
              "equal-width confidence bins (reliability diagrams below).", ""]
    for setup, res in metrics.items():
        lines += [f"## {setup}", ""]
        folder = setup_folder(metrics, setup)
        figures = write_setup_plots(run_dir / folder, setup, res)
        if (run_dir / folder / "plots" / tracking.TRAINING_PLOT).exists():
            figures.append(f"plots/{tracking.TRAINING_PLOT}")
        training = res.get("training")
        if training:
            precision = training.get("mixed_precision")
            at = f" at {precision} mixed precision" if precision not in (None, "no") else ""
            lines += [f"Training: {training['epochs']} epoch(s){at}, best epoch {training['best_epoch']}"
                      f"{' (stopped early)' if training['stopped_early'] else ''}; per-epoch history in "
                      f"`{folder}{tracking.HISTORY_FILE}`.", ""]
        for name, ev in res["eval"].items():
            if "per_class" not in ev:
                lines += [f"- `{name}`: {ev.get('note', 'not scored')}", ""]
                continue
            ece = f", ECE {ev['ece']:.3f}" if "ece" in ev else ""
            lines += [
                f"**{name}** ({ev['domain']}, n={ev['n']}): accuracy {ev['accuracy']:.3f}{_ci(ev, 'accuracy')}, "
                f"macro-F1 {ev['macro_f1']:.3f}{_ci(ev, 'macro_f1')}{ece}, majority-class baseline "
                f"{ev['majority_baseline']:.3f}",
                "",
                "| class | precision | recall | F1 | support |",
                "|---|---|---|---|---|",
            ]
            for lab, pc in ev["per_class"].items():
                lines.append(f"| {lab} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['support']} |")
            labels = [str(x) for x in ev["labels"]]
            lines += ["", "Confusion matrix (rows: true, columns: predicted)", ""]
            lines.append("| | " + " | ".join(labels) + " |")
            lines.append("|---|" + "---|" * len(labels))
            for lab, row in zip(labels, ev["confusion_matrix"], strict=True):
                lines.append(f"| {lab} | " + " | ".join(str(c) for c in row) + " |")
            lines.append("")
        for f in figures:
            lines += [f"![{Path(f).stem}]({folder}{f})", ""]
    (run_dir / "report.md").write_text("\n".join(lines))


def summary_lines(result: Any) -> list[str]:
    """What ``textransfer run`` prints: the :func:`summary_table` of the setups."""
    return [summary_table(result.metrics)]
