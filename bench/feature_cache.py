"""Feature cache: time in ``encode_cached`` on the first run of a frozen config (encodes and
stores) vs a second run with a fresh encoder of the same config (reads the memory-mapped
``.npy``; the data fingerprint is hashed on both runs).

Run (about 30 seconds)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/feature_cache.py --n 500 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections.abc import Sequence

import numpy as np
from _common import machine, median, table, timed, verdict


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="product sentences for the MiniLM config")
    p.add_argument("--repeats", type=int, default=5, help="cached (second) runs to take the median of")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")

    from textransfer.data import load
    from textransfer.encoders import create_encoder
    from textransfer.encoders.cache import FeatureCache, encode_cached

    products = load("products")
    configs = {
        "transformer MiniLM fp32": ("transformer", {"model": "all-MiniLM-L6-v2"}, products.subset(range(min(args.n, len(products))))),
        "static GloVe mean": ("static", {"vectors": "glove-6b-50d"}, load("movies")),
    }
    rows, lines = [], []
    for label, (name, kwargs, data) in configs.items():
        with tempfile.TemporaryDirectory() as d:
            cache = FeatureCache(d)
            enc = create_encoder(name, **kwargs)
            enc.encode(["warm up"])  # load weights / vectors outside the timed region
            first, feats = timed(lambda enc=enc, data=data, cache=cache: encode_cached(enc, data, cache))
            seconds = []
            for _ in range(args.repeats):
                fresh = create_encoder(name, **kwargs)  # a new run: new encoder, same config
                t, again = timed(lambda f=fresh, d=data, c=cache: encode_cached(f, d, c))
                seconds.append(t)
            assert np.array_equal(np.asarray(again), feats) and cache.hits == args.repeats
            second = median(seconds)
            # What a cache hit cannot skip: hashing every input text to find the entry.
            hashing = median([timed(data.fingerprint)[0] for _ in range(args.repeats)])
            ratio = first / second
            rows.append([label, len(data), round(first, 3), f"{second * 1000:.2f}", f"{hashing * 1000:.2f}", round(ratio)])
            lines.append(f"- {label}, second run vs first: {ratio:.0f}x: {verdict(ratio, 50.0)}")
    print(f"## Feature cache\n\nmedian of {args.repeats} cached runs; machine: {machine()}\n")
    print(table(["config", "rows", "first run s", "second run ms", "of which data fingerprint ms", "ratio"], rows))
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
