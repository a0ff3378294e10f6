"""Frozen MiniLM encoding: textransfer's transformer/sentence encoders (fp32 and int8) vs
``SentenceTransformer.encode`` on the same packaged all-MiniLM-L6-v2, same sentences, same batch
size. Reports throughput ratios (medians of interleaved repeats), cosine agreement with
sentence-transformers and, with ``--accuracy``, movie -> product accuracy of fp32 vs int8.

Run (about 9 minutes on 2 idle cores; ``make bench`` runs it with these flags)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/encode_vs_sentence_transformers.py --n 3000 --repeats 5 --accuracy
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

import numpy as np
from _common import interleaved, machine, median, table, timed, verdict


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _accuracy(batch_size: int, limit: int) -> list[list[object]]:
    """Logistic regression on frozen features: movies 80% -> movies 20%, products.

    The split (stratified, seed 0) and the encoder settings (mean pooling, L2-normalised,
    max_length 128) are those of configs/movies_to_products.yaml's ``minilm-transformer`` encoder.
    """
    from sklearn.linear_model import LogisticRegression

    from textransfer.data import load, stratified_split, stratified_subsample
    from textransfer.encoders.transformer import TransformerEncoder

    train, test = stratified_split(load("movies"), test_size=0.2, seed=0)
    if limit and len(train) > limit:
        train = stratified_subsample(train, limit, seed=0)
    products = load("products")
    rows = []
    for precision in ("fp32", "int8"):
        enc = TransformerEncoder("all-MiniLM-L6-v2", max_length=128, normalize=True, precision=precision)
        seconds, feats = timed(
            lambda enc=enc: [enc.encode(d.texts, batch_size) for d in (train, test, products)]
        )
        clf = LogisticRegression(max_iter=2000).fit(feats[0], train.labels)
        acc = [float(np.mean(clf.predict(f) == np.asarray(d.labels))) for f, d in zip(feats[1:], (test, products), strict=True)]
        rows.append([precision, len(train), round(acc[0], 4), round(acc[1], 4), round(seconds, 1)])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000, help="product sentences to encode (max 2985)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--accuracy", action="store_true", help="also movie -> product accuracy")
    p.add_argument("--accuracy-limit", type=int, default=0, help="subsample movie training rows")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")

    from sentence_transformers import SentenceTransformer

    from textransfer.data import load
    from textransfer.encoders.sentence import SentenceEncoder
    from textransfer.encoders.transformer import TransformerEncoder
    from textransfer.resources import resolve_model

    texts = load("products").texts[: args.n]
    bs = args.batch_size
    st = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    ours = {
        "transformer fp32": TransformerEncoder("all-MiniLM-L6-v2", max_length=256),
        "sentence fp32": SentenceEncoder("all-MiniLM-L6-v2"),
        "transformer int8": TransformerEncoder("all-MiniLM-L6-v2", max_length=256, precision="int8"),
        "sentence int8": SentenceEncoder("all-MiniLM-L6-v2", precision="int8"),
    }
    cases = {"sentence-transformers fp32": lambda: st.encode(texts, batch_size=bs, show_progress_bar=False)}
    cases.update({name: (lambda e=e: e.encode(texts, batch_size=bs)) for name, e in ours.items()})
    st.encode(texts[:64], batch_size=bs)  # warm-up: lazy loading, int8 quantisation
    for e in ours.values():
        e.encode(texts[:64], batch_size=bs)
    times = interleaved(cases, args.repeats)
    reference = st.encode(texts, batch_size=bs, show_progress_bar=False)
    base = median(times["sentence-transformers fp32"])
    rows = []
    for name, ts in times.items():
        out = reference if name.startswith("sentence-transformers") else ours[name].encode(texts, bs)
        cos = _cosine(reference, out)
        rows.append([name, round(median(ts), 2), round(len(texts) / median(ts), 1), round(base / median(ts), 2), f"{cos.min():.6f}", f"{cos.mean():.6f}"])
    print(f"## Frozen MiniLM encoding vs sentence-transformers\n\n{len(texts)} product sentences, batch size {bs}, {args.repeats} interleaved repeats; machine: {machine()}\n")
    print(table(["encoder", "median s", "sentences/s", "ratio vs ST", "min cosine vs ST", "mean cosine vs ST"], rows))
    ratio = {r[0]: r[3] for r in rows}
    print(f"\n- transformer fp32 ratio {ratio['transformer fp32']}: {verdict(ratio['transformer fp32'], 1.0)}")
    print(f"- sentence fp32 ratio {ratio['sentence fp32']}: {verdict(ratio['sentence fp32'], 1.0)}")
    print(f"- transformer int8 ratio {ratio['transformer int8']}: {verdict(ratio['transformer int8'], 1.8)}")
    print(f"- sentence int8 ratio {ratio['sentence int8']}: {verdict(ratio['sentence int8'], 1.8)}")
    min_cos = min(float(rows[1][4]), float(rows[2][4]))
    print(f"- fp32 cosine agreement with sentence-transformers (min over sentences and both encoders): {min_cos:.6f}: {verdict(min_cos, 0.9999)}")
    if args.accuracy:
        acc = _accuracy(bs, args.accuracy_limit)
        print("\n### Movie -> product accuracy, frozen mean-pooled MiniLM + logistic regression\n")
        print(table(["precision", "movie train rows", "movie test acc", "product acc", "encode s"], acc))
        gap = abs(acc[0][3] - acc[1][3]) * 100
        print(f"\n- int8 vs fp32 movie -> product accuracy: {acc[1][3]:.4f} vs {acc[0][3]:.4f}, gap {gap:.2f} points: {verdict(gap, 1.0, higher_is_better=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
