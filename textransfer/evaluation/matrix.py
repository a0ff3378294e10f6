"""The cross-domain matrix: per-seed records pooled into one row per (setup, source, target).

Definitions (also written into ``metrics.json`` under ``definitions``):

- transfer gap = oracle accuracy - cross-domain accuracy (what the shift costs against a model
  trained on target labels);
- transfer loss = in-domain accuracy - cross-domain accuracy (the drop the user sees when the
  source model leaves its domain);
- negative transfer: cross-domain accuracy (seed mean) below the *target-only* baseline, the
  frozen encoder with the same head trained on ``min(source rows used, target train rows)``
  target labels. ``significant`` when the upper end of the cross-domain 95% CI is below the
  baseline's mean as well;
- adaptation gain = cross-domain accuracy - that of the source-only counterpart with the same
  encoder and head (``frozen`` for CORAL; ``finetune``, else ``frozen``, for DANN), when in the grid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textransfer.evaluation.scoring import mean_std, pool_seeds

if TYPE_CHECKING:
    from textransfer.crossdomain import Experiment
    from textransfer.crossdomain_config import CrossDomainConfig
    from textransfer.data import LabeledTexts
    from textransfer.data.labeled import LabelMap

DEFINITIONS = {
    "transfer_gap": "oracle accuracy - cross-domain accuracy (oracle: same setup trained on the target train split)",
    "transfer_loss": "in-domain accuracy (source test split) - cross-domain accuracy (target test split)",
    "negative_transfer": "cross-domain accuracy < target-only accuracy: frozen encoder + same head trained on "
    "min(source rows used, target train rows) target labels; 'significant' if the cross-domain 95% CI upper "
    "bound is below it too",
    "adaptation_gain": "cross-domain accuracy - that of the source-only counterpart with the same encoder and "
    "head (the strategy's `baseline` if set; else frozen for coral; finetune, else frozen, for dann), seed "
    "means over each setup's seeds",
    "a_distance": "proxy A-distance 2(1 - 2 err) of a linear domain classifier on frozen encoder features of "
    "the source and target test splits, err measured on a held-out half",
    "ci95": "percentile bootstrap over test rows of the seed-mean metric (1000 resamples by default)",
}


# The source-only counterpart of an adaptation: same encoder and head, no target texts.
SOURCE_ONLY = {"dann": ("finetune", "frozen")}


def _source_only_twin(config: CrossDomainConfig, ename: str, sname: str) -> str | None:
    """Setup name of the source-only counterpart (same encoder and head) of an adapted setup:
    the strategy's ``baseline`` key if set, else ``finetune`` for ``dann`` when in the grid, else
    ``frozen``; None for unadapted setups."""
    strat = config.strategies[sname]
    if any(s.baseline == sname for s in config.strategies.values()):
        return None  # itself the source-only baseline of another strategy (e.g. DANN, lambda 0)
    if strat.baseline is not None:
        s = config.strategies[strat.baseline]
        return f"{ename}+{strat.baseline}" if s.encoders is None or ename in s.encoders else None
    if strat.name in ("frozen", "finetune"):
        return None
    for wanted in SOURCE_ONLY.get(strat.name, ("frozen",)):
        for other, s in config.strategies.items():
            allowed = s.encoders is None or ename in s.encoders
            if s.name == wanted and allowed and s.head.model_dump() == strat.head.model_dump():
                return f"{ename}+{other}"
    return None


def summarise(
    config: CrossDomainConfig, exp: Experiment, data: dict[str, LabeledTexts], label_map: LabelMap
) -> dict[str, Any]:
    """Everything ``metrics.json`` holds: domains, A-distances, one row per (setup, pair)."""
    labels = label_map.labels
    n_boot, bins = config.evaluation.n_boot, config.evaluation.ece_bins
    pads: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for p in exp.a_distance:
        pads.setdefault((p["encoder"], p["source"], p["target"]), []).append(p)
    rows: list[dict[str, Any]] = []
    for setup, ename, sname in config.grid():
        name = setup.name
        strat = config.strategies[sname]
        for source, target in config.pairs():
            k = (name, source, target)
            per_seed = [r for r in exp.records if (r["setup"], r["source"], r["target"]) == k]
            if not per_seed:
                continue
            row: dict[str, Any] = {
                "seeds": sorted({r["seed"] for r in per_seed}), "setup": name, "encoder": ename, "strategy": strat.name, "strategy_key": sname,
                "head": strat.head.name, "source": source, "target": target,
                "same_domain": config.same_domain(source, target),
                "in_domain": pool_seeds(exp.scores[(*k, "in_domain")], labels, n_boot, bins),
            }
            cross = exp.scores.get((*k, "cross_domain"))
            row["cross_domain"] = (
                pool_seeds(cross, labels, n_boot, bins) if cross else {"missing": per_seed[0]["cross_domain"]["missing"]}
            )
            for part, key in (("oracle", (name, target, "oracle")), ("target_only", (*k, "target_only"))):
                if key in exp.scores and not row["same_domain"]:
                    row[part] = pool_seeds(exp.scores[key], labels, n_boot, bins)
            if "target_only" in row:
                row["target_only"]["label_budget"] = [r["target_only"]["label_budget"] for r in per_seed]
            _derived(row)
            pad = pads.get((ename, source, target))
            row["a_distance"] = mean_std([p["a_distance"] for p in pad]) if pad else None
            row["fit_seconds"] = mean_std([r["fit"]["fit_seconds"] for r in per_seed])
            row["train_rows"] = [r["fit"]["train_rows"] for r in per_seed]
            row["source_only"] = _source_only_twin(config, ename, sname)
            row["per_seed"] = per_seed
            rows.append(row)
    by_name = {(r["setup"], r["source"], r["target"]): r for r in rows}
    for row in rows:
        twin = by_name.get((row["source_only"], row["source"], row["target"])) if row["source_only"] else None
        if twin and "accuracy" in row["cross_domain"] and "accuracy" in twin["cross_domain"]:
            row["adaptation_gain"] = row["cross_domain"]["accuracy"]["mean"] - twin["cross_domain"]["accuracy"]["mean"]
    return {
        "name": config.name,
        "seeds": config.seeds,
        "labels": [str(lab) for lab in labels],
        "domains": {
            n: {"rows": len(d), "labels": {str(a): c for a, c in d.label_counts().items()} if d.labels else None,
                "source": config.domains[n].source}
            for n, d in data.items()
        },
        "definitions": DEFINITIONS,
        "a_distance": exp.a_distance,
        "rows": rows,
        "notes": exp.notes,
    }


def _derived(row: dict[str, Any]) -> None:
    """Transfer gap, transfer loss and the negative-transfer flag of one row (in place)."""
    cross = row["cross_domain"]
    if "accuracy" not in cross:
        return
    c = cross["accuracy"]["mean"]
    row["transfer_loss"] = row["in_domain"]["accuracy"]["mean"] - c
    if row["same_domain"]:
        row["transfer_gap"] = 0.0
        return
    if "oracle" in row:
        row["transfer_gap"] = row["oracle"]["accuracy"]["mean"] - c
    if "target_only" in row:
        base = row["target_only"]["accuracy"]["mean"]
        high = cross["accuracy"].get("ci95", [c, c])[1]
        row["negative_transfer"] = {
            "flag": bool(c < base), "significant": bool(high < base), "cross_minus_target_only": c - base,
        }
