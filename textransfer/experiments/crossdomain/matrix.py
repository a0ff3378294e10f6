"""The cross-domain matrix: per-seed records pooled into one row per (setup, source, target).

Definitions (also written into ``metrics.json`` under ``definitions``):

- transfer gap = oracle accuracy - cross-domain accuracy (what the shift costs against a model
  trained on target labels);
- transfer loss = in-domain accuracy - cross-domain accuracy (the drop the user sees when the
  source model leaves its domain);
- negative transfer (Wang et al. 2019): worse than not transferring at the same target-label
  budget, 0: a source-only model against the target's majority class, an adaptation against
  its source-only twin (the adaptation gain and its paired CI); flagged only when the 95% CI of
  the difference lies below 0 (:mod:`textransfer.evaluation.verdicts`);
- adaptation gain = cross-domain accuracy - that of the source-only counterpart with the same
  encoder and head (``frozen`` for CORAL; ``finetune``, else ``frozen``, for DANN), when in the
  grid, on the seeds both ran, with a paired bootstrap CI;
- worth in target labels: where the target-only curve (frozen twin, nested budgets) reaches the
  cross-domain accuracy;
- label-free estimates (COT, ATC, DoC, ...): target accuracy from confidences, calibrated on source
  validation rows, beside the true accuracy and its error; the recommended setup of each pair is
  the one with the highest estimate (no target label involved), with its regret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from textransfer.evaluation.label_free import METHODS
from textransfer.evaluation.scoring import Scored, mean_std, pool_seeds
from textransfer.evaluation.verdicts import (
    majority_verdict,
    paired_gain,
    recommend,
    twin_verdict,
    worth_in_labels,
)

if TYPE_CHECKING:
    from textransfer.data import LabeledTexts
    from textransfer.data.labeled import LabelMap
    from textransfer.experiments.crossdomain.config import CrossDomainConfig
    from textransfer.experiments.crossdomain.run import CrossDomainRun

DEFINITIONS = {
    "transfer_gap": "oracle accuracy - cross-domain accuracy (oracle: same setup trained on the target train split)",
    "transfer_loss": "in-domain accuracy (source test split) - cross-domain accuracy (target test split)",
    "negative_transfer": "transferring does worse than not transferring at the same target-label budget (Wang "
    "et al. 2019). Source-only setups use 0 target labels: cross-domain accuracy vs the target's majority "
    "class (chance shown beside it). Adaptations: vs their source-only twin, through the adaptation gain. "
    "'yes' only when the 95% CI of the difference lies entirely below 0; 'not significant' when the mean is "
    "below but the CI reaches 0. An oracle trained on all target labels being better is the transfer gap, "
    "not negative transfer",
    "adaptation_gain": "cross-domain accuracy - that of the source-only counterpart with the same encoder and "
    "head (the strategy's `baseline` if set; else frozen for coral; finetune, else frozen, for dann), on the "
    "seeds both ran, with a paired bootstrap 95% CI (both models on the same resampled target test rows)",
    "in_domain_gain": "the adaptation gain's comparison on the source test split (paired the same way): when "
    "it is significantly positive, the adaptation trained the source task further than its twin, and the "
    "cross-domain gain may come from that rather than from the target texts",
    "worth_in_labels": "the number of labeled target examples a target-only model (the setup's encoder, "
    "frozen, with the same head, a linear head fitted as logistic regression, i.e. trained to convergence; "
    "same seeds) needs to match the setup's cross-domain accuracy: the target-only "
    "learning curve over nested, class-balanced budgets, interpolated on a log axis where it first reaches "
    "that accuracy. '< 8': already better at the smallest budget; '> all': never reached. For setups that "
    "fine-tune the encoder the curve is still that of the frozen twin (a fine-tuned target-only curve is "
    "not computed)",
    "label_free": "target accuracy estimated without target labels from the model's probabilities on the "
    "target test texts (all texts of an unlabeled target), calibrated on labeled source validation rows held "
    "out of the source train split. atc-ne / atc-mc: average thresholded confidence (Garg et al. 2022) with "
    "negative entropy / top-class probability; doc: difference of confidences (Guillory et al. 2021); cot / cott: "
    "confidence optimal transport to the source's class mix (Lu et al. 2023), its mean / thresholded. |err| "
    "= |estimate - true accuracy| (seed means)",
    "recommendation": "per source -> target pair, the setup with the highest label-free estimate (ties: the "
    "higher source validation accuracy); chosen without target labels. regret = best true cross-domain "
    "accuracy of the pair - that of the recommended setup (seed means; when the two rows ran different "
    "seeds, also over the seeds both ran: regret_shared_seeds)",
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
    config: CrossDomainConfig, exp: CrossDomainRun, data: dict[str, LabeledTexts], label_map: LabelMap
) -> dict[str, Any]:
    """Everything ``metrics.json`` holds: domains, A-distances, one row per (setup, pair), the
    label-free summary and the recommendation of each pair."""
    labels = label_map.labels
    n_boot, bins = config.evaluation.n_boot, config.evaluation.ece_bins
    method = config.evaluation.estimator
    distances: dict[tuple[str, str, str], list[dict[str, Any]]] = {}  # proxy A-distance per seed
    for p in exp.proxy_a_distances:
        distances.setdefault((p["encoder"], p["source"], p["target"]), []).append(p)
    rows: list[dict[str, Any]] = []
    for setup, ename, sname in config.grid():
        name = setup.name
        strat = config.strategies[sname]
        for source, target in config.pairs():
            k = (name, source, target)
            per_seed = [r for r in exp.records if (r["setup"], r["source"], r["target"]) == k]
            if not per_seed:
                continue
            in_key = (*k, "in_domain")  # a name, not `d[(*k, ...)]`: mypy reads that as 3.11-only syntax
            row: dict[str, Any] = {
                "seeds": sorted({r["seed"] for r in per_seed}), "setup": name, "encoder": ename, "strategy": strat.name, "strategy_key": sname,
                "head": strat.head.name, "source": source, "target": target,
                "same_domain": config.same_domain(source, target),
                "in_domain": pool_seeds(exp.scores[in_key], labels, n_boot, bins),
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
                row["worth_in_labels"] = _worth(per_seed, row["cross_domain"])
            _derived(row)
            row["label_free"] = _label_free(per_seed, row["cross_domain"], method)
            per_seed_distance = distances.get((ename, source, target))
            row["a_distance"] = (
                mean_std([p["a_distance"] for p in per_seed_distance]) if per_seed_distance else None
            )
            row["fit_seconds"] = mean_std([r["fit"]["fit_seconds"] for r in per_seed])
            base_seconds = [r["fit"].get("base_fit_seconds") for r in per_seed]
            if any(b is not None for b in base_seconds):  # round 0 copied from the twin's model
                row["base_fit_seconds"] = mean_std([b for b in base_seconds if b is not None])
            row["shared_fit_seeds"] = [r["seed"] for r in per_seed if "shared_fit" in r["fit"]]
            row["train_rows"] = [r["fit"]["train_rows"] for r in per_seed]
            row["source_only"] = _source_only_twin(config, ename, sname)
            row["per_seed"] = per_seed
            rows.append(row)
    _verdicts(rows, exp.scores, len(labels), n_boot)
    return {
        "name": config.name,
        "seeds": config.seeds,
        "labels": [str(lab) for lab in labels],
        "domains": {
            n: {"rows": len(d), "labels": {str(a): c for a, c in d.label_counts().items()} if d.labels else None,
                "source": config.domains[n].source}
            for n, d in data.items()
        },
        "source_validation": {
            "size": config.source_val_size,
            "from": "a stratified, seeded fraction held out of each source's train split (the domains define no "
            "validation split); never trained on",
        },
        "definitions": DEFINITIONS,
        "a_distance": exp.proxy_a_distances,
        "rows": rows,
        "label_free": label_free_summary(rows, method),
        "recommendation": recommendations(rows),
        "notes": exp.notes,
    }


def _derived(row: dict[str, Any]) -> None:
    """Transfer gap and transfer loss of one row (in place)."""
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


def _worth(per_seed: list[dict[str, Any]], cross: dict[str, Any]) -> dict[str, Any]:
    """The target-only curve over the row's seeds and the row's worth in target labels."""
    curves = [r["target_only"]["curve"] for r in per_seed]
    budgets = sorted(set.intersection(*(set(c) for c in curves)))
    curve = {b: mean_std([c[b] for c in curves]) for b in budgets}
    pool = per_seed[0]["target_only"]["label_budget"]
    out: dict[str, Any] = {
        "yardstick": per_seed[0]["target_only"]["twin"],
        "encoder_trained": any(r["fit"].get("encoder_trained") for r in per_seed),
        "curve": {str(b): v for b, v in curve.items()},
    }
    if "accuracy" not in cross:
        return {**out, "text": "n/a", "missing": "the target has no labels"}
    return {**out, **worth_in_labels({b: v["mean"] for b, v in curve.items()}, cross["accuracy"]["mean"], pool)}


def _label_free(per_seed: list[dict[str, Any]], cross: dict[str, Any], method: str) -> dict[str, Any]:
    """Seed means of the label-free estimates of one row, beside its true accuracy."""
    parts = [r["label_free"] for r in per_seed]
    missing = next((p["missing"] for p in parts if "missing" in p), None)
    if missing is not None:
        return {"missing": missing}
    out: dict[str, Any] = {
        "method": method,
        "target_rows": parts[0]["target_rows"],
        "n_source_val": parts[0]["n_source_val"],
        "n_target": parts[0]["n_target"],
        "source_val_accuracy": mean_std([p["source_val_accuracy"] for p in parts]),
        "estimates": {m: mean_std([p["estimates"][m] for p in parts]) for m in METHODS},
    }
    out["estimate"] = out["estimates"][method]["mean"]
    if "accuracy" in cross:
        out["true_accuracy"] = cross["accuracy"]["mean"]
        out["abs_error"] = {m: abs(out["estimates"][m]["mean"] - out["true_accuracy"]) for m in METHODS}
    return out


def _paired(
    row: dict[str, Any], twin: dict[str, Any], scores: dict[tuple[str, ...], list[Scored]], n_boot: int,
    part: str = "cross_domain",
) -> dict[str, Any]:
    """Gain of ``row`` over ``twin`` on ``part`` (``cross_domain``, or ``in_domain``: the source
    test split) on the seeds both ran, paired row by row."""
    def by_seed(r: dict[str, Any]) -> dict[int, Scored]:
        got = scores[(r["setup"], r["source"], r["target"], part)]
        return {rec["seed"]: s for rec, s in zip(r["per_seed"], got, strict=True)}

    mine, theirs = by_seed(row), by_seed(twin)
    common = sorted(set(mine) & set(theirs))
    same_rows = common and all(np.array_equal(mine[s].y_true, theirs[s].y_true) for s in common)
    if not same_rows:  # cannot pair: difference of the seed means, no interval
        gain = row[part]["accuracy"]["mean"] - twin[part]["accuracy"]["mean"]
        return {"gain": gain, "ci95": None, "seeds": None}
    groups = [(mine[s].y_true, mine[s].proba.argmax(axis=1), theirs[s].proba.argmax(axis=1)) for s in common]
    out = paired_gain(groups, n_boot=n_boot)
    # The two accuracies the gain is the difference of: over the shared seeds, which are not
    # the rows' seed means when one row ran fewer seeds (a seed-0-only DANN against 3 seeds).
    accuracies = [float(np.mean([np.mean(g[i] == g[0]) for g in groups])) for i in (1, 2)]
    return {"gain": out["gain"], "ci95": out["ci95"], "seeds": common, "accuracies": accuracies}


def _verdicts(rows: list[dict[str, Any]], scores: dict[tuple[str, ...], list[Scored]], k: int, n_boot: int) -> None:
    """Adaptation gain (paired) and the negative-transfer verdict of every row (in place)."""
    by_name = {(r["setup"], r["source"], r["target"]): r for r in rows}
    for row in rows:
        cross = row["cross_domain"]
        if row["same_domain"] or "accuracy" not in cross:
            continue
        twin = by_name.get((row["source_only"], row["source"], row["target"])) if row["source_only"] else None
        if twin is not None and "accuracy" in twin["cross_domain"]:
            gain = _paired(row, twin, scores, n_boot)
            row["adaptation_gain"], row["adaptation_gain_ci95"] = gain["gain"], gain["ci95"]
            row["adaptation_gain_seeds"] = gain["seeds"]
            if gain.get("accuracies") is not None:
                row["adaptation_gain_accuracies"] = gain["accuracies"]
            row["negative_transfer"] = twin_verdict(gain["gain"], gain["ci95"], twin["setup"])
            if all("accuracy" in r.get("in_domain", {}) for r in (row, twin)):
                # The same comparison on the source test split: a gain there as well says the
                # adaptation also trained the source task further (self-training's extra rounds),
                # which a cross-domain gain alone cannot tell from adapting to the target.
                source_side = _paired(row, twin, scores, n_boot, part="in_domain")
                row["in_domain_gain"], row["in_domain_gain_ci95"] = source_side["gain"], source_side["ci95"]
        else:
            acc = cross["accuracy"]
            row["negative_transfer"] = majority_verdict(acc["mean"], acc.get("ci95"), cross["majority_baseline"], k)


def label_free_summary(rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """Mean absolute error of each estimator over the cross-domain rows with target labels."""
    used = [r for r in rows if not r["same_domain"] and "abs_error" in (r.get("label_free") or {})]
    out: dict[str, Any] = {
        "method": method,
        "rows": len(used),
        "over": "cross-domain rows with a labeled target (in-domain rows left out: no shift to estimate)",
    }
    if used:
        out["mae"] = {m: float(np.mean([r["label_free"]["abs_error"][m] for r in used])) for m in METHODS}
    return out


def recommendations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One recommended setup per cross-domain (source, target) pair, from the label-free
    estimate of each row's ``method``; ``by_method`` says what every estimator would pick, a
    label-free check of how much the pick depends on the estimator."""
    out = []
    for pair in dict.fromkeys((r["source"], r["target"]) for r in rows if not r["same_domain"]):
        mine = [r for r in rows if (r["source"], r["target"]) == pair and not r["same_domain"]]

        def candidates(method: str | None, mine: list[dict[str, Any]] = mine) -> list[dict[str, Any]]:
            cands = []
            for r in mine:
                lf = r.get("label_free") or {}
                est = lf.get("estimate") if method is None or "estimates" not in lf else lf["estimates"][method]["mean"]
                cands.append({
                    "setup": r["setup"], "estimate": est,
                    "source_val_accuracy": (lf.get("source_val_accuracy") or {}).get("mean"),
                    "accuracy": r["cross_domain"]["accuracy"]["mean"] if "accuracy" in r["cross_domain"] else None,
                })
            return cands

        rec = {"source": pair[0], "target": pair[1], **recommend(candidates(None))}
        if "missing" not in rec:
            rec["by_method"] = {m: recommend(candidates(m)).get("setup") for m in METHODS}
        if rec.get("regret") is not None and rec["best_setup"] != rec["setup"]:
            by_setup = {r["setup"]: r for r in mine}
            paired = shared_seed_regret(by_setup[rec["setup"]], by_setup[rec["best_setup"]])
            if paired is not None:
                rec["regret_shared_seeds"] = paired
        out.append(rec)
    return out


def _seed_accuracies(row: dict[str, Any]) -> dict[int, float]:
    return {
        int(p["seed"]): float(p["cross_domain"]["accuracy"])
        for p in row.get("per_seed") or []
        if "accuracy" in (p.get("cross_domain") or {})
    }


def shared_seed_regret(pick: dict[str, Any], best: dict[str, Any]) -> dict[str, Any] | None:
    """The regret of ``pick`` against ``best`` over the seeds both rows ran, when their seed sets
    differ (a fine-tuned row on seed 0 only against 3-seed means compares unlike things); None
    when the seeds are the same or none is shared.

    Example:
        >>> a = {"per_seed": [{"seed": s, "cross_domain": {"accuracy": x}} for s, x in [(0, 0.80), (1, 0.70)]]}
        >>> b = {"per_seed": [{"seed": 0, "cross_domain": {"accuracy": 0.81}}]}
        >>> shared_seed_regret(a, b)
        {'seeds': [0], 'regret': 0.01}
    """
    mine, theirs = _seed_accuracies(pick), _seed_accuracies(best)
    shared = sorted(set(mine) & set(theirs))
    if not shared or set(mine) == set(theirs):
        return None
    regret = float(np.mean([theirs[s] for s in shared]) - np.mean([mine[s] for s in shared]))
    return {"seeds": shared, "regret": round(regret, 6)}
