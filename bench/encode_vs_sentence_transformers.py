"""Frozen MiniLM encoding: textransfer's transformer/sentence encoders (precision auto, fp32,
bf16, int8) vs ``SentenceTransformer.encode`` in fp32 and under bf16 autocast, on the same packaged
all-MiniLM-L6-v2, same sentences, same batch size. First prints the CPU, its bf16/AMX/AVX-512 flags
and the precision ``auto`` chose there; then throughput ratios (medians of interleaved repeats),
cosine agreement with sentence-transformers and, with ``--accuracy``, movie -> product accuracy
of fp32 vs int8 (and bf16 with ``--accuracy-bf16``).

Run (about 9 minutes on 2 idle cores before the bf16 rows joined; ``make bench`` runs it with
these flags)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/encode_vs_sentence_transformers.py --n 3000 --repeats 5 --accuracy
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from _common import interleaved, machine, median, table, timed, verdict


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def cpu_line() -> str:
    """The CPU, its low-precision flags and what ``precision: auto`` resolves to on it."""
    from textransfer.precision import _cpuinfo, detect_capabilities, resolve_precision

    _, flags = _cpuinfo()
    shown = sorted(f for f in flags if "bf16" in f or f.startswith(("amx", "avx512_vnni", "avx_vnni", "avx512f")))
    caps = detect_capabilities()
    kind = "AMX" if caps.amx_bf16 else ("AVX-512 BF16 without AMX" if caps.avx512_bf16 else "no bf16 units")
    if caps.cpu_bf16_speedup is not None:
        kind += f" (probe: bf16 matmul {caps.cpu_bf16_speedup:.2f}x fp32)"
    return (
        f"CPU: {caps.cpu or 'unknown'}; machine kind: {kind}; flags: {' '.join(shown) or 'none of bf16/amx/avx512'}; "
        f"precision auto -> {resolve_precision('auto', 'bench')}"
    )


def _accuracy(batch_size: int, limit: int, precisions: Sequence[str] = ("fp32", "int8")) -> list[list[object]]:
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
    for precision in precisions:
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
    p.add_argument("--accuracy-bf16", action="store_true", help="also bf16 in the accuracy table")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")

    import torch
    from sentence_transformers import SentenceTransformer

    from textransfer.data import load
    from textransfer.encoders.sentence import SentenceEncoder
    from textransfer.encoders.transformer import TransformerEncoder
    from textransfer.resources import resolve_model

    texts = load("products").texts[: args.n]
    bs = args.batch_size
    st = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    ours = {
        f"transformer auto ({TransformerEncoder('all-MiniLM-L6-v2').precision})": TransformerEncoder("all-MiniLM-L6-v2", max_length=256),
        "transformer fp32": TransformerEncoder("all-MiniLM-L6-v2", max_length=256, precision="fp32"),
        "sentence fp32": SentenceEncoder("all-MiniLM-L6-v2", precision="fp32"),
        "transformer bf16": TransformerEncoder("all-MiniLM-L6-v2", max_length=256, precision="bf16"),
        "transformer int8": TransformerEncoder("all-MiniLM-L6-v2", max_length=256, precision="int8"),
        "sentence int8": SentenceEncoder("all-MiniLM-L6-v2", precision="int8"),
    }

    def st_encode(bf16: bool) -> Callable[[], Any]:
        def run() -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return st.encode(texts, batch_size=bs, show_progress_bar=False)
        return run

    cases = {"sentence-transformers fp32": st_encode(False), "sentence-transformers bf16 autocast": st_encode(True)}
    cases.update({name: (lambda e=e: e.encode(texts, batch_size=bs)) for name, e in ours.items()})
    import textransfer.precision as prec

    sdpa_row = "transformer bf16, SDPA attention"
    if prec.bf16_eager_attention():  # what the bf16 copy's eager attention buys on this CPU
        ours[sdpa_row] = TransformerEncoder("all-MiniLM-L6-v2", max_length=256, precision="bf16")
        cases[sdpa_row] = lambda e=ours[sdpa_row]: e.encode(texts, batch_size=bs)
    st.encode(texts[:64], batch_size=bs)  # warm-up: lazy loading, int8 quantisation, bf16 copies
    for name, e in ours.items():
        if name == sdpa_row:  # its bf16 copy is built here, and kept, with SDPA attention
            eager, prec.bf16_eager_attention = prec.bf16_eager_attention, lambda caps=None: False
            try:
                e.encode(texts[:64], batch_size=bs)
            finally:
                prec.bf16_eager_attention = eager
        else:
            e.encode(texts[:64], batch_size=bs)
    times = interleaved(cases, args.repeats)
    reference = st_encode(False)()
    base = median(times["sentence-transformers fp32"])
    rows = []
    for name, ts in times.items():
        out = cases[name]() if name.startswith("sentence-transformers") else ours[name].encode(texts, bs)
        cos = _cosine(reference, np.asarray(out, dtype=np.float32))
        rows.append([name, round(median(ts), 2), round(len(texts) / median(ts), 1), round(base / median(ts), 2), f"{cos.min():.6f}", f"{cos.mean():.6f}"])
    print(f"## Frozen MiniLM encoding vs sentence-transformers\n\n{cpu_line()}\n\n{len(texts)} product sentences, batch size {bs}, {args.repeats} interleaved repeats; machine: {machine()}\n")
    print(table(["encoder", "median s", "sentences/s", "ratio vs ST", "min cosine vs ST", "mean cosine vs ST"], rows))
    ratio = {r[0]: r[3] for r in rows}
    auto = next(r for r in rows if r[0].startswith("transformer auto"))
    st_bf16 = ratio["sentence-transformers bf16 autocast"]
    print(f"\n- {auto[0]} vs transformer fp32, same run: {auto[3] / ratio['transformer fp32']:.2f}x: "
          f"{verdict(round(auto[3] / ratio['transformer fp32'], 2), 0.9)} (auto never slower than fp32, within the run's spread)")
    print(f"- {auto[0]} ratio vs ST fp32 {auto[3]} (goal >= 2.5 where auto picks bf16); vs ST under bf16 autocast: {auto[3] / st_bf16:.2f}x (goal >= 1.2 there)")
    print(f"- ST bf16 autocast vs ST fp32 on this CPU: {st_bf16}x; transformer bf16 vs transformer fp32: {ratio['transformer bf16'] / ratio['transformer fp32']:.2f}x")
    if sdpa_row in ratio:
        print(f"- transformer bf16 (eager attention, this CPU's choice) vs the same with SDPA attention: "
              f"{ratio['transformer bf16'] / ratio[sdpa_row]:.2f}x")
    print(f"\n- transformer fp32 ratio {ratio['transformer fp32']}: {verdict(ratio['transformer fp32'], 1.0)}")
    print(f"- sentence fp32 ratio {ratio['sentence fp32']}: {verdict(ratio['sentence fp32'], 1.0)}")
    print(f"- transformer int8 ratio {ratio['transformer int8']}: {verdict(ratio['transformer int8'], 1.8)}")
    print(f"- sentence int8 ratio {ratio['sentence int8']}: {verdict(ratio['sentence int8'], 1.8)}")
    min_cos = min(float(r[4]) for r in rows if r[0] in ("transformer fp32", "sentence fp32"))
    print(f"- fp32 cosine agreement with sentence-transformers (min over sentences and both encoders): {min_cos:.6f}: {verdict(min_cos, 0.9999)}")
    if args.accuracy:
        acc = _accuracy(bs, args.accuracy_limit, ("fp32", "int8", "bf16") if args.accuracy_bf16 else ("fp32", "int8"))
        print("\n### Movie -> product accuracy, frozen mean-pooled MiniLM + logistic regression\n")
        print(table(["precision", "movie train rows", "movie test acc", "product acc", "encode s"], acc))
        gap = abs(acc[0][3] - acc[1][3]) * 100
        print(f"\n- int8 vs fp32 movie -> product accuracy: {acc[1][3]:.4f} vs {acc[0][3]:.4f}, gap {gap:.2f} points: {verdict(gap, 1.0, higher_is_better=False)}")
        if args.accuracy_bf16:
            gap = abs(acc[0][3] - acc[2][3]) * 100
            print(f"- bf16 vs fp32 movie -> product accuracy: {acc[2][3]:.4f} vs {acc[0][3]:.4f}, gap {gap:.2f} points: {verdict(gap, 0.5, higher_is_better=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
