"""Runs every benchmark in its own process and writes ``docs/benchmarks.md``.

Run (about 6 minutes on 2 cores; this is what ``make bench`` does)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/run_all.py
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
from collections.abc import Sequence

from _common import _ROOT, machine

# script, flags: small enough for a shared 2-core machine; medians of interleaved repeats.
BENCHES = [
    ("encode_vs_sentence_transformers.py", ["--n", "1000", "--repeats", "3", "--accuracy"]),
    ("static_pooling.py", ["--repeats", "5"]),
    ("feature_cache.py", ["--n", "500", "--repeats", "5"]),
    ("load_time.py", ["--repeats", "3"]),
]

NOT_DONE = """## Not measured yet

- Memory at scale (10k / 100k / 1M sentences, peak RSS, `textransfer predict --input` on a 1M-line
  file): `textransfer.encoders.cache.encode_streamed` writes features chunk by chunk into a
  memory-mapped `.npy` (tested equal to in-memory features), but no RSS benchmark exists yet.
- Multi-process sharding under `torchrun` / `accelerate` (`split_between_processes`): not done.
"""


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default=os.path.join(_ROOT, "docs", "benchmarks.md"))
    args = p.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    sections, failed = [], []
    for script, flags in BENCHES:
        cmd = [sys.executable, os.path.join(here, script), *flags]
        print("running", " ".join(cmd[1:]), flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            failed.append(script)
            sections.append(f"## {script}: FAILED\n\n```\n{done.stderr[-2000:]}\n```")
            continue
        command = f"HF_HUB_OFFLINE=1 .venv/bin/python bench/{script} {' '.join(flags)}"
        sections.append(f"{done.stdout.strip()}\n\nCommand: `{command}`")
    header = (
        "# Benchmarks\n\nWritten by `make bench` (`bench/run_all.py`) on "
        f"{datetime.date.today().isoformat()}. Each script runs textransfer and its peer on the "
        "same work in one process run (load_time: fresh processes) and reports medians of "
        "interleaved repeats and their ratios; ratios hold better than absolute numbers on a "
        f"shared machine.\n\nMachine: {machine()}\n"
    )
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("\n\n".join([header, *sections, NOT_DONE]))
    print(f"wrote {args.output}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
