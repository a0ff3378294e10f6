"""Received model folders are data (DESIGN.md section 7): a crafted folder runs no code, reads
nothing outside itself, allocates nothing a JSON edit asks for, and fails with one
ModelFormatError naming the file; saving never deletes what textransfer did not write.

Real tiny models are saved once per module (tiny BERT, tiny GloVe, TF-IDF, a small CNN), then
each test copies one and crafts an attack on the copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import textransfer
from tests.conftest import make_toy
from textransfer.classifier import META_FILE, Classifier, ModelFormatError
from textransfer.data.labeled import LabelMap

TEXTS = ["a wonderful film , really wonderful", "an awful phone", "", "boring plot 🙂"]


# -- legit models, saved once ------------------------------------------------------------------


def _fit_logreg(encoder, data):
    head = textransfer.create_head("logreg")
    label_map = LabelMap.from_labels(data.labels)
    head.fit(encoder.encode(data.texts), label_map.encode(data.labels), num_classes=len(label_map))
    return Classifier(encoder, head, label_map)


def _torch_head(name: str, in_dim: int, **kwargs):
    import torch

    head = textransfer.create_head(name, **kwargs)
    torch.manual_seed(0)
    head.build(in_dim, 2)
    return head


@pytest.fixture(scope="module")
def models(
    tmp_path_factory, tiny_bert_dir, tiny_sentence_dir, tiny_glove_file
) -> dict[str, tuple[Classifier, Path]]:
    """name -> (classifier, its saved folder): "bert" and "sentence" are frozen (their files are
    copied in from the local folder), "bert_mlp" and "sentence_ft" fine-tuned (their weights are
    saved, by older versions too)."""
    data = make_toy("movies", ["film", "phone"], n=24, seed=3)
    label_map = LabelMap.from_labels(data.labels)
    root = tmp_path_factory.mktemp("saved")
    tfidf = textransfer.create_encoder("tfidf").fit(data.texts)
    bert = textransfer.create_encoder("transformer", model=str(tiny_bert_dir), max_length=32)
    tuned = textransfer.create_encoder("transformer", model=str(tiny_bert_dir), max_length=32)
    tuned.weights_modified = True  # as after fine-tuning (any version saves these weights)
    tuned_sentence = textransfer.create_encoder("sentence", model=str(tiny_sentence_dir))
    tuned_sentence.weights_modified = True
    static = textransfer.create_encoder("static", vectors=str(tiny_glove_file), pooling="sif")
    static.fit(data.texts)
    cnn = textransfer.create_encoder("cnn", channels=[4, 8], dim=8, image_size=16)
    cnn.weights_modified = True  # as after fine-tuning: the weights are saved with the model
    clfs = {
        "tfidf": _fit_logreg(tfidf, data),
        "bert": _fit_logreg(bert, data),
        "sentence": _fit_logreg(textransfer.create_encoder("sentence", model=str(tiny_sentence_dir)), data),
        "sentence_ft": _fit_logreg(tuned_sentence, data),
        "bert_mlp": Classifier(tuned, _torch_head("mlp", 32, hidden=16), label_map),
        "static_mlp": Classifier(static, _torch_head("mlp", 8, hidden=16), label_map),
        "cnn": Classifier(cnn, _torch_head("linear", 8), label_map),
    }
    return {name: (clf, clf.save(root / name)) for name, clf in clfs.items()}


@pytest.fixture
def copy_model(models, tmp_path) -> Callable[[str], Path]:
    """``copy_model(name)``: a fresh copy of a saved model folder to attack."""

    def copy(name: str) -> Path:
        dst = tmp_path / "received" / name
        shutil.copytree(models[name][1], dst, symlinks=True)
        return dst

    return copy


def _edit_json(path: Path, edit: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    result = edit(data)
    path.write_text(json.dumps(data if result is None else result))


def _reseal(model: Path) -> None:
    """What an attacker does after editing files: recompute the checksum record, so that only
    the other checks stand between the folder and the user."""
    meta_path = model / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["files"] = {
        p.relative_to(model).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(model.rglob("*"))
        if p.is_file() and p != meta_path
    }
    meta_path.write_text(json.dumps(meta))


def _load_and_predict(model: Path, **kwargs):
    """Loading and then predicting: an attack must be stopped by one of the two."""
    clf = textransfer.load(model, **kwargs)
    return clf.predict_proba(TEXTS if clf.encoder.modality == "text" else [np.zeros((16, 16), np.uint8)])


# -- a legit round trip keeps working ------------------------------------------------------------


@pytest.mark.parametrize("name", ["tfidf", "bert", "bert_mlp", "sentence", "static_mlp", "cnn"])
def test_round_trip_predicts_the_same(models, name):
    clf, folder = models[name]
    inputs = TEXTS if clf.encoder.modality == "text" else [np.full((16, 16), v, np.uint8) for v in (0, 99)]
    loaded = textransfer.load(folder)
    np.testing.assert_allclose(loaded.predict_proba(inputs), clf.predict_proba(inputs), atol=1e-6)
    assert loaded.labels == clf.labels


def test_saved_json_holds_no_trainer_path_and_no_trust_flag(
    models, tiny_bert_dir, tiny_sentence_dir, tiny_glove_file
):
    for name in ("bert", "sentence", "static_mlp"):
        folder = models[name][1]
        for path in folder.rglob("*.json"):
            text = path.read_text()
            for trainer_path in (tiny_bert_dir, tiny_sentence_dir, tiny_glove_file):
                assert str(trainer_path) not in text, path
        assert "trust_remote_code" not in (folder / "encoder" / "encoder.json").read_text()
    bert = models["bert"][1]
    assert json.loads((bert / "encoder" / "encoder.json").read_text())["model"] == "."
    assert (bert / "encoder" / "model.safetensors").is_file()  # copied from the local folder
    static = models["static_mlp"][1] / "encoder"
    assert json.loads((static / "encoder.json").read_text())["vectors"] == "vectors.safetensors"
    assert (static / "vectors.vocab.json").is_file()


def test_checksums_recorded_for_every_weight_and_vocab_file(models):
    folder = models["bert_mlp"][1]
    files = json.loads((folder / META_FILE).read_text())["files"]
    for rel in ("encoder/model.safetensors", "encoder/config.json", "encoder/tokenizer.json", "head/head.safetensors"):
        assert files[rel] == hashlib.sha256((folder / rel).read_bytes()).hexdigest()


def test_registered_vectors_are_saved_by_name(tmp_path):
    # No vectors are read: a registered name is saved as the name.
    enc = textransfer.create_encoder("static", vectors="glove-6b-50d")
    enc.save(tmp_path / "enc", portable=True)
    assert json.loads((tmp_path / "enc" / "encoder.json").read_text())["vectors"] == "glove-6b-50d"
    assert not (tmp_path / "enc" / "vectors.safetensors").exists()


def test_kv_named_in_a_users_own_config_still_loads_and_saves_without_pickle(tiny_glove_file, tmp_path):
    from gensim.models import KeyedVectors

    kv_file = tmp_path / "mine.kv"
    KeyedVectors.load_word2vec_format(str(tiny_glove_file), no_header=True).save(str(kv_file))
    enc = textransfer.create_encoder("static", vectors=str(kv_file))
    clf = Classifier(enc, _torch_head("linear", 8), LabelMap(["negative", "positive"]))
    expected = clf.predict_proba(TEXTS)
    clf.save(tmp_path / "m")
    assert not list((tmp_path / "m").rglob("*.kv"))
    kv_file.unlink()  # the saved model holds the vectors itself (safetensors), not a reference
    np.testing.assert_allclose(textransfer.load(tmp_path / "m").predict_proba(TEXTS), expected)


def test_old_format_without_checksums_still_loads(models, copy_model):
    """Folders written before format 2: no checksum record; a transformer's encoder.json holds
    trust_remote_code (ignored now)."""
    for name in ("tfidf", "bert_mlp"):
        model = copy_model(name)
        _edit_json(model / META_FILE, lambda m: (m.pop("files", None), m.update(format_version=1)) and None)
        if name == "bert_mlp":
            _edit_json(model / "encoder" / "encoder.json", lambda c: c.update(trust_remote_code=False))
        clf = models[name][0]
        np.testing.assert_allclose(textransfer.load(model).predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)


# -- 7: remote code runs only when the caller allows it ----------------------------------------------

_EVIL_CODE = """
from pathlib import Path
Path({marker!r}).write_text("ran")
from transformers import BertConfig, BertModel
class EvilConfig(BertConfig):
    model_type = "bert"
class EvilModel(BertModel):
    config_class = EvilConfig
"""


@pytest.mark.parametrize("reseal", [True, False], ids=["record-rewritten", "record-kept"])
def test_remote_code_in_a_received_model_does_not_run(copy_model, tmp_path, reseal):
    model = copy_model("bert_mlp")
    marker = tmp_path / "remote-code-ran"
    enc = model / "encoder"
    (enc / "evil.py").write_text(_EVIL_CODE.format(marker=str(marker)))
    _edit_json(enc / "config.json", lambda c: c.update(auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}))
    _edit_json(enc / "encoder.json", lambda c: c.update(trust_remote_code=True))
    if reseal:
        _reseal(model)
    fragment = "ships Python code.*trust_remote_code=True" if reseal else "does not match the sha256"
    with pytest.raises(ModelFormatError, match=fragment):
        _load_and_predict(model)
    assert not marker.exists()


def test_sentence_module_outside_sentence_transformers_does_not_load(copy_model, tmp_path):
    model = copy_model("sentence_ft")
    marker = tmp_path / "module-imported"
    (model / "encoder" / "evil_module.py").write_text(f"open({str(marker)!r}, 'w')\nclass Evil: ...\n")
    _edit_json(model / "encoder" / "modules.json", lambda mods: [{**mods[0], "type": "evil_module.Evil"}, *mods[1:]])
    _reseal(model)
    with pytest.raises(ModelFormatError, match=r"module type 'evil_module\.Evil'.*trust_remote_code=True"):
        _load_and_predict(model)
    assert not marker.exists()


def test_trust_remote_code_comes_from_the_caller_only(copy_model):
    model = copy_model("bert_mlp")
    _edit_json(model / "encoder" / "encoder.json", lambda c: c.update(trust_remote_code=True))
    _reseal(model)
    assert textransfer.load(model).encoder.trust_remote_code is False
    assert Classifier.load(model, trust_remote_code=True).encoder.trust_remote_code is True
    assert textransfer.predict(model, TEXTS[:1], trust_remote_code=False) in (["negative"], ["positive"])


# -- 8, 9: no pickles, no paths out of the folder ------------------------------------------------------


class _Payload:
    """Unpickling this creates the marker file: what a hostile .kv could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _static_vectors(path_of: Callable[[Path], str]) -> Callable[[Path, Path], None]:
    def attack(model: Path, marker: Path) -> None:
        kv = model / "encoder" / "vectors.kv"
        kv.write_bytes(pickle.dumps(_Payload(marker)))
        _edit_json(model / "encoder" / "encoder.json", lambda c: c.update(vectors=path_of(kv)))

    return attack


def _outside_kv(model: Path, marker: Path) -> None:
    kv = model.parent / "outside.kv"
    kv.write_bytes(pickle.dumps(_Payload(marker)))
    _edit_json(model / "encoder" / "encoder.json", lambda c: c.update(vectors=str(kv)))


def _set_encoder_key(key: str, value_of: Callable[[Path], str]) -> Callable[[Path, Path], None]:
    def attack(model: Path, marker: Path) -> None:
        _edit_json(model / "encoder" / "encoder.json", lambda c: c.update({key: value_of(model)}))

    return attack


def _symlinked_weights(model: Path, marker: Path) -> None:
    outside = model.parent / "outside.safetensors"
    shutil.copy(model / "encoder" / "model.safetensors", outside)
    (model / "encoder" / "model.safetensors").unlink()
    (model / "encoder" / "model.safetensors").symlink_to(outside)


def _record_points_out(model: Path, marker: Path) -> None:
    (model.parent / "secret.txt").write_text("secret")
    _edit_json(model / META_FILE, lambda m: m.setdefault("files", {}).update({"../secret.txt": "0" * 64}))


PATH_ATTACKS = {
    # name: (model, attack, reseal, fragment)
    "kv-inside-folder": ("static_mlp", _static_vectors(lambda kv: str(kv)), True, "pickle"),
    "kv-relative": ("static_mlp", _static_vectors(lambda kv: kv.name), True, "pickle"),
    "kv-outside-absolute": ("static_mlp", _outside_kv, True, "points outside the model folder"),
    "vectors-dotdot": ("static_mlp", _set_encoder_key("vectors", lambda m: "../../x.txt"), True, "points outside"),
    "model-absolute": ("bert_mlp", _set_encoder_key("model", lambda m: str(m.parent.parent / "bert_mlp" / "encoder")), True, "points outside"),
    "model-dotdot": ("bert_mlp", _set_encoder_key("model", lambda m: "./../../../bert_mlp/encoder"), True, "points outside"),
    "cnn-weights-dotdot": ("cnn", _set_encoder_key("weights", lambda m: "../../../cnn/encoder/weights.safetensors"), True, "points outside"),
    "symlink-out": ("bert_mlp", _symlinked_weights, False, "symlink .* outside the model folder"),
    "record-dotdot": ("tfidf", _record_points_out, False, "points outside"),
}


@pytest.mark.parametrize("attack", list(PATH_ATTACKS))
def test_no_pickle_and_no_path_out_of_the_folder(copy_model, tmp_path, attack):
    name, craft, reseal, fragment = PATH_ATTACKS[attack]
    model = copy_model(name)
    # the "outside" targets exist (tmp_path/<name>), so that a loader following them would succeed
    shutil.copytree(model, tmp_path / name)
    marker = tmp_path / "pickle-ran"
    craft(model, marker)
    if reseal:
        _reseal(model)
    with pytest.raises(ModelFormatError, match=fragment):
        _load_and_predict(model)
    assert not marker.exists()


def test_a_hub_name_never_loads_a_folder_in_the_cwd(copy_model, tmp_path, monkeypatch, tiny_bert_dir):
    model = copy_model("bert")
    _edit_json(model / "encoder" / "encoder.json", lambda c: c.update(model="innocent-model"))
    _reseal(model)
    cwd = tmp_path / "cwd"
    shutil.copytree(tiny_bert_dir, cwd / "innocent-model")
    monkeypatch.chdir(cwd)
    # offline in tests: the hub id is looked up on the hub (and fails), never in the cwd
    with pytest.raises(FileNotFoundError, match="innocent-model.*cannot be downloaded"):
        _load_and_predict(model)


# -- 10: sizes in JSON are checked against the weights before anything is allocated ----------


def _head_json(key: str, value: int, in_config: bool = False) -> Callable[[Path], None]:
    def attack(model: Path) -> None:
        _edit_json(model / "head" / "head.json", lambda h: (h["config"] if in_config else h).update({key: value}))

    return attack


def _hf_config(key: str, value: int) -> Callable[[Path], None]:
    def attack(model: Path) -> None:
        _edit_json(model / "encoder" / "config.json", lambda c: c.update({key: value}))

    return attack


def _tfidf_vocab_grows(model: Path) -> None:
    _edit_json(model / "encoder" / "tfidf.json", lambda v: [*v, *[f"extra{i}" for i in range(5)]])


def _static_vocab_shrinks(model: Path) -> None:
    _edit_json(model / "encoder" / "vectors.vocab.json", lambda v: v[:-3])


SIZE_ATTACKS = {
    # name: (model, attack, fragment); sizes that would need terabytes if allocated
    "mlp-hidden": ("bert_mlp", _head_json("hidden", 10**11, in_config=True), r"head\.safetensors .*shape"),
    "mlp-in-dim": ("bert_mlp", _head_json("in_dim", 10**11), r"head\.safetensors .*shape"),
    "logreg-classes": ("bert", _head_json("num_classes", 10**6), r"head\.safetensors .*shape"),
    "bert-vocab": ("bert_mlp", _hf_config("vocab_size", 10**10), "word_embeddings.*config.json"),
    "bert-hidden": ("bert_mlp", _hf_config("hidden_size", 2**20), "shape"),
    "bert-layers": ("bert_mlp", _hf_config("num_hidden_layers", 200), "num_hidden_layers = 200"),
    "bert-max-length": ("bert_mlp", lambda m: _edit_json(m / "encoder" / "encoder.json", lambda c: c.update(max_length=10**9)), "max_length"),
    "cnn-channels": ("cnn", lambda m: _edit_json(m / "encoder" / "encoder.json", lambda c: c.update(channels=[4, 50_000])), "weights.safetensors.*shape"),
    "tfidf-vocab": ("tfidf", _tfidf_vocab_grows, r"tfidf\.safetensors.*shape"),
    "static-vocab": ("static_mlp", _static_vocab_shrinks, r"vectors\.safetensors.*shape"),
}


@pytest.mark.parametrize("attack", list(SIZE_ATTACKS))
def test_sizes_are_checked_against_the_weights(copy_model, attack):
    name, craft, fragment = SIZE_ATTACKS[attack]
    model = copy_model(name)
    craft(model)
    _reseal(model)
    with pytest.raises(ModelFormatError, match=fragment):
        _load_and_predict(model)


# -- 11, 20: damaged weights, mixed-up folders, broken meta files ----------------------------------


def _truncate(rel: str) -> Callable[[Path], None]:
    def attack(model: Path) -> None:
        data = (model / rel).read_bytes()
        (model / rel).write_bytes(data[: len(data) // 2])

    return attack


def _zero(rel: str) -> Callable[[Path], None]:
    def attack(model: Path) -> None:
        size = (model / rel).stat().st_size
        (model / rel).write_bytes(b"\0" * size)

    return attack


def _zero_tensor_data(rel: str) -> Callable[[Path], None]:
    """Zeros after the safetensors header: a valid file whose weights are all 0."""

    def attack(model: Path) -> None:
        data = bytearray((model / rel).read_bytes())
        start = 8 + int.from_bytes(data[:8], "little")
        data[start:] = bytes(len(data) - start)
        (model / rel).write_bytes(bytes(data))

    return attack


def _drop_from_record(model: Path) -> None:
    _edit_json(model / META_FILE, lambda m: (m.pop("files", None), None)[1])


DAMAGE = {
    # name: (model, attack, drop checksum record first, fragment)
    "head-truncated": ("bert_mlp", _truncate("head/head.safetensors"), False, r"head\.safetensors does not match the sha256"),
    "head-truncated-old-format": ("bert_mlp", _truncate("head/head.safetensors"), True, r"head\.safetensors is not a readable safetensors file"),
    "bert-zeroed": ("bert_mlp", _zero_tensor_data("encoder/model.safetensors"), False, r"model\.safetensors does not match the sha256"),
    "idf-zeroed": ("tfidf", _zero_tensor_data("encoder/tfidf.safetensors"), False, r"tfidf\.safetensors does not match"),
    "logreg-all-zero-bytes": ("tfidf", _zero("head/head.safetensors"), True, r"head\.safetensors is not a readable"),
    "vocab-missing": ("static_mlp", lambda m: (m / "encoder" / "vectors.vocab.json").unlink(), False, "incomplete.*vectors.vocab.json"),
    "file-added": ("tfidf", lambda m: (m / "encoder" / "extra.safetensors").write_bytes(b"x"), False, "not part of the model when it was saved"),
}


@pytest.mark.parametrize("attack", list(DAMAGE))
def test_damaged_weights_are_reported_naming_the_file(copy_model, attack):
    name, craft, old_format, fragment = DAMAGE[attack]
    model = copy_model(name)
    if old_format:
        _drop_from_record(model)
    craft(model)
    with pytest.raises(ModelFormatError, match=fragment):
        _load_and_predict(model)


def test_swapped_head_from_a_model_with_another_dim(copy_model):
    model = copy_model("bert_mlp")  # 32-d BERT features
    shutil.rmtree(model / "head")
    shutil.copytree(copy_model("static_mlp") / "head", model / "head")  # an 8-d head
    _reseal(model)
    with pytest.raises(ModelFormatError, match="head takes 8-d features but the encoder .* 32-d"):
        _load_and_predict(model)


def test_head_with_other_class_count_than_labels(copy_model):
    model = copy_model("tfidf")
    _edit_json(model / META_FILE, lambda m: m.update(labels=["a", "b", "c"]))
    with pytest.raises(ModelFormatError, match="head scores 2 classes but .* lists 3 labels"):
        _load_and_predict(model)


META_ATTACKS = {
    "a-list": (lambda m: [m], "JSON list, not an object"),
    "no-encoder": (lambda m: (m.pop("encoder"), m)[1], "lacks encoder.name"),
    "no-head-name": (lambda m: (m["head"].pop("name"), m)[1], "lacks head.name"),
    "head-name-not-str": (lambda m: (m["head"].update(name=["logreg"]), m)[1], "lacks head.name"),
    "no-labels": (lambda m: (m.pop("labels"), m)[1], "labels must be a list"),
    "labels-dicts": (lambda m: (m.update(labels=[{}, {}]), m)[1], "labels must be a list"),
    "unknown-encoder": (lambda m: (m["encoder"].update(name="evil"), m)[1], "unknown encoder 'evil'"),
    "files-not-a-dict": (lambda m: (m.update(files=["x"]), m)[1], "files must map"),
}


@pytest.mark.parametrize("attack", list(META_ATTACKS))
def test_broken_meta_file_is_one_clear_error(copy_model, attack):
    model = copy_model("tfidf")
    edit, fragment = META_ATTACKS[attack]
    _edit_json(model / META_FILE, edit)
    with pytest.raises(ModelFormatError, match=fragment) as info:
        _load_and_predict(model)
    assert "textransfer.json" in str(info.value)


@pytest.mark.parametrize(
    "file, content, fragment",
    [
        ("encoder/encoder.json", "[1, 2]", r"encoder\.json holds a JSON list"),
        ("encoder/encoder.json", '{"ngram_range": [1, 2], "bogus": 1}', "bogus"),
        ("head/head.json", '{"num_classes": 2}', r"head\.json has no 'config' object"),
        ("head/head.json", '{"config": {"C": -1}, "num_classes": 2}', "C must be > 0"),
    ],
)
def test_broken_part_json_names_the_file(copy_model, file, content, fragment):
    model = copy_model("tfidf")
    (model / file).write_text(content)
    _reseal(model)
    with pytest.raises(ModelFormatError, match=fragment) as info:
        _load_and_predict(model)
    assert str(model) in str(info.value)


# -- 4: saving never deletes a user's files; leftovers of killed saves are cleaned -----------------


def test_save_refuses_a_folder_that_is_not_a_model(models, tmp_path):
    clf = models["tfidf"][0]
    results = tmp_path / "results"
    results.mkdir()
    (results / "thesis.tex").write_text("five years of work")
    with pytest.raises(ValueError, match=r"results.*not a textransfer model.*thesis\.tex.*new or empty folder"):
        clf.save(results)
    assert (results / "thesis.tex").read_text() == "five years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no leftovers either
    (tmp_path / "a_file").write_text("data")
    with pytest.raises(ValueError, match="is a file"):
        clf.save(tmp_path / "a_file")
    assert (tmp_path / "a_file").read_text() == "data"


def test_save_keeps_user_files_put_into_a_model_folder(models, tmp_path):
    clf = models["tfidf"][0]
    clf.save(tmp_path / "m")
    (tmp_path / "m" / "notes.txt").write_text("my notes")
    with pytest.raises(ValueError, match=r"notes\.txt.*did not write"):
        clf.save(tmp_path / "m")
    assert (tmp_path / "m" / "notes.txt").read_text() == "my notes"
    (tmp_path / "m" / "notes.txt").unlink()
    (tmp_path / "m" / "head" / "mine.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"mine\.txt"):
        clf.save(tmp_path / "m")
    (tmp_path / "m" / "head" / "mine.txt").unlink()
    clf.save(tmp_path / "m")  # a model folder (or an empty one) is replaced
    (tmp_path / "empty").mkdir()
    clf.save(tmp_path / "empty")
    assert textransfer.load(tmp_path / "empty").labels == clf.labels


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_killed_save_are_cleaned_by_the_next_save(models, tmp_path):
    clf = models["tfidf"][0]
    dead = _dead_pid()
    stale = [tmp_path / f".m.tmp-{dead}-0a1b2c3d", tmp_path / f".m.old-{dead}-0a1b2c3d", tmp_path / ".m.tmp-k2j4h5_x"]
    alive = [tmp_path / f".m.tmp-{os.getpid()}-0a1b2c3d", tmp_path / ".m.tmp-recent1", tmp_path / f".other.tmp-{dead}-00"]
    for d in stale + alive:
        (d / "encoder").mkdir(parents=True)
        (d / "encoder" / "w.bin").write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale[2], (two_days_ago, two_days_ago))  # an older version's tmp folder: no pid
    clf.save(tmp_path / "m")
    assert not any(d.exists() for d in stale)
    assert all(d.exists() for d in alive)
    assert textransfer.load(tmp_path / "m").labels == clf.labels


# -- 24: modes follow the umask ----------------------------------------------------------------------


@pytest.mark.parametrize("umask, dir_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_modes_follow_the_umask(models, tmp_path, umask, dir_mode, file_mode):
    clf = models["bert_mlp"][0]
    old = os.umask(umask)
    try:
        clf.save(tmp_path / "m")
    finally:
        os.umask(old)
    paths = [tmp_path / "m", *(tmp_path / "m").rglob("*")]
    dirs = {p.relative_to(tmp_path): stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_dir()}
    files = {p.relative_to(tmp_path): stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_file()}
    assert set(dirs.values()) == {dir_mode}, dirs
    assert set(files.values()) == {file_mode}, files
    assert any(p.suffix == ".safetensors" for p in files)


def test_cli_passes_trust_remote_code_only_when_the_flag_is_given(monkeypatch):
    import textransfer.classifier as classifier_module
    from textransfer import cli

    calls = []

    def fake_load(model_dir, trust_remote_code=False, precision=None):
        calls.append(trust_remote_code)
        raise ValueError("stop here")

    monkeypatch.setattr(classifier_module, "load", fake_load)
    assert cli.main(["predict", "some_model", "great film"]) == 2
    assert cli.main(["predict", "some_model", "--trust-remote-code", "great film"]) == 2
    assert calls == [False, True]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [('["good", "bad", "good"]', "lists a word twice"), ('{"good": 0}', "JSON list of words"),
     ('["good", 3]', "JSON list of words"), ("[not json", "is not valid JSON")],
)
def test_a_damaged_vocabulary_names_the_file(tmp_path, content, fragment):
    from textransfer._modelfolder import read_string_list

    path = tmp_path / "vectors.vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelFormatError, match=fragment) as exc:
        read_string_list(path, "word")
    assert str(path) in str(exc.value)
    path.write_text('["good", "bad"]', encoding="utf-8")
    assert read_string_list(path, "word") == ["good", "bad"]
