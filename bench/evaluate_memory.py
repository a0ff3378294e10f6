"""``textransfer.evaluate`` on labeled files of 10k and 100k lines: wall time and peak RSS.

Evaluation reads the file in chunks (the reader of ``predict --input``) and keeps per row only
the true class id and the probability row, so the work's peak memory should not grow with the
file: the goal is peak RSS at 100k / peak RSS at 10k <= 1.2. Each size runs in a fresh child
process that reports its own peak (``VmHWM``; a new peak window opens once the model and its
vectors are loaded, as in ``memory_at_scale.py``). The evaluation is the full one: metrics,
1000-resample bootstrap intervals, ECE, and report.md, metrics.json and the two figures written.

Model: frozen GloVe 6B 50d (mean pooling) + logistic regression trained on the packaged movie
sentences. Inputs: CSV files (``text,label``) of the 13,057 packaged movie and product sentences
with their labels, repeated in order.

Run (about 2 minutes on 2 cores)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/evaluate_memory.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import Any

from _common import bench_encoder, machine, table, verdict
from memory_at_scale import _peak_rss, _reset_peak


def child(n: int, work: str) -> dict[str, Any]:
    """One evaluation in this (fresh) process: seconds, peaks in MiB and the accuracy."""
    warnings.filterwarnings("ignore")
    import textransfer

    clf = textransfer.load(f"{work}/model")
    clf.encoder.encode(["warm up: load the vectors"])
    load_peak, base = _reset_peak()
    start = time.perf_counter()
    result = textransfer.evaluate(clf, f"{work}/labeled-{n}.csv", output_dir=f"{work}/eval-{n}")
    seconds = time.perf_counter() - start
    assert result.metrics["n"] == n
    return {"seconds": seconds, "base_mb": base, "load_peak_mb": load_peak, "peak_mb": _peak_rss(),
            "accuracy": result.metrics["accuracy"]}


def _run_child(n: int, work: str) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(n), work]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"evaluate {n} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _prepare(work: str, sizes: Sequence[int]) -> None:
    """The saved GloVe + logreg model and one labeled CSV per size."""
    import textransfer
    from textransfer.data import load

    movies, products = load("movies"), load("products")
    clf = textransfer.create_strategy("frozen").fit(bench_encoder("glove"), textransfer.create_head("logreg"), movies)
    clf.save(f"{work}/model")
    rows = list(zip(movies.texts + products.texts, movies.labels + products.labels, strict=True))
    for n in sizes:
        with open(f"{work}/labeled-{n}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            w.writerows(rows[i % len(rows)] for i in range(n))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--child", nargs=2, metavar=("N", "WORKDIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1])))
        return 0
    warnings.filterwarnings("ignore")
    sizes = sorted(args.sizes)
    rows, peaks = [], {}
    with tempfile.TemporaryDirectory() as work:
        _prepare(work, sizes)
        for n in sizes:
            r = _run_child(n, work)
            process_peak = max(r["peak_mb"], r["load_peak_mb"])
            peaks[n] = (r["peak_mb"], process_peak)
            rows.append([f"{n:,}", round(r["seconds"], 1), round(n / r["seconds"]), round(r["load_peak_mb"]),
                         round(r["base_mb"]), round(r["peak_mb"]), round(process_peak), round(r["accuracy"], 4)])
            print(f"  evaluate {n}: {r['seconds']:.1f} s, work peak {r['peak_mb']:.0f} MiB", file=sys.stderr, flush=True)
    print(
        "## textransfer evaluate: memory and time\n\nOne fresh process per row; RSS in MiB. `load peak`: while "
        "loading the model and its vectors; `after load`: RSS when the evaluation starts; `work peak`: peak "
        "while evaluating (read, predict, score, bootstrap, write report and figures); `process peak`: the "
        f"larger of the two. Machine: {machine()}\n"
    )
    print(table(["rows", "wall s", "rows/s", "load peak", "after load", "work peak", "process peak", "accuracy"], rows))
    print()
    if len(sizes) > 1:
        big, small = sizes[-1], sizes[0]
        for i, what in ((0, "work peak"), (1, "process peak")):
            ratio = peaks[big][i] / peaks[small][i]
            print(f"- {what} RSS at {big:,} / at {small:,} = {ratio:.2f}: {verdict(ratio, 1.2, higher_is_better=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
