"""Why int8 is fast or slow on this CPU: onnxruntime session and quantisation variants of the
MiniLM features graph, against ``SentenceTransformer.encode`` (fp32) and textransfer's bf16.

``precision: int8`` exports the encoder's features graph to ONNX and runs it, quantised, on
onnxruntime. Whether that beats torch depends on the CPU: on a 2-core Xeon without AMX it ran at
several times sentence-transformers' fp32 speed; on a 16-core Xeon with AMX it ran slower than
fp32 (docs/benchmark-notes.md). This script separates the causes, each variant timed once after
a warm-up, in one process, nothing interleaved:

- int8 as shipped (per-channel int8 weights, onnxruntime's default thread spin-waiting);
- without spin-waiting (``session.intra_op.allow_spinning = 0``), and with half the threads;
- per-tensor int8 weights, and uint8 weights;
- the fp32 graph on onnxruntime: how fast onnxruntime itself is on this CPU.

Run from the repository root (needs the ``onnx`` extra)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/int8_variants.py --n 1500
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import machine, table, timed


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1500, help="product sentences to encode (max 2985)")
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's pre-processing advice

    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    from textransfer.data import load
    from textransfer.encoders.onnx_graph import graph_modules, quantize_int8, torch_export
    from textransfer.encoders.transformer import TransformerEncoder
    from textransfer.resources import resolve_model

    texts = load("products").texts[: args.n]
    bs = args.batch_size
    st = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    bf16 = TransformerEncoder("all-MiniLM-L6-v2", max_length=256, precision="bf16")
    enc = TransformerEncoder("all-MiniLM-L6-v2", max_length=256, precision="int8")
    enc.encode(texts[:64], bs)  # builds the shipped int8 runner (export + quantisation)
    runner = enc._low_precision["int8"].get(enc.module)

    tmp = Path(tempfile.mkdtemp(prefix="textransfer-int8-variants-"))
    example = {k: v.long() for k, v in enc._export_example().items() if k in runner.input_names}
    graph = graph_modules()["ProbabilityGraph"](enc._features_graph(enc.module), torch.nn.Identity()).eval()
    torch_export(graph, example, tmp / "fp32.onnx", None)
    quantize_int8(tmp / "fp32.onnx", tmp / "int8.onnx")  # what precision: int8 runs
    quantize_dynamic(str(tmp / "fp32.onnx"), str(tmp / "int8_tensor.onnx"), weight_type=QuantType.QInt8, per_channel=False)
    quantize_dynamic(str(tmp / "fp32.onnx"), str(tmp / "uint8.onnx"), weight_type=QuantType.QUInt8, per_channel=False)

    def session(name: str, threads: int | None = None, spin: bool = True) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(tmp / name), options, providers=["CPUExecutionProvider"])

    def through(sess: Any) -> Callable[[], Any]:
        def run() -> Any:
            runner.session = sess  # the shipped runner (tokenising, length-sorted batches), another session
            return enc.encode(texts, bs)
        return run

    half = max(1, torch.get_num_threads() // 2)
    cases: dict[str, Callable[[], Any]] = {
        "sentence-transformers fp32": lambda: st.encode(texts, batch_size=bs, show_progress_bar=False),
        "textransfer bf16 (torch)": lambda: bf16.encode(texts, bs),
        "int8 as shipped (per-channel, spinning)": through(session("int8.onnx")),
        "int8, no spin-waiting": through(session("int8.onnx", spin=False)),
        f"int8, {half} threads, no spin-waiting": through(session("int8.onnx", threads=half, spin=False)),
        "int8 per-tensor weights, no spin-waiting": through(session("int8_tensor.onnx", spin=False)),
        "uint8 weights, no spin-waiting": through(session("uint8.onnx", spin=False)),
        "fp32 graph on onnxruntime, no spin-waiting": through(session("fp32.onnx", spin=False)),
    }
    rows = []
    base = None
    for name, fn in cases.items():
        fn()  # warm-up
        seconds, _ = timed(fn)
        base = base or seconds
        rows.append([name, round(len(texts) / seconds, 1), round(base / seconds, 2)])
    print(f"## int8 variants (onnxruntime {ort.__version__})\n\n{len(texts)} product sentences, batch {bs}; "
          f"machine: {machine()}\n")
    print(table(["encoder", "sentences/s", "ratio vs ST fp32"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
