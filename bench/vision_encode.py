"""Frozen image encoding speed: EfficientNet-Lite0 features of MNIST digits, as the frozen
strategy computes them (``encoder.encode``, batch 64, after one warm-up batch). Prints wall-clock
images/s, CPU milliseconds per image (less sensitive to other processes on a shared machine) and
the load average, per image size.

Run (about 1 minute on 2 idle cores)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/vision_encode.py --sizes 64 224 --images 500 100
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from _common import machine


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--images", type=int, nargs="+", default=[500, 100], help="per size")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    if len(args.images) != len(args.sizes):
        parser.error("give one --images count per --sizes value")

    from textransfer.data import load
    from textransfer.encoders import create_encoder

    digits = load({"source": "mnist-5k", "limit": max(args.images), "sample_seed": 0}).texts
    print(machine())
    print("| image size | images | images/s | ms CPU / image | load average |")
    print("|---|---|---|---|---|")
    for size, n in zip(args.sizes, args.images, strict=True):
        enc = create_encoder("efficientnet-lite0", image_size=size)
        enc.encode(digits[:8])  # builds the network, loads the weights
        wall, cpu = time.perf_counter(), time.process_time()
        enc.encode(digits[:n], batch_size=args.batch_size)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        load_avg = os.getloadavg()[0]
        print(f"| {size} | {n} | {n / wall:.1f} | {cpu / n * 1e3:.0f} | {load_avg:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
