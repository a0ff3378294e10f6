"""ONNX export vs torch on the packaged all-MiniLM-L6-v2 (frozen, mean pooling, L2-normalised,
max_length 128) + logistic regression: onnxruntime fp32 and int8 exports (``textransfer export``,
``--int8``) against torch fp32 and textransfer's in-process int8 encoder (``precision: int8``, which
runs the encoder graph on onnxruntime, not on torch), classifying
the same product sentences with the same batch size, all in one run (medians of interleaved
repeats). Also the movies -> products accuracy of each: the model is trained once (logreg on
torch fp32 features of movie sentences) and run by each backend, as a deployed model would be.

Run (a few minutes at --n 500 on 2 cores)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/onnx_vs_torch.py --n 500 --repeats 3 --train-n 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _common import interleaved, machine, median, table, timed, verdict

# textransfer's `precision: int8` encoder: onnxruntime dynamic int8 of the encoder graph, run in
# process (the torch.ao int8 path it replaced is gone), so it is not "torch int8".
INT8 = "precision: int8 (onnxruntime)"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="product sentences timed (max 2985)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-n", type=int, default=2000, help="movie sentences the logreg trains on (0: the 80% split)")
    p.add_argument("--accuracy-n", type=int, default=0, help="product sentences scored (0: all 2985)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")

    from textransfer.classifier import Classifier
    from textransfer.data import load, stratified_split, stratified_subsample
    from textransfer.encoders.transformer import TransformerEncoder
    from textransfer.export import OnnxClassifier, export_onnx
    from textransfer.heads.base import create_head
    from textransfer.strategies.base import create_strategy

    train, _ = stratified_split(load("movies"), test_size=0.2, seed=0)
    if args.train_n and len(train) > args.train_n:
        train = stratified_subsample(train, args.train_n, seed=0)
    products = load("products")
    if args.accuracy_n and len(products) > args.accuracy_n:
        products = stratified_subsample(products, args.accuracy_n, seed=0)
    texts = load("products").texts[: args.n]
    bs = args.batch_size

    settings = {"model": "all-MiniLM-L6-v2", "max_length": 128, "normalize": True}
    fit_s, torch_fp32 = timed(
        lambda: create_strategy("frozen").fit(TransformerEncoder(**settings), create_head("logreg"), train)
    )
    int8_encoder = Classifier(TransformerEncoder(**settings, precision="int8"), torch_fp32.head, torch_fp32.label_map)
    with tempfile.TemporaryDirectory() as tmp:
        export_s = {}
        sizes = {}
        for name, int8 in (("onnx fp32", False), ("onnx int8", True)):
            seconds, out = timed(lambda int8=int8, name=name: export_onnx(torch_fp32, Path(tmp) / name.replace(" ", "-"), int8=int8))
            export_s[name] = seconds
            sizes[name] = (out / "model.onnx").stat().st_size / 2**20
        models = {
            "torch fp32": torch_fp32,
            INT8: int8_encoder,
            "onnx fp32": OnnxClassifier.load(Path(tmp) / "onnx-fp32"),
            "onnx int8": OnnxClassifier.load(Path(tmp) / "onnx-int8"),
        }
        for m in models.values():  # warm-up: lazy loading, the int8 encoder's export and quantisation
            m.predict_proba(texts[:64], batch_size=bs)
        load_before = os.getloadavg()
        times = interleaved({name: (lambda m=m: m.predict_proba(texts, batch_size=bs)) for name, m in models.items()}, args.repeats)
        load_after = os.getloadavg()
        reference = torch_fp32.predict_proba(texts, batch_size=bs)
        base = median(times["torch fp32"])
        rows = []
        for name, m in models.items():
            proba = m.predict_proba(texts, batch_size=bs)
            rows.append([
                name, round(median(times[name]), 2), round(len(texts) / median(times[name]), 1),
                round(base / median(times[name]), 2), f"{np.abs(proba - reference).max():.2e}",
                round(float(np.mean(proba.argmax(1) == reference.argmax(1))), 4),
            ])
        acc = {}
        y = np.asarray(products.labels)
        for name, m in models.items():
            acc[name] = float(np.mean(np.asarray(m.predict(products.texts, batch_size=bs)) == y))

    print(
        f"## ONNX export vs torch, frozen MiniLM + logreg\n\n{len(texts)} product sentences, batch size {bs}, "
        f"{args.repeats} interleaved repeats; machine: {machine()}\nLoad average (1 min) {load_before[0]:.2f} "
        f"before the timed rounds, {load_after[0]:.2f} after (shared machine: other work ran meanwhile).\n"
    )
    print(table(["backend", "median s", "sentences/s", "speed vs torch fp32", "max |p - p_torch fp32|", "label agreement"], rows))
    print(f"\nExport: fp32 {export_s['onnx fp32']:.1f} s ({sizes['onnx fp32']:.1f} MiB), int8 "
          f"{export_s['onnx int8']:.1f} s ({sizes['onnx int8']:.1f} MiB); training the logreg on {len(train)} "
          f"movie sentences (torch fp32 features): {fit_s:.1f} s.\n")
    print(f"### Movies -> products accuracy ({len(train)} movie training sentences, {len(products)} product sentences)\n")
    print(table(["backend", "product accuracy"], [[k, round(v, 4)] for k, v in acc.items()]))
    gap = abs(acc["onnx int8"] - acc["onnx fp32"]) * 100
    print(f"\n- ONNX int8 vs ONNX fp32: {acc['onnx int8']:.4f} vs {acc['onnx fp32']:.4f}, gap {gap:.2f} points: "
          f"{verdict(gap, 1.0, higher_is_better=False)}")
    ratio = {r[0]: r[3] for r in rows}
    print(f"- speed vs torch fp32: onnx fp32 {ratio['onnx fp32']}x, onnx int8 {ratio['onnx int8']}x, "
          f"{INT8} {ratio[INT8]}x; onnx int8 export vs {INT8}: {ratio['onnx int8'] / ratio[INT8]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
