"""How well does each label-free estimator predict target accuracy? Runs cross-domain configs,
keeps the probabilities every estimate is computed from, and scores every estimator on them.

A run records, per setup, source -> target pair and seed, the source-validation probabilities and
labels and the target test probabilities and labels (``<out>/arrays/*.npz``, plain arrays, loaded
with ``allow_pickle=False``). ``--from`` scores arrays recorded earlier without training again.
The target labels are read only to measure each estimator's error, never to fit it.

    HF_HUB_OFFLINE=1 python bench/label_free_estimators.py configs/label_free_dev_pairs.yaml --out /tmp/lf/dev
    HF_HUB_OFFLINE=1 python bench/label_free_estimators.py configs/movies_to_products.yaml \
        --set evaluation.target_only=false --set evaluation.n_boot=100 --out /tmp/lf/demo
    python bench/label_free_estimators.py --from /tmp/lf/dev --skip "movies->products"

(the development config also runs movies -> products, the held-out pair: ``--skip`` leaves it out).

Prints a table of mean absolute errors over rows (a row: setup and pair, its seeds averaged first, as
in the report; table rows: estimators; columns: each group and all rows), the
row-by-row estimates with ``--rows``, and writes ``<out>/estimates.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the checkout on sys.path)
import numpy as np


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def record(config: str, overrides: list[str], out: Path) -> None:
    """Runs ``config`` with the runner's label-free step wrapped to save its inputs."""
    from textransfer.experiments.crossdomain import run as xd

    arrays = out / "arrays"
    arrays.mkdir(parents=True, exist_ok=True)
    original, run_pair = xd.CrossDomainRun.label_free, xd.CrossDomainRun.run_pair

    def pair(self: Any, setup: Any, source: str, target: str, doms: Any, seed: int, oracles: Any) -> None:
        self.bench_seed = seed
        run_pair(self, setup, source, target, doms, seed, oracles)

    def label_free(self: Any, clf: Any, src: Any, tgt: Any, k: tuple[str, ...], same: bool,
                   val_proba: Any) -> dict[str, Any]:
        result = original(self, clf, src, tgt, k, same, val_proba)
        if same or src.val is None or tgt.test is None:
            return result
        proba, seed = self.scores[(*k, "cross_domain")][-1].proba, self.bench_seed
        np.savez(
            arrays / f"{_safe(k[0])}__{_safe(k[1])}__{_safe(k[2])}__{seed}.npz",
            source_val_probs=np.asarray(val_proba, dtype=np.float64),
            source_val_labels=np.asarray(clf.label_map.encode(src.val.labels or []), dtype=np.int64),
            target_probs=np.asarray(proba, dtype=np.float64),
            target_labels=np.asarray(clf.label_map.encode(tgt.test.labels or []), dtype=np.int64),
        )
        return result

    xd.CrossDomainRun.label_free = label_free  # type: ignore[method-assign]
    xd.CrossDomainRun.run_pair = pair  # type: ignore[method-assign]
    try:
        xd.run_crossdomain(config, [*overrides, f"output_dir={out / 'run'}"])
    finally:
        xd.CrossDomainRun.label_free = original  # type: ignore[method-assign]
        xd.CrossDomainRun.run_pair = run_pair  # type: ignore[method-assign]


def score(dirs: list[Path], methods: list[str]) -> list[dict[str, Any]]:
    """Every estimator on every recorded row of ``dirs``."""
    from textransfer.evaluation.label_free import label_free_estimates

    rows = []
    for d in dirs:
        for f in sorted((d / "arrays").glob("*.npz")):
            a = np.load(f, allow_pickle=False)
            est = label_free_estimates(a["source_val_probs"], a["source_val_labels"], a["target_probs"])
            true = float(np.mean(a["target_probs"].argmax(axis=1) == a["target_labels"]))
            setup, source, target, seed = f.stem.split("__")
            rows.append({
                "dir": str(d), "setup": setup, "pair": f"{source}->{target}", "seed": int(seed), "true": true,
                "no_shift": est["source_val_accuracy"],
                **{m: est["estimates"][m] for m in methods if m in est["estimates"]},
                "prediction_shift": est["prediction_shift"],
            })
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", nargs="?", help="a crossdomain config to run and record")
    ap.add_argument("--set", action="append", default=[], dest="overrides", help="config override (repeatable)")
    ap.add_argument("--out", type=Path, help="where to record (with a config) and write estimates.json")
    ap.add_argument("--from", nargs="*", type=Path, default=[], dest="sources", help="recorded dirs to score")
    ap.add_argument("--group", action="append", default=[], help="NAME=DIR: a column of the table (repeatable)")
    ap.add_argument("--skip", action="append", default=[], help="SOURCE->TARGET pair to leave out (repeatable)")
    ap.add_argument("--rows", action="store_true", help="print every row's estimates")
    args = ap.parse_args(argv)
    if args.config:
        if args.out is None:
            ap.error("--out is required with a config")
        record(args.config, args.overrides, args.out)
    dirs = [*args.sources, *([args.out] if args.config else [])]
    if not dirs:
        ap.error("give a config to run or --from recorded dirs")
    from textransfer.evaluation.label_free import METHODS

    methods = ["no_shift", *METHODS]
    rows = [r for r in score(dirs, list(METHODS)) if r["pair"] not in args.skip]
    groups = {"all": [str(d) for d in dirs]}
    for g in args.group:
        name, _, d = g.partition("=")
        groups[name] = [str(Path(d))]
    # As the report does: each row's seeds averaged first, then the mean absolute error over rows.
    by_row: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_row.setdefault((r["dir"], r["pair"], r["setup"]), []).append(r)
    header = "| estimator | " + " | ".join(
        f"{g} ({sum(k[0] in ds for k in by_row)} rows)" for g, ds in groups.items()) + " |"
    print(header)
    print("|---" * (len(groups) + 1) + "|")
    for m in methods:
        cells = []
        for ds in groups.values():
            errs = [abs(np.mean([r[m] - r["true"] for r in seeds])) for k, seeds in by_row.items() if k[0] in ds]
            cells.append(f"{np.mean(errs):.3f}" if errs else "-")
        print(f"| {m} | " + " | ".join(cells) + " |")
    if args.rows:
        for r in rows:
            print(f"{r['pair']:24s} {r['setup']:34s} s{r['seed']} true {r['true']:.3f} shift {r['prediction_shift']:.2f} "
                  + " ".join(f"{m} {r[m]:+.3f}" for m in METHODS)
                  + f" no_shift {r['no_shift']:.3f}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "estimates.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
