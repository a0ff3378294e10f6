"""Memory at scale: peak RSS and wall time of encoding 10k, 100k and 1M sentences, streamed to
disk (``encode_streamed``: one chunk in memory at a time) vs the usual in-memory encode of the
same encoder (one array, all inputs tokenised at once), and of ``textransfer predict --input`` on
files of 10k, 100k and 1M lines. Every case runs in a fresh child process, which reports its own
peak RSS (``getrusage``), so one case's memory never hides another's.

The corpus is synthetic: the 13,057 packaged movie and product sentences, repeated in order. The
1M cases use static GloVe 6B 50d mean pooling (~10k sentences/s here); MiniLM (about 200
sentences/s on 2 idle cores) is measured at 10k only.

Run (about 10 minutes on 2 loaded cores; ``make bench`` runs it with these flags)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/memory_at_scale.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import Any

from _common import SyntheticCorpus, bench_encoder, machine, table, verdict

MB = 1024 * 1024


def _rss_now() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def _peak_rss() -> float:
    """Peak RSS of this process in MiB since start, or since the last :func:`_reset_peak`.

    Read from ``VmHWM``: ``getrusage`` also keeps the peaks of threads that have exited (torch's
    and gensim's loader threads), which a reset does not clear.
    """
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return max(kib, 0) / 1024


def _reset_peak() -> tuple[float, float]:
    """Starts a new peak-RSS window (Linux ``clear_refs`` 5); returns (peak so far, RSS now)."""
    before = max(_peak_rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return before, _rss_now()


def child(case: str, encoder: str, n: int, work: str) -> dict[str, Any]:
    """One measurement in this (fresh) process: wall seconds and RSS in MiB.

    Loading the model or vectors has its own peak; the peak of the work itself is measured in a
    window that starts once everything is loaded (``load_peak_mb`` vs ``peak_mb``).
    """
    warnings.filterwarnings("ignore")
    marks: dict[str, float] = {}
    if case == "predict":
        import textransfer.classifier
        from textransfer.cli import main

        load = textransfer.classifier.load

        def load_then_mark(model_dir: str) -> Any:  # the CLI loads the model, then predicts
            clf = load(model_dir)
            clf.encoder.encode(["warm up"])  # static vectors load on first use
            marks["load_peak"], marks["base"] = _reset_peak()
            return clf

        textransfer.classifier.load = load_then_mark
        start = time.perf_counter()
        code = main(["-q", "predict", f"{work}/model", "--input", f"{work}/lines-{n}.txt", "--output", f"{work}/preds.csv"])
        seconds = time.perf_counter() - start  # the whole command, model loading included
        assert code == 0
    else:
        from textransfer.encoders.cache import encode_streamed

        enc = bench_encoder(encoder)
        enc.encode(["warm up: load the vectors or weights"])
        corpus = SyntheticCorpus(n)
        marks["load_peak"], marks["base"] = _reset_peak()
        start = time.perf_counter()
        if case == "streamed":
            feats = encode_streamed(enc, corpus, f"{work}/feats.npy", batch_size=64)
        else:
            feats = enc.encode(corpus[0:n], batch_size=64)
        seconds = time.perf_counter() - start
        assert feats.shape == (n, enc.dim)
    return {"seconds": seconds, "base_mb": marks["base"], "load_peak_mb": marks["load_peak"], "peak_mb": _peak_rss()}


def _run_child(case: str, encoder: str, n: int, work: str) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", case, encoder, str(n), work]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"{case} {encoder} {n} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _prepare(work: str, sizes: Sequence[int]) -> None:
    """A saved frozen GloVe + logreg model (trained on the movie sentences) and the input files."""
    import textransfer
    from textransfer.data import load

    strategy = textransfer.create_strategy("frozen")
    clf = strategy.fit(bench_encoder("glove"), textransfer.create_head("logreg"), load("movies"))
    clf.save(f"{work}/model")
    corpus = SyntheticCorpus(max(sizes))
    for n in sizes:
        with open(f"{work}/lines-{n}.txt", "w", encoding="utf-8") as f:
            for start in range(0, n, 100_000):
                f.write("".join(t.replace("\n", " ") + "\n" for t in corpus[start : min(n, start + 100_000)]))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--minilm-n", type=int, default=10_000, help="sentences for the MiniLM case (0: skip)")
    p.add_argument("--in-memory-max", type=int, default=1_000_000, help="largest size for the in-memory reference")
    p.add_argument("--child", nargs=4, metavar=("CASE", "ENCODER", "N", "WORKDIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        case, encoder, n, work = args.child
        print(json.dumps(child(case, encoder, int(n), work)))
        return 0
    warnings.filterwarnings("ignore")
    sizes = sorted(args.sizes)
    rows: list[list[Any]] = []
    peaks: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as work:
        _prepare(work, sizes)
        plan = [(case, "glove", n) for n in sizes for case in ("streamed", "in-memory", "predict")]
        plan = [c for c in plan if not (c[0] == "in-memory" and c[2] > args.in_memory_max)]
        if args.minilm_n:
            plan.append(("streamed", "minilm", args.minilm_n))
        for case, encoder, n in plan:
            r = _run_child(case, encoder, n, work)
            peaks[(f"{case} {encoder}", n)] = r["peak_mb"]
            label = "textransfer predict --input (GloVe model)" if case == "predict" else f"{case} encode, {encoder}"
            process_peak = max(r["peak_mb"], r["load_peak_mb"])
            peaks[(f"process {case} {encoder}", n)] = process_peak
            rows.append([label, f"{n:,}", round(r["seconds"], 1), round(n / r["seconds"]), round(r["load_peak_mb"]), round(r["base_mb"]), round(r["peak_mb"]), round(process_peak)])
            print(f"  {label} {n}: {r['seconds']:.1f} s, peak {r['peak_mb']:.0f} MiB", file=sys.stderr, flush=True)
    print(
        "## Memory at scale\n\nOne fresh process per row; RSS in MiB. `load peak`: while loading the "
        "vectors or model; `after load`: RSS when the work starts; `work peak`: peak while encoding or "
        "predicting (a new peak window opened after loading); `process peak`: the larger of the two. "
        f"predict's wall time includes loading the model. Machine: {machine()}\n"
    )
    print(table(["case", "rows", "wall s", "rows/s", "load peak", "after load", "work peak", "process peak"], rows))
    print()
    big, mid = sizes[-1], (sizes[-2] if len(sizes) > 1 else sizes[-1])
    for name in ("streamed glove", "predict glove", "in-memory glove"):
        for kind in ("", "process "):
            key = kind + name
            if (key, big) in peaks and (key, mid) in peaks:
                ratio = peaks[(key, big)] / peaks[(key, mid)]
                goal = "reference (no goal)" if "in-memory" in name else verdict(ratio, 1.2, higher_is_better=False)
                what = "process peak" if kind else "work peak"
                print(f"- {name}, {what} RSS at {big:,} / at {mid:,} = {ratio:.2f}: {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
