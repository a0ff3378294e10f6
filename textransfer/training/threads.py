"""torch's CPU threads during a fit: ``training.threads: null | N | auto``.

torch runs one OpenMP thread per core and its parallel regions end in a barrier: when other
processes keep some of those cores busy, every matrix multiply waits for the thread that lost
its core. On a shared 2-core Xeon, with other work running (load average ~8), the MiniLM
fine-tuning step ran at 0.26x with 2 threads against 1 (``bench/train_step_speed.py``), while
an idle machine wants both. ``auto`` counts the cores that other processes are using *now*
(runnable tasks in ``/proc/loadavg`` minus this process's own running threads, the median of a
few samples over ~0.1 s) and gives torch the rest, at least one. Without ``/proc`` (not Linux),
or under several processes (torchrun sets ``OMP_NUM_THREADS`` per process), ``auto`` leaves
torch's setting alone.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from textransfer.distributed import is_multi_process

logger = logging.getLogger("textransfer.training")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers, taskset)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _own_running_threads() -> int:
    n = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii", errors="replace") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        n += state == "R"
    return max(n, 1)


def busy_elsewhere(samples: int = 5, interval: float = 0.02, loadavg: str = "/proc/loadavg") -> float | None:
    """Cores that other processes are running on now (median of ``samples``), or None where
    ``loadavg`` (its 4th field: runnable tasks / all tasks) is missing."""
    counts = []
    for i in range(samples):
        try:
            with open(loadavg, encoding="ascii") as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return None
        counts.append(max(0, running - _own_running_threads()))
        if i + 1 < samples:
            time.sleep(interval)
    return float(statistics.median(counts))


def auto_threads(current: int) -> int:
    """The thread count ``auto`` picks: the cores nobody else is using, between 1 and ``current``."""
    if is_multi_process():
        return current
    busy = busy_elsewhere()
    if busy is None:
        return current
    free = int(_cores() - busy)
    return max(1, min(current, free))


@contextmanager
def torch_threads(setting: int | str | None) -> Iterator[None]:
    """Runs the block with torch's intra-op threads set by ``training.threads``; restores them."""
    if setting is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    n = auto_threads(before) if setting == "auto" else int(setting)
    if setting == "auto":
        logger.info("threads: auto -> %d of %d (cores busy with other work now: %s)", n, before,
                    _cores() - n if n < before else "none")
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
