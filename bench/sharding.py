"""Frozen encoding across processes: ``torchrun --standalone --nproc_per_node 2`` (each process
encodes its shard with one thread, ``encode_sharded`` gathers the features in input order) vs
one process (torch's default two threads) on the same sentences. Reports the speed-up and
checks that the gathered features equal the one-process ones.

Only the encoding is timed, inside the processes, from a common start (a first collective call
lines them up) to the gathered result; process start and model loading are not. On 2 cores
the speed-up is at most 2x, and less where one process already keeps both cores busy (torch's
matrix multiplies in MiniLM). On a busy machine with autogroup scheduling each session (and each
torchrun worker is one) gets its own CPU share, so two processes can take more than twice the CPU
time of one there: read speed-ups above 2x as a loaded-machine effect, not as parallel scaling.

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
    from textransfer.distributed import end_processes, is_main_process
    from textransfer.encoders.sharded import encode_sharded

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


def _launch(processes: int, threads: int | None, encoder: str, n: int, out: str) -> float:
    here = Path(sys.executable).parent
    script = [os.path.abspath(__file__), "--worker", encoder, str(n), out]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if processes == 1:
        cmd = [sys.executable, *script]
    else:
        cmd = [str(here / "torchrun"), "--standalone", "--nproc_per_node", str(processes), *script]
    # A new session for every launch: torchrun starts its workers in new sessions, and with the
    # kernel's autogroup scheduling a new session gets its own CPU share on a busy machine; a
    # one-process run left in the caller's session would share one with everything else there.
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, start_new_session=True)
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
            # (processes, threads per process): one process as launched by default, one process
            # on one thread (what each of the two sharded processes gets), two processes.
            cases = {"1x default": (1, None), "1x1": (1, 1), "2x1": (2, 1)}
            times: dict[str, list[float]] = {c: [] for c in cases}
            for _ in range(args.repeats):
                for case, (procs, threads) in cases.items():
                    times[case].append(_launch(procs, threads, encoder, n, f"{work}/{encoder}-{procs}.npy"))
            one, two = np.load(f"{work}/{encoder}-1.npy"), np.load(f"{work}/{encoder}-2.npy")
            diff = float(np.abs(one - two).max())
            t = {c: median(ts) for c, ts in times.items()}
            rows.append([encoder, f"{n:,}", round(t["1x default"], 2), round(t["1x1"], 2), round(t["2x1"], 2),
                         round(t["1x default"] / t["2x1"], 2), round(t["1x1"] / t["2x1"], 2), f"{diff:.1e}"])
            print(f"  {encoder}: {t}", file=sys.stderr, flush=True)
    print(
        "## Sharded encoding across processes\n\n`torchrun --standalone --nproc_per_node 2` (1 thread "
        "each) vs one process with the default threads (torch: 2) and one process on 1 thread; "
        f"encoding time only, median of {args.repeats} interleaved launches. Machine: {machine()}\n"
    )
    header = ["encoder", "sentences", "1 process s", "1 process, 1 thread s", "2 processes s",
              "speed-up vs 1 process", "speed-up vs 1 process, 1 thread", "max abs diff vs 1 process"]
    print(table(header, rows))
    for row in rows:
        print(f"- {row[0]}: 2-process speed-up {row[5]}x over one process, {row[6]}x over one single-thread "
              f"process (2 cores: at most 2x expected on an idle machine; no goal); max abs diff {row[7]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
