"""ONNX export (`textransfer export`): one graph tokens -> probabilities, parity with torch fp32,
int8 quantisation, loading through textransfer.load, and refusals (unsupported encoders, unsafe
output folders, edited exports)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import textransfer  # noqa: E402
from tests.conftest import make_toy  # noqa: E402
from textransfer import cli  # noqa: E402
from textransfer.export import EXPORT_META, ExportError, OnnxClassifier, export_onnx  # noqa: E402
from textransfer.heads.base import create_head  # noqa: E402
from textransfer.strategies.base import create_strategy  # noqa: E402
from textransfer.training.args import TrainingArgs  # noqa: E402

# Toy product sentences plus texts that exercise padding, truncation (max_length 16), casing,
# surrounding spaces, unknown words and the empty string.
PRODUCTS = make_toy("products", ["phone", "battery", "camera", "screen"], n=24, seed=2).texts
ODD = [
    "",
    "   a great phone   ",
    "A TERRIBLE CAMERA, REALLY TERRIBLE",
    "zebra quantum widget",
    " ".join(["good film"] * 30),
]


def _fit(encoder, head_name: str, **head_kwargs):
    strategy = create_strategy("frozen")
    strategy.training = TrainingArgs(epochs=3, lr=0.05, patience=None)
    train = make_toy("movies", ["film", "movie", "plot", "actor"], n=48, seed=1)
    return strategy.fit(encoder, create_head(head_name, **head_kwargs), train)


def _export_cli(model_dir: Path, out: Path, *extra: str) -> None:
    args = cli._parser().parse_args(["export", str(model_dir), "--format", "onnx", "--output", str(out), *extra])
    assert cli._cmd_export(args) == 0


@pytest.fixture(scope="module")
def transformer_model(tmp_path_factory, make_encoder):
    from textransfer.encoders.base import create_encoder

    enc = make_encoder("transformer")  # tiny random BERT, mean pooling, max_length 32
    enc = create_encoder("transformer", model=enc.model, pooling="mean", max_length=16, normalize=False)
    clf = _fit(enc, "linear", dropout=0.0)
    model_dir = clf.save(tmp_path_factory.mktemp("tmodel") / "model")
    return clf, model_dir


@pytest.fixture(scope="module")
def transformer_export(transformer_model, tmp_path_factory):
    _, model_dir = transformer_model
    out = tmp_path_factory.mktemp("texport") / "onnx"
    _export_cli(model_dir, out)
    return out


def test_transformer_linear_export_matches_torch_fp32(transformer_model, transformer_export):
    clf, _ = transformer_model
    onnx_clf = textransfer.load(transformer_export)  # dispatches on the export folder
    assert isinstance(onnx_clf, OnnxClassifier)
    assert onnx_clf.labels == clf.labels == ["negative", "positive"]
    texts = PRODUCTS + ODD
    ref = clf.predict_proba(texts)
    got = onnx_clf.predict_proba(texts, batch_size=4)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-4
    assert onnx_clf.predict(texts) == clf.predict(texts)
    # Batching and order do not change a text's result.
    assert np.allclose(onnx_clf.predict_proba(texts[::-1], batch_size=1)[::-1], got, atol=1e-6)
    assert onnx_clf.predict_proba([]).shape == (0, 2) and onnx_clf.predict([]) == []
    with pytest.raises(TypeError, match="single string"):
        onnx_clf.predict("a good film")


def test_export_folder_holds_one_graph_tokenizer_and_settings(transformer_export):
    names = {p.name for p in transformer_export.iterdir()}
    assert {"model.onnx", "tokenizer.json", EXPORT_META} <= names
    meta = json.loads((transformer_export / EXPORT_META).read_text())
    assert meta["labels"] == ["negative", "positive"] and meta["precision"] == "fp32"
    assert meta["settings"]["max_length"] == 16 and meta["settings"]["pooling"] == "mean"
    assert meta["settings"]["normalize"] is False
    assert meta["encoder"]["name"] == "transformer" and meta["head"]["name"] == "linear"
    assert meta["check"]["max_abs_diff"] <= 1e-4 and meta["check"]["argmax_agreement"] == 1.0
    assert {"onnxruntime", "torch"} <= set(meta["versions"])
    import onnx

    graph = onnx.load(str(transformer_export / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["probabilities"]


def test_cli_predict_runs_on_an_export(transformer_model, transformer_export, capsys):
    clf, _ = transformer_model
    assert cli.main(["predict", str(transformer_export), "a wonderful phone", "an awful plot"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{lab}\t{t}" for lab, t in zip(clf.predict(["a wonderful phone", "an awful plot"]),
                                                   ["a wonderful phone", "an awful plot"], strict=True)]


def test_int8_export_loads_and_predicts(make_encoder, tmp_path):
    import onnx

    from textransfer.encoders.base import create_encoder

    # L2-normalised features (the fp32 export test has raw ones).
    enc = create_encoder("transformer", model=make_encoder("transformer").model, max_length=32, normalize=True)
    clf = _fit(enc, "logreg", C=1000.0)
    model_dir = clf.save(tmp_path / "model")
    out = tmp_path / "onnx-int8"
    _export_cli(model_dir, out, "--int8")
    meta = json.loads((out / EXPORT_META).read_text())
    assert meta["precision"] == "int8" and meta["settings"]["normalize"] is True
    ops = {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"}, ops
    onnx_clf = textransfer.load(out)
    texts = PRODUCTS + ODD
    proba = onnx_clf.predict_proba(texts)
    assert proba.shape == (len(texts), 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # int8 weights: close to the torch fp32 model, not equal; the same label where torch is not
    # near a tie.
    ref = clf.predict_proba(texts)
    assert np.abs(proba - ref).max() < 0.1
    clear = np.abs(ref[:, 1] - 0.5) > 0.1
    assert clear.sum() >= len(texts) // 2
    assert (proba.argmax(axis=1) == ref.argmax(axis=1))[clear].all()


def test_sentence_encoder_with_mlp_head_export_matches_torch(make_encoder, tmp_path):
    enc = make_encoder("sentence", variant=1)  # normalised embeddings
    clf = _fit(enc, "mlp", hidden=8, dropout=0.0)
    out = export_onnx(clf, tmp_path / "onnx")  # a loaded Classifier works as well as a folder
    meta = json.loads((out / EXPORT_META).read_text())
    assert meta["settings"]["strip"] is True and meta["settings"]["normalize"] is True
    texts = PRODUCTS + ODD
    got = OnnxClassifier.load(out).predict_proba(texts)
    assert np.abs(got - clf.predict_proba(texts)).max() <= 1e-4


def test_unsupported_encoder_names_what_can_be_exported(tmp_path):
    from textransfer.encoders.base import create_encoder

    clf = _fit(create_encoder("tfidf"), "logreg")
    with pytest.raises(ExportError, match="'tfidf' encoder cannot be exported.*transformer and sentence"):
        export_onnx(clf, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_output_folder_rules(transformer_model, transformer_export, tmp_path):
    _, model_dir = transformer_model
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a textransfer ONNX export"):
        export_onnx(model_dir, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="is the model folder itself"):
        export_onnx(model_dir, model_dir)


def test_edited_export_is_refused(transformer_export, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(transformer_export, copy)
    meta = json.loads((copy / "tokenizer.json").read_text())
    meta["truncation"] = None
    (copy / "tokenizer.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="tokenizer.json does not match the sha256"):
        textransfer.load(copy)
    (copy / EXPORT_META).write_text('{"format": "textransfer-onnx", "format_version": 99}')
    with pytest.raises(ValueError, match="newer textransfer"):
        textransfer.load(copy)


def test_export_is_served_with_its_description(transformer_model, transformer_export):
    import threading
    import urllib.request

    from textransfer.serving import ModelServer

    clf, _ = transformer_model
    server = ModelServer(textransfer.load(transformer_export), "127.0.0.1", 0, model_dir=transformer_export)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with urllib.request.urlopen(server.url + "/metadata", timeout=30) as resp:
            meta = json.loads(resp.read())
        assert meta["precision"] == "fp32" and meta["settings"]["max_length"] == 16
        assert meta["encoder"]["name"] == "transformer" and meta["labels"] == clf.labels
        req = urllib.request.Request(server.url + "/predict", data=json.dumps({"texts": PRODUCTS[:5]}).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.loads(resp.read())
        assert np.abs(np.array(body["probabilities"]) - clf.predict_proba(PRODUCTS[:5])).max() <= 1e-4
    finally:
        server.shutdown()
        server.server_close()


def test_an_export_is_evaluated_like_its_model(transformer_model, transformer_export, tmp_path):
    from textransfer.cli import main

    clf, model_dir = transformer_model
    data = tmp_path / "reviews.csv"
    rows = [("a wonderful phone", "positive"), ("an awful plot", "negative")] * 15
    data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    source_val = make_toy("movies", ["film", "movie", "plot", "actor"], n=40, seed=7)
    exported = textransfer.evaluate(transformer_export, data, source_val=source_val)
    native = textransfer.evaluate(model_dir, data, source_val=source_val)
    m = exported.metrics
    assert m["encoder"] == "transformer" and m["head"] == "linear"
    assert m["encoder_precision"] == "fp32" and m["runtime"] == "onnxruntime"
    assert m["accuracy"] == native.metrics["accuracy"]
    assert abs(m["label_free"]["estimate"] - native.metrics["label_free"]["estimate"]) < 1e-3
    # In memory too, and from the command line.
    in_memory = textransfer.evaluate(textransfer.load(transformer_export), data)
    assert in_memory.metrics["accuracy"] == m["accuracy"]
    assert main(["evaluate", str(transformer_export), "--input", str(data)]) == 0
    with pytest.raises(ValueError, match="ONNX export, which runs at the precision it was exported with"):
        textransfer.evaluate(transformer_export, data, precision="auto")


def test_running_an_export_imports_no_torch(transformer_export):
    import subprocess
    import sys

    code = (
        "import sys, json, textransfer; clf = textransfer.load(sys.argv[1]); clf.predict(['a good film']); "
        "print(json.dumps([m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(transformer_export)], capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
