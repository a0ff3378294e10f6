"""Static GloVe pooling: textransfer's vectorised mean pooling vs gensim
``KeyedVectors.get_mean_vector`` called once per sentence, on the same tokens and vectors.

Two ratios: *pooling only* (both get the same pre-tokenised sentences) and *end to end*
(``StaticEncoder.encode`` on raw texts vs tokenising + ``get_mean_vector`` per sentence).

Run (about 20 seconds)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/static_pooling.py --repeats 5
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
from _common import interleaved, machine, median, table, verdict


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--copies", type=int, default=1, help="repeat the movie+product corpus")
    args = p.parse_args(argv)

    from textransfer.data import load
    from textransfer.encoders.static import StaticEncoder, tokenize

    texts = (load("movies").texts + load("products").texts) * args.copies
    enc = StaticEncoder("glove-6b-50d", pooling="mean")
    kv = enc.keyed_vectors
    tokens = [tokenize(t) for t in texts]
    # get_mean_vector raises on a sentence without any known word; both sides skip none, so
    # give gensim only what it accepts and compare on those rows.
    known = [any(t in kv.key_to_index for t in toks) for toks in tokens]
    tokens_ok = [toks for toks, k in zip(tokens, known, strict=True) if k]

    def gensim_pool() -> np.ndarray:
        return np.stack([kv.get_mean_vector(t, pre_normalize=False) for t in tokens_ok])

    def gensim_end_to_end() -> np.ndarray:
        rows = []
        for text in texts:
            toks = tokenize(text)
            if any(t in kv.key_to_index for t in toks):
                rows.append(kv.get_mean_vector(toks, pre_normalize=False))
        return np.stack(rows)

    cases = {
        "gensim get_mean_vector, tokens given": gensim_pool,
        "textransfer pool_tokens, tokens given": lambda: enc.pool_tokens(tokens_ok),
        "gensim tokenise + get_mean_vector": gensim_end_to_end,
        "textransfer encode (tokenises)": lambda: enc.encode(texts),
    }
    times = interleaved(cases, args.repeats)
    diff = float(np.abs(enc.pool_tokens(tokens_ok) - gensim_pool()).max())
    n = {name: (len(tokens_ok) if "given" in name else len(texts)) for name in cases}
    rows = [[name, round(median(ts) * 1000, 1), round(n[name] / median(ts))] for name, ts in times.items()]
    pool_ratio = median(times["gensim get_mean_vector, tokens given"]) / median(times["textransfer pool_tokens, tokens given"])
    e2e_ratio = median(times["gensim tokenise + get_mean_vector"]) / median(times["textransfer encode (tokenises)"])
    print(f"## Static pooling vs gensim\n\n{len(texts)} movie + product sentences, GloVe 6B 50d, {args.repeats} interleaved repeats; machine: {machine()}\n")
    print(table(["case", "median ms", "sentences/s"], rows))
    print(f"\n- pooling-only ratio: {pool_ratio:.1f}: {verdict(pool_ratio, 5.0)}")
    print(f"- end-to-end ratio (tokenisation included on both sides): {e2e_ratio:.1f}")
    print(f"- max |ours - gensim| over {len(tokens_ok)} sentences: {diff:.2e}: {verdict(diff, 1e-6, higher_is_better=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
