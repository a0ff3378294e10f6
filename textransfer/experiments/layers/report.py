"""``report.md`` and the plot of a layer-transfer run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textransfer.evaluation.curves import format_stats

VARIANTS = {
    "AnB": "bottom k groups of the base network kept and frozen, the rest re-initialised and trained on the target",
    "AnB+": "the same, with the kept groups fine-tuned too",
    "BnB": "control: base network B trained on the target sample itself, bottom k kept and frozen, rest re-initialised",
    "BnB+": "the same control, kept groups fine-tuned",
}


def write_report(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Writes ``report.md`` and ``plots/layer_transfer.png`` into ``run_dir``."""
    from textransfer.experiments.layers.plots import layer_curves

    groups, variants = metrics["groups"], metrics["variants"]
    enc, t = metrics["encoder"], metrics["target"]
    base = (
        "the pretrained encoder"
        if metrics["base"] == "pretrained"
        else f"network A trained on `{metrics['source']['domain']}`"
    )
    lines = [f"# Layer transfer `{metrics['name']}`", ""]
    lines.append(
        f"Encoder `{enc['name']}` ({', '.join(f'{k}={v}' for k, v in enc.items() if k != 'name')}); base: {base}. "
        f"Target `{t['domain']}` {t['labels']}: trained on {metrics['train_rows']} labeled rows (ids in "
        f"`samples.json`), scored on a held-out test split; seeds {metrics['seeds']}."
    )
    lines.append(
        f"Layer groups, bottom to top (L = {len(groups)}): {', '.join(f'`{g}`' for g in groups)}."
    )
    for note in metrics["notes"]:
        lines.append(f"- Note: {note}")
    lines += ["", "## Target test accuracy by k", ""]
    names = [v for v in VARIANTS if v in variants]
    head = ["k", "kept groups", *names]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ks = sorted({int(k) for v in variants.values() for k in v})
    for k in ks:
        kept = (
            "none"
            if k == 0
            else (f"`{groups[0]}`" if k == 1 else f"`{groups[0]}` .. `{groups[k - 1]}`")
        )
        lines.append(
            "| "
            + " | ".join([str(k), kept, *[format_stats(variants[v].get(str(k))) for v in names]])
            + " |"
        )
    if metrics["bases"]:
        lines += ["", "Base networks (trained on all their groups):", ""]
        for b in metrics["bases"]:
            acc = f", target test accuracy {b['accuracy']:.3f}" if "accuracy" in b else ""
            lines.append(
                f"- {b['base']} (seed {b['seed']}): {b['train_rows']} rows of `{b['domain']}`{acc}"
            )
    lines += [
        "",
        "k = 0 re-initialises everything: every variant is then the same network, trained once.",
        "",
    ]
    lines += [f"- **{v}**: {VARIANTS[v]}" for v in names]
    results = {v: {int(k): s for k, s in variants[v].items()} for v in names}
    reference = None
    base_b = [b["accuracy"] for b in metrics["bases"] if b["base"] == "B" and "accuracy" in b]
    if base_b:
        reference = {
            "label": "base B (all groups trained on the target)",
            "mean": sum(base_b) / len(base_b),
        }
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    layer_curves(
        results,
        plots / "layer_transfer.png",
        f"{metrics['name']}: {enc['name']} -> `{t['domain']}`",
        groups,
        reference,
    )
    lines += ["", "![layer transfer](plots/layer_transfer.png)", ""]
    (run_dir / "report.md").write_text("\n".join(lines))


def summary_lines(result: Any) -> list[str]:
    """What ``textransfer layers`` prints: each variant's mean accuracy per k."""
    return [
        f"{variant}\t" + "  ".join(f"k={k}: {p['mean']:.3f}" for k, p in points.items())
        for variant, points in result.metrics["variants"].items()
    ]
