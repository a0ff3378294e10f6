"""Frozen encoding across processes: ``torchrun --standalone --nproc_per_node 2`` (each process
encodes its shard with one thread, ``encode_sharded`` gathers the features in input order) vs
one process (torch's default two threads) on the same sentences. Reports the speed-up and
checks that the gathered features equal the one-process ones.

Only the encoding is timed, inside the processes, from a common start (a first collective call
lines them up) to the gathered result; process start and model loading are not. On 2 cores
the speed-up is at most 2x, and less where one process already keeps both cores busy (torch's
matrix multiplies in MiniLM).

Run (about 3 minutes on 2 loaded cores; ``make bench`` runs it with these flags)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/sharding.py --glove-n 200000 --minilm-n 1000 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _common import SyntheticCorpus, bench_encoder, machine, median, table


def worker(encoder: str, n: int, out: str) -> None:
    """Encodes ``n`` synthetic sentences (sharded under torchrun); the main process saves them."""
    from textransfer.training.sharding import encode_sharded, end_processes, is_main_process

    warnings.filterwarnings("ignore")
    enc = bench_encoder(encoder)
    texts = SyntheticCorpus(n)[0:n]
    encode_sharded(enc, texts[:64], batch_size=64)  # loads weights; a collective: all start together
    start = time.perf_counter()
    feats = encode_sharded(enc, texts, batch_size=64)
    seconds = time.perf_counter() - start
    if is_main_process():
        np.save(out, feats)
        print("RESULT " + json.dumps({"seconds": seconds}), flush=True)
    end_processes()


def _launch(processes: int, encoder: str, n: int, out: str) -> float:
    here = Path(sys.executable).parent
    script = [os.path.abspath(__file__), "--worker", encoder, str(n), out]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if processes == 1:
        cmd = [sys.executable, *script]
    else:
        cmd = [str(here / "torchrun"), "--standalone", "--nproc_per_node", str(processes), *script]
        env["OMP_NUM_THREADS"] = "1"  # one thread per process: the two processes share 2 cores
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{processes} processes, {encoder}: failed\n{done.stderr[-2000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return float(json.loads(line.removeprefix("RESULT "))["seconds"])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--glove-n", type=int, default=200_000)
    p.add_argument("--minilm-n", type=int, default=1_000)
    p.add_argument("--repeats", type=int, default=2, help="interleaved launches of each case")
    p.add_argument("--worker", nargs=3, metavar=("ENCODER", "N", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2])
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for encoder, n in (("glove", args.glove_n), ("minilm", args.minilm_n)):
            if not n:
                continue
            times: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(args.repeats):
                for procs in (1, 2):
                    times[procs].append(_launch(procs, encoder, n, f"{work}/{encoder}-{procs}.npy"))
            one, two = np.load(f"{work}/{encoder}-1.npy"), np.load(f"{work}/{encoder}-2.npy")
            diff = float(np.abs(one - two).max())
            t1, t2 = median(times[1]), median(times[2])
            rows.append([encoder, f"{n:,}", round(t1, 2), round(t2, 2), round(t1 / t2, 2), f"{diff:.1e}"])
            print(f"  {encoder}: 1 process {t1:.2f} s, 2 processes {t2:.2f} s", file=sys.stderr, flush=True)
    print(
        "## Sharded encoding across processes\n\n`torchrun --standalone --nproc_per_node 2` (1 thread "
        "each) vs one process (2 torch threads); encoding time only, median of "
        f"{args.repeats} interleaved launches. Machine: {machine()}\n"
    )
    print(table(["encoder", "sentences", "1 process s", "2 processes s", "speed-up", "max abs diff vs 1 process"], rows))
    for row in rows:
        print(f"- {row[0]}: 2-process speed-up {row[4]}x over one process (2 cores: at most 2x; no goal), max abs diff {row[5]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
