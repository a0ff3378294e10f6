"""Runs every benchmark in its own process and writes ``docs/benchmarks.md``.

Run (about 30 minutes on 2 idle cores before the ONNX, serving and evaluate scripts joined, which
their docstrings put at a few minutes more; over an hour on a loaded machine; this is what
``make bench`` does)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/run_all.py
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
from collections.abc import Sequence

from _common import _ROOT, machine

# script, flags: the sizes (3,000 product sentences; 10k / 100k / 1M rows) where a 2-core
# machine allows; medians of interleaved repeats.
BENCHES = [
    ("encode_vs_sentence_transformers.py", ["--n", "3000", "--repeats", "5", "--accuracy"]),
    ("static_pooling.py", ["--repeats", "5"]),
    ("feature_cache.py", ["--n", "500", "--repeats", "5"]),
    ("load_time.py", ["--repeats", "3"]),
    ("memory_at_scale.py", ["--sizes", "10000", "100000", "1000000", "--minilm-n", "10000"]),
    ("sharding.py", ["--glove-n", "200000", "--minilm-n", "500", "--repeats", "2"]),
    ("onnx_vs_torch.py", ["--n", "500", "--repeats", "5", "--train-n", "2000"]),
    ("serve_load.py", ["--seconds", "5", "--requests", "400", "--clients", "4"]),
    ("evaluate_memory.py", ["--sizes", "10000", "100000"]),
    ("finetune_vs_trainer.py", ["--subset", "1500", "--repeats", "3", "--mixed-precision", "auto"]),
    ("train_step_speed.py", ["--steps", "8", "--repeats", "3", "--compile"]),
]

# One-minute load average before each script, as written into its section. The benchmarks keep
# up to 2 threads busy themselves, and the previous script's load decays over a minute: above
# cores + 1, something else was running.
_LOAD_RE = re.compile(r"Load average before: ([0-9.]+)")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (5 min: {five:.1f})"


def _summary(sections: list[str]) -> str:
    """Every goal line the scripts printed (``MET`` / ``MISSED``), in one list."""
    lines = [
        ln for sec in sections for ln in sec.splitlines()
        if ln.startswith("- ") and ("MET (goal" in ln or "MISSED (goal" in ln)
    ]
    return "## Summary: every goal, met or missed\n\n" + "\n".join(lines)


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
        load_before = _load()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            failed.append(script)
            sections.append(f"## {script}: FAILED\n\n```\n{done.stderr[-2000:]}\n```")
            continue
        command = f"HF_HUB_OFFLINE=1 .venv/bin/python bench/{script} {' '.join(flags)}"
        sections.append(
            f"{done.stdout.strip()}\n\nCommand: `{command}`. Load average before: {load_before}; after: {_load()}."
        )
    loads = [float(x) for sec in sections for x in _LOAD_RE.findall(sec)]
    busy = max(loads, default=0.0) > (os.cpu_count() or 1) + 1
    condition = (
        "**The machine was shared and loaded** (load averages above its core count + 1 before "
        "some scripts, below): absolute times are slower than on an idle machine and only the ratios measured "
        "within one run mean much."
        if busy
        else "The machine was otherwise idle (load averages per script below)."
    )
    header = (
        "# Benchmarks\n\nWritten by `make bench` (`bench/run_all.py`) on "
        f"{datetime.date.today().isoformat()}. Each script runs textransfer and its peer on the "
        "same work in one process run (load_time, memory and sharding: fresh processes) and reports "
        f"medians of interleaved repeats and their ratios. {condition}\n\nMachine: {machine()}\n"
    )
    # The summary lists this run's goals only: the notes quote other runs, some on other CPU kinds.
    summary = _summary(sections)
    notes = os.path.join(_ROOT, "docs", "benchmark-notes.md")
    if os.path.exists(notes):  # hand-written observations, kept across runs
        with open(notes, encoding="utf-8") as f:
            sections.append(f.read().strip())
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("\n\n".join([header, summary, *sections]) + "\n")
    print(f"wrote {args.output}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
