"""Alternatives to the report's label-free estimator and recommendation, scored on arrays that
``bench/label_free_estimators.py`` recorded (no training, no target label used except to score).

Three questions, each against COT (the report's estimator) on the same rows:

1. **Agreement between the report's models.** Every setup of a pair and seed predicts the same
   target rows, and for two classes two models disagree exactly where one of them is wrong, so
   disagreements are label-free evidence about errors:
   - ``joint``: all models' target errors at once, least squares on the pairwise disagreements,
     each pair's error correlation taken from source validation, with a penalty ``lam`` pulling
     each error toward COT's (Platanios et al. 2014 style);
   - ``indep-ref``: agreement with the highest-COT model of another encoder, read under
     independent errors: ``acc = (agree - err_ref) / (1 - 2 err_ref)``;
   - ``phi-ref``: the same reference, with the pair's error correlation from source validation,
     used only against a reference estimated at least ``margin`` higher (else COT).
2. **Label-shift correction as an adaptation**: EM prior adjustment (Saerens et al. 2002) and
   BBSE (Lipton et al. 2018) on temperature-scaled probabilities; the change in target accuracy.
3. **The recommendation rule**: the regret of picking the highest estimate of each estimator,
   of the source validation accuracy (``no_shift``), and of their mean with COT (``blend``), per
   pair and seed and on seed means (as the report does).

    python bench/label_free_alternatives.py /tmp/lf/dev --skip "movies->products"
    python bench/label_free_alternatives.py /tmp/lf/demo

Two classes only (what the packaged corpora have); rows of other shapes are left out.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from collections import defaultdict
from pathlib import Path

import _common  # noqa: F401  (puts the checkout on sys.path)
import numpy as np


def load(folder: Path, skip: list[str]) -> dict[tuple[str, str, int], dict[str, dict[str, np.ndarray]]]:
    """``{(source, target, seed): {setup: arrays}}`` of the recorded ``.npz`` files."""
    groups: dict[tuple[str, str, int], dict[str, dict[str, np.ndarray]]] = defaultdict(dict)
    for f in sorted((folder / "arrays").glob("*.npz")):
        setup, source, target, seed = f.stem.split("__")
        if f"{source}->{target}" in skip:
            continue
        a = np.load(f, allow_pickle=False)
        if a["target_probs"].shape[1] == 2:
            groups[(source, target, int(seed))][setup] = {k: a[k] for k in a.files}
    return groups


def _family(setup: str) -> str:
    """The encoder family a setup's features come from (MiniLM's transformer, sentence and
    fine-tuned rows are one family: their errors are alike)."""
    name = setup.split("+")[0]
    return re.sub(r"-(ft|transformer|sentence)$", "", name)


def _phi(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0


def _disagreement(ei: float, ej: float, phi: float) -> float:
    """P(exactly one of two models is wrong) for error rates ``ei``, ``ej`` whose error
    indicators correlate at ``phi`` (clipped to what the rates allow)."""
    both = ei * ej + phi * np.sqrt(max(ei * (1 - ei), 0.0) * max(ej * (1 - ej), 0.0))
    both = min(max(both, max(0.0, ei + ej - 1)), min(ei, ej))
    return ei + ej - 2 * both


def joint(models: dict[str, dict[str, np.ndarray]], cot: dict[str, float], lam: float) -> dict[str, float]:
    from scipy.optimize import minimize

    names = list(models)
    y = models[names[0]]["source_val_labels"]
    err_src = {n: (models[n]["source_val_probs"].argmax(1) != y).astype(float) for n in names}
    pred = {n: models[n]["target_probs"].argmax(1) for n in names}
    pairs = list(itertools.combinations(range(len(names)), 2))
    phi = {(i, j): _phi(err_src[names[i]], err_src[names[j]]) for i, j in pairs}
    seen = {(i, j): float((pred[names[i]] != pred[names[j]]).mean()) for i, j in pairs}
    start = np.array([1 - cot[n] for n in names])

    def loss(e: np.ndarray) -> float:
        fit = sum((_disagreement(e[i], e[j], phi[i, j]) - seen[i, j]) ** 2 for i, j in pairs)
        return float(fit + lam * np.sum((e - start) ** 2) / len(names))

    e = minimize(loss, start, bounds=[(0.0, 0.6)] * len(names), method="L-BFGS-B").x
    return {n: float(1 - x) for n, x in zip(names, e, strict=True)}


def reference(models: dict[str, dict[str, np.ndarray]], cot: dict[str, float], margin: float | None) -> dict[str, float]:
    """``indep-ref`` (``margin`` None) or ``phi-ref``, see the module docstring."""
    from scipy.optimize import brentq

    y = models[next(iter(models))]["source_val_labels"]
    out = {}
    for n in models:
        others = [m for m in models if _family(m) != _family(n)]
        if not others:
            out[n] = cot[n]
            continue
        ref = max(others, key=lambda m: cot[m])
        seen = float((models[n]["target_probs"].argmax(1) != models[ref]["target_probs"].argmax(1)).mean())
        e_ref = 1 - cot[ref]
        if margin is None:
            out[n] = (1 - seen - e_ref) / (1 - 2 * e_ref)
            continue
        if cot[ref] < cot[n] + margin:
            out[n] = cot[n]
            continue
        phi = _phi((models[n]["source_val_probs"].argmax(1) != y).astype(float),
                   (models[ref]["source_val_probs"].argmax(1) != y).astype(float))
        def gap(e: float, e_ref: float = e_ref, phi: float = phi, seen: float = seen) -> float:
            return _disagreement(e, e_ref, phi) - seen

        grid = np.linspace(1e-4, 0.6, 600)
        f = [gap(e) for e in grid]
        roots = [brentq(gap, grid[i], grid[i + 1]) for i in range(len(grid) - 1) if f[i] * f[i + 1] < 0]
        out[n] = 1 - min(roots, key=lambda r: abs(r - (1 - cot[n]))) if roots else cot[n]
    return out


def label_shift(a: dict[str, np.ndarray]) -> tuple[float, float]:
    """Target accuracy change of EM and BBSE prior correction."""
    from textransfer.evaluation.label_free import fit_temperature, temperature_scale

    ps, ys, pt, yt = a["source_val_probs"], a["source_val_labels"], a["target_probs"], a["target_labels"]
    t = fit_temperature(ps, ys)
    ps, pt = temperature_scale(ps, t), temperature_scale(pt, t)
    prior_s = np.bincount(ys, minlength=2) / len(ys)

    def adjusted(prior: np.ndarray) -> np.ndarray:
        q = pt * (prior / prior_s)
        return q / q.sum(1, keepdims=True)

    prior = prior_s.copy()
    for _ in range(200):  # EM: the target prior that the adjusted posteriors average to
        new = adjusted(prior).mean(0)
        if np.abs(new - prior).max() < 1e-7:
            break
        prior = new
    confusion = np.zeros((2, 2))
    np.add.at(confusion, (ps.argmax(1), ys), 1.0 / len(ys))
    mu = np.bincount(pt.argmax(1), minlength=2) / len(pt)
    w = np.clip(np.linalg.lstsq(confusion, mu, rcond=None)[0] / prior_s, 0, None)
    prior_b = w * prior_s / (w * prior_s).sum()
    base = float((pt.argmax(1) == yt).mean())
    return (float((adjusted(prior).argmax(1) == yt).mean()) - base,
            float((adjusted(prior_b).argmax(1) == yt).mean()) - base)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recorded", type=Path, help="a folder written by bench/label_free_estimators.py --out")
    ap.add_argument("--skip", action="append", default=[], help="SOURCE->TARGET pair to leave out (repeatable)")
    ap.add_argument("--margin", type=float, default=0.08, help="phi-ref: how much higher the reference's COT must be")
    args = ap.parse_args(argv)
    from textransfer.evaluation.label_free import label_free_estimates

    groups = load(args.recorded, args.skip)
    if not groups:
        ap.error(f"no two-class arrays under {args.recorded / 'arrays'}")
    names = ["cot", "joint lam=1", "joint lam=0.1", "joint lam=0.01", "indep-ref", f"phi-ref margin {args.margin}"]
    est: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    shift: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    picks: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
    for (source, target, seed), models in groups.items():
        pair = f"{source}->{target}"
        full = {n: label_free_estimates(a["source_val_probs"], a["source_val_labels"], a["target_probs"])
                for n, a in models.items()}
        cot = {n: full[n]["estimates"]["cot"] for n in models}
        rows = {"cot": cot, "indep-ref": reference(models, cot, None),
                f"phi-ref margin {args.margin}": reference(models, cot, args.margin)}
        for lam in (1.0, 0.1, 0.01):
            rows[f"joint lam={lam:g}"] = joint(models, cot, lam) if len(models) >= 3 else cot
        picks[(pair, seed)] = {}
        for n, a in models.items():
            true = float((a["target_probs"].argmax(1) == a["target_labels"]).mean())
            est[(pair, n)]["true"].append(true)
            for name in names:
                est[(pair, n)][name].append(rows[name][n])
            shift[(pair, n)].append(label_shift(a))
            picks[(pair, seed)][n] = {"true": true, "no_shift": full[n]["source_val_accuracy"],
                                      **full[n]["estimates"]}
    print(f"## {args.recorded}: {len(est)} rows (setup and pair, seeds averaged), "
          f"{len(picks)} pair-seed cases{'; left out: ' + ', '.join(args.skip) if args.skip else ''}\n")
    print("| estimator | MAE |\n|---|---|")
    for name in names:
        errs = [abs(np.mean(v[name]) - np.mean(v["true"])) for v in est.values()]
        print(f"| {name} | {np.mean(errs):.3f} |")
    em = np.array([np.mean([s[0] for s in v]) for v in shift.values()])
    bbse = np.array([np.mean([s[1] for s in v]) for v in shift.values()])
    print(f"\nLabel-shift correction, change in target accuracy over the {len(em)} rows: EM mean {em.mean():+.3f} "
          f"(worst {em.min():+.3f}, better on {int((em > 0.001).sum())}), BBSE mean {bbse.mean():+.3f} "
          f"(worst {bbse.min():+.3f}, better on {int((bbse > 0.001).sum())})")
    rules = ["cot", "ac", "doc", "no_shift", "blend"]
    per_case: dict[str, list[float]] = defaultdict(list)
    per_pair: dict[str, list[float]] = defaultdict(list)
    by_pair: dict[str, list[dict[str, dict[str, float]]]] = defaultdict(list)
    for (pair, _), rows_of in picks.items():
        for r in rows_of.values():
            r["blend"] = (r["cot"] + r["no_shift"]) / 2
        best = max(r["true"] for r in rows_of.values())
        for rule in rules:
            per_case[rule].append(best - rows_of[max(rows_of, key=lambda n, rule=rule: rows_of[n][rule])]["true"])
        by_pair[pair].append(rows_of)
    for cases in by_pair.values():
        setups = set.intersection(*(set(c) for c in cases))
        mean = {n: {k: float(np.mean([c[n][k] for c in cases])) for k in ["true", *rules]} for n in setups}
        best = max(m["true"] for m in mean.values())
        for rule in rules:
            per_pair[rule].append(best - mean[max(mean, key=lambda n, rule=rule: mean[n][rule])]["true"])
    print("\n| recommend the highest | regret, mean over pair-seed cases | picks the best | regret, seed means per pair |")
    print("|---|---|---|---|")
    for rule in rules:
        v = np.array(per_case[rule])
        print(f"| {rule} | {v.mean():.4f} | {int((v == 0).sum())}/{len(v)} | {np.mean(per_pair[rule]):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
