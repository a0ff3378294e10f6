"""The Hugging Face hub format (issue 16, item 1): ``save_pretrained`` / ``from_pretrained`` /
``push_to_hub``, the generated model card and ``id2label`` / ``label2id`` where Hugging Face tools
look for them. Everything runs offline: the hub is a fake ``HfApi`` and a fake
``snapshot_download`` that lays files out as the real hub cache does (symlinks into blobs/)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import huggingface_hub
import numpy as np
import pytest
from huggingface_hub import metadata_load

import textransfer
from tests.conftest import make_toy
from textransfer.classifier import META_FILE, Classifier, ModelFormatError
from textransfer.data.labeled import LabelMap

TEXTS = ["a wonderful film , really wonderful", "an awful phone", "boring plot", ""]
METRICS = {
    "test": {"domain": "movies", "accuracy": 0.9375, "macro_f1": 0.9366},
    "products": {"domain": "products", "accuracy": 0.8125, "macro_f1": 0.8042},
}


@pytest.fixture(scope="module")
def clf(tiny_bert_dir: Path) -> Classifier:
    """A frozen tiny BERT (from a local folder: copied into every save) + logreg, with the
    metrics and training data a run records."""
    data = make_toy("movies", ["film", "plot"], n=24, seed=3)
    encoder = textransfer.create_encoder("transformer", model=str(tiny_bert_dir), max_length=32)
    head = textransfer.create_head("logreg")
    label_map = LabelMap.from_labels(data.labels)
    head.fit(encoder.encode(data.texts), label_map.encode(data.labels), num_classes=len(label_map))
    out = Classifier(encoder, head, label_map, strategy={"name": "frozen", "kwargs": {}})
    out.metrics = json.loads(json.dumps(METRICS))
    out.training_data = {"domain": "movies", "rows": 24, "labels": {"positive": 12, "negative": 12}}
    return out


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # hub views go here


# -- save_pretrained / from_pretrained on a local folder -----------------------------------------


def test_save_pretrained_round_trip_and_card(clf: Classifier, tmp_path: Path) -> None:
    out = clf.save_pretrained(tmp_path / "model", card_data={"license": "mit"})
    loaded = textransfer.from_pretrained(out)
    assert isinstance(loaded, Classifier)
    assert loaded.predict(TEXTS) == clf.predict(TEXTS)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)
    assert loaded.metrics == METRICS and loaded.training_data["rows"] == 24

    card = (out / "README.md").read_text(encoding="utf-8")
    front = metadata_load(out / "README.md")  # what the hub reads
    assert front["library_name"] == "textransfer"
    assert front["pipeline_tag"] == "text-classification"
    assert front["license"] == "mit"
    assert {"textransfer", "transformer", "frozen"} <= set(front["tags"])
    results = front["model-index"][0]["results"]
    accuracies = {r["dataset"]["name"]: r["metrics"][0]["value"] for r in results}
    assert accuracies == {"movies": 0.9375, "products": 0.8125}
    assert "Accuracy (cross-domain)" in {r["metrics"][0]["name"] for r in results}
    for expected in (
        "| 0 | negative |",
        "| 1 | positive |",  # labels
        "- Domain: movies",
        "- Rows: 24",
        "positive: 12, negative: 12",  # training data
        "- Encoder: `transformer`",
        "- Head: `logreg`",
        "- Strategy: `frozen`",
        "| products | products | cross-domain | 0.8125 | 0.8042 |",  # metrics
        "| test | movies | in-domain | 0.9375 | 0.9366 |",
        "**Domain shift.**",
        "12.5 points lower across the shift",
        'textransfer.from_pretrained("path/to/this/folder")',
    ):
        assert expected in card, expected


def test_labels_reach_hugging_face_config_and_meta(clf: Classifier, tmp_path: Path) -> None:
    out = clf.save_pretrained(tmp_path / "model")
    meta = json.loads((out / META_FILE).read_text())
    assert meta["id2label"] == {"0": "negative", "1": "positive"}
    assert meta["label2id"] == {"negative": 0, "positive": 1}
    hf_config = json.loads((out / "encoder" / "config.json").read_text())
    assert hf_config["id2label"] == {"0": "negative", "1": "positive"}
    assert hf_config["label2id"] == {"negative": 0, "positive": 1}
    # The checksum record was taken after the labels were written: the folder loads.
    digest = hashlib.sha256((out / "encoder" / "config.json").read_bytes()).hexdigest()
    assert meta["files"]["encoder/config.json"] == digest
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(out / "encoder").id2label == {0: "negative", 1: "positive"}


def test_card_is_documentation(clf: Classifier, tmp_path: Path) -> None:
    """Not in the checksum record: an edited or deleted card never stops a load, and a save
    does not overwrite a card the user edited."""
    out = clf.save(tmp_path / "model")  # save writes the card too
    meta = json.loads((out / META_FILE).read_text())
    assert "README.md" not in meta["files"] and (out / "README.md").is_file()
    clf.save(out)  # an unedited card is textransfer's: replaced
    with (out / "README.md").open("a", encoding="utf-8") as fh:
        fh.write("\nOur notes on this model.\n")
    assert textransfer.load(out).predict(TEXTS) == clf.predict(TEXTS)
    with pytest.raises(ValueError, match=r"README\.md.*edited"):
        clf.save(out)
    assert "Our notes" in (out / "README.md").read_text()
    (out / "README.md").unlink()
    assert textransfer.load(out).predict(TEXTS) == clf.predict(TEXTS)
    # Other unrecorded files in the parts are still refused.
    (out / "encoder" / "extra.json").write_text("{}")
    with pytest.raises(ModelFormatError, match="extra.json was not part of the model"):
        textransfer.load(out)


def test_from_pretrained_local_errors(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file"):
        textransfer.from_pretrained(tmp_path / "file.txt")
    with pytest.raises(FileNotFoundError, match="not a hub repo id"):
        textransfer.from_pretrained(str(tmp_path / "no" / "such" / "folder"))


# -- a fake hub --------------------------------------------------------------------------------


class FakeHub:
    """Records HfApi calls; keeps each repo's files in ``remote/<repo>`` and serves them through
    :meth:`snapshot_download` in the hub cache's layout (snapshot files symlink into blobs/)."""

    def __init__(self, root: Path) -> None:
        self.remote, self.cache = root / "remote", root / "hf-cache"
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.uploads: list[dict[str, Any]] = []
        self.commits = 0

    def api_class(self) -> type:
        hub = self

        class FakeHfApi:
            def __init__(self, token: Any = None, **kwargs: Any) -> None:
                hub.calls.append(("init", {"token": token}))

            def create_repo(self, repo_id: str, **kwargs: Any) -> Any:
                hub.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
                return SimpleNamespace(repo_id=repo_id)

            def upload_folder(self, *, repo_id: str, folder_path: str, **kwargs: Any) -> Any:
                hub.calls.append(("upload_folder", {"repo_id": repo_id, **kwargs}))
                root = Path(folder_path)
                files = {}
                for path in sorted(root.rglob("*")):
                    assert not path.is_symlink() and path.resolve().is_relative_to(root.resolve())
                    if path.is_file():
                        files[path.relative_to(root).as_posix()] = path.read_bytes()
                hub.uploads.append({"repo_id": repo_id, "files": files, **kwargs})
                repo = hub.remote / repo_id
                for path in sorted(repo.rglob("*")) if repo.exists() else []:
                    rel = path.relative_to(repo).as_posix()
                    if path.is_file() and any(fnmatch.fnmatch(rel, p) for p in kwargs.get("delete_patterns") or []):
                        path.unlink()
                for rel, data in files.items():
                    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                    (repo / rel).write_bytes(data)
                hub.commits += 1
                return SimpleNamespace(commit_url=f"https://hub.test/{repo_id}/commit/{hub.commits}")

        return FakeHfApi

    def snapshot_download(self, repo_id: str, *, revision: str | None = None, allow_patterns: Any = None, **kw: Any) -> str:
        self.calls.append(("snapshot_download", {"repo_id": repo_id, "revision": revision, "allow_patterns": allow_patterns}))
        repo = self.remote / repo_id
        if not repo.is_dir():
            response = SimpleNamespace(headers={}, status_code=404, request=None)
            raise huggingface_hub.errors.RepositoryNotFoundError(f"404: {repo_id}", response=response)
        folder = self.cache / f"models--{repo_id.replace('/', '--')}"
        snapshot = folder / "snapshots" / f"{self.commits:040d}"
        for path in sorted(repo.rglob("*")):
            rel = path.relative_to(repo).as_posix()
            if not path.is_file() or (allow_patterns and not any(fnmatch.fnmatch(rel, p) for p in allow_patterns)):
                continue
            data = path.read_bytes()
            blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            if not blob.exists():  # cached blobs are not downloaded again
                blob.write_bytes(data)
            link = snapshot / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(os.path.relpath(blob, link.parent))
        snapshot.mkdir(parents=True, exist_ok=True)
        return str(snapshot)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "HfApi", fake.api_class())
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    return fake


class ConnectError(Exception):
    """Named like the transport errors of httpx and its forks (DNS failure, refused connection)."""


@pytest.mark.parametrize(
    ("where", "error", "message"),
    [
        ("create_repo", huggingface_hub.errors.OfflineModeIsEnabled("offline"),
         "pushing to the hub repo 'me/m' needs the network, and downloads and uploads are off (HF_HUB_OFFLINE=1)"),
        ("create_repo", ConnectError("[Errno -2] Name or service not known"),
         "cannot reach the Hugging Face hub to push 'me/m' ([Errno -2] Name or service not known)"),
        ("upload_folder", TimeoutError("timed out"),
         "the connection to the Hugging Face hub failed while uploading to 'me/m' (timed out)"),
    ],
)
def test_push_without_the_network_is_one_clear_error(
    clf: Classifier, hub: FakeHub, monkeypatch: pytest.MonkeyPatch, where: str, error: Exception, message: str
) -> None:
    from textransfer.hub import HubError

    api = huggingface_hub.HfApi

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(api, where, fail)
    with pytest.raises(HubError, match=re.escape(message)):
        clf.push_to_hub("me/m")
    assert hub.uploads == []
    # Other errors are not dressed up as network trouble.
    monkeypatch.setattr(api, where, lambda *a, **k: (_ for _ in ()).throw(KeyError("bug")))
    with pytest.raises(KeyError):
        clf.push_to_hub("me/m")


def test_push_to_hub_uploads_the_model_folder(clf: Classifier, hub: FakeHub) -> None:
    info = clf.push_to_hub("me/tiny-sentiment", private=True, token="hf_test", commit_message="first")
    assert info.commit_url.endswith("/commit/1")
    calls = {name: kw for name, kw in hub.calls}
    assert calls["init"]["token"] == "hf_test"
    assert calls["create_repo"] == {"repo_id": "me/tiny-sentiment", "private": True, "exist_ok": True, "repo_type": "model"}
    assert calls["upload_folder"]["commit_message"] == "first"
    assert "encoder/**" in calls["upload_folder"]["delete_patterns"]
    files = hub.uploads[0]["files"]
    assert {"textransfer.json", "README.md", "head/head.safetensors", "encoder/encoder.json"} <= set(files)
    assert "encoder/model.safetensors" in files  # the encoder's weights travel with it
    assert all(not name.startswith(("/", "..")) and ".tmp-" not in name for name in files)
    meta = json.loads(files["textransfer.json"])
    assert set(meta["files"]) == {n for n in files if n.startswith(("encoder/", "head/"))}
    card = files["README.md"].decode()
    assert 'textransfer.from_pretrained("me/tiny-sentiment")' in card
    assert "name: me/tiny-sentiment" in card


def test_push_then_from_pretrained_through_the_hub_cache(clf: Classifier, hub: FakeHub, tmp_path: Path) -> None:
    clf.push_to_hub("me/tiny-sentiment")
    loaded = textransfer.from_pretrained("me/tiny-sentiment", revision="v1")
    assert loaded.predict(TEXTS) == clf.predict(TEXTS)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)
    downloads = [kw for name, kw in hub.calls if name == "snapshot_download"]
    # The meta file first (a repo of another library stops there), then the whole repo.
    assert downloads[0]["allow_patterns"] == ["textransfer.json", "textransfer-onnx.json"]
    assert downloads[-1]["allow_patterns"] is None and downloads[-1]["revision"] == "v1"
    # The hub cache's symlinks are loaded through a view of real files (hard links).
    views = list((tmp_path / "xdg-cache" / "textransfer" / "hub").glob("models--me--tiny-sentiment/*"))
    assert len(views) == 1 and not any(p.is_symlink() for p in views[0].rglob("*"))


def test_hub_weights_are_still_checksummed(clf: Classifier, hub: FakeHub) -> None:
    clf.push_to_hub("me/tiny-sentiment")
    snapshot = Path(hub.snapshot_download("me/tiny-sentiment"))
    blob = (snapshot / "head" / "head.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match=r"head\.safetensors does not match the sha256"):
        textransfer.from_pretrained("me/tiny-sentiment")


def test_push_replaces_files_of_an_older_push(clf: Classifier, hub: FakeHub, tiny_glove_file: Path) -> None:
    import copy

    with_outputs = copy.deepcopy(clf)  # an older push that carried source validation outputs
    with_outputs.set_calibration(clf.predict_proba(TEXTS), [0] * len(TEXTS), "rows")
    with_outputs.push_to_hub("me/model")
    assert (hub.remote / "me" / "model" / "calibration" / "source_val.safetensors").is_file()
    assert textransfer.from_pretrained("me/model").calibration is not None
    data = make_toy("movies", ["film", "plot"], n=24, seed=3)
    static = textransfer.create_encoder("static", vectors=str(tiny_glove_file))
    head = textransfer.create_head("logreg")
    label_map = LabelMap.from_labels(data.labels)
    head.fit(static.encode(data.texts), label_map.encode(data.labels), num_classes=len(label_map))
    other = Classifier(static, head, label_map)
    other.push_to_hub("me/model")
    remote = hub.remote / "me" / "model"
    assert not (remote / "encoder" / "model.safetensors").exists()  # the transformer's, deleted
    assert not (remote / "calibration").exists() or not any((remote / "calibration").iterdir())
    loaded = textransfer.from_pretrained("me/model")
    assert loaded.predict(TEXTS) == other.predict(TEXTS) and loaded.calibration is None


def test_from_pretrained_repo_id_with_a_plain_snapshot(clf: Classifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = clf.save_pretrained(tmp_path / "downloaded")
    seen: list[dict[str, Any]] = []

    def fake_snapshot_download(repo_id: str, **kwargs: Any) -> str:
        seen.append({"repo_id": repo_id, **kwargs})
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = textransfer.from_pretrained("someone/sentiment", revision="abc123", token="t")
    assert loaded.predict(TEXTS) == clf.predict(TEXTS)
    assert seen[-1]["repo_id"] == "someone/sentiment" and seen[-1]["revision"] == "abc123"
    assert seen[-1]["token"] == "t"
    assert not (tmp_path / "xdg-cache").exists()  # real files: loaded where they are


def test_a_repo_of_another_library_fails_before_its_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    patterns = []

    def fake_snapshot_download(repo_id: str, allow_patterns: Any = None, **kwargs: Any) -> str:
        patterns.append(allow_patterns)
        return str(tmp_path / "bert")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    with pytest.raises(ModelFormatError, match="'google-bert/bert-base-uncased' is not a textransfer model"):
        textransfer.from_pretrained("google-bert/bert-base-uncased")
    assert patterns == [["textransfer.json", "textransfer-onnx.json"]]


def test_missing_repo_is_one_clear_error(hub: FakeHub) -> None:
    with pytest.raises(FileNotFoundError, match=r"no repo me/nothing you can read.*token="):
        textransfer.from_pretrained("me/nothing")


def test_offline_repo_id_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No monkeypatched download: HF_HUB_OFFLINE=1 (tests/conftest.py) and an empty cache."""
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        textransfer.from_pretrained("someone/not-cached-model")
    message = str(err.value)
    assert "no folder someone/not-cached-model here" in message
    assert "not in the local Hugging Face cache" in message
    assert "HF_HUB_OFFLINE=1" in message and "hf download someone/not-cached-model" in message
    assert "\n" not in message


def test_cli_predicts_from_a_save_pretrained_folder(clf: Classifier, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A saved_pretrained folder is an ordinary model folder for the CLI."""
    from textransfer.cli import main

    out = clf.save_pretrained(tmp_path / "model")
    assert main(["predict", str(out), TEXTS[0]]) == 0
    assert capsys.readouterr().out.split("\t")[0] == clf.predict([TEXTS[0]])[0]


# -- what runs record for the card ---------------------------------------------------------------


def test_run_records_training_data_and_domains(tmp_path: Path, toy_movies, toy_products) -> None:
    from tests.fixtures.data import write_labeled_csv
    from textransfer.experiments.train.run import run

    result = run(
        {
            "name": "card",
            "output_dir": str(tmp_path / "runs"),
            "cache_dir": None,
            "data": {
                "train": write_labeled_csv(tmp_path / "movies.csv", toy_movies),
                "test_size": 0.25,
                "eval": {"products": write_labeled_csv(tmp_path / "products.csv", toy_products)},
            },
            "encoder": "tfidf",
            "strategy": {"name": "frozen", "head": "logreg"},
        }
    )
    model = result.run_dir / "model"
    meta = json.loads((model / META_FILE).read_text())
    assert meta["training_data"] == {"domain": "movies", "rows": 36, "labels": {"positive": 18, "negative": 18}}
    products = result.metrics["card"]["eval"]["products"]["accuracy"]
    assert meta["metrics"]["products"] == {
        "domain": "products",
        "accuracy": products,
        "macro_f1": result.metrics["card"]["eval"]["products"]["macro_f1"],
    }
    card = (model / "README.md").read_text()
    assert f"| products | products | cross-domain | {products:.4f} |" in card
    assert "- Rows: 36" in card


def test_crossdomain_saved_models_carry_cross_domain_accuracy(tmp_path: Path, toy_movies, toy_products) -> None:
    from tests.fixtures.data import write_labeled_csv
    from textransfer.experiments.crossdomain.config import load_crossdomain_config
    from textransfer.experiments.crossdomain.run import run_crossdomain

    config = {
        "name": "xd_card",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": None,
        "seeds": [0],
        "domains": {
            "movies": write_labeled_csv(tmp_path / "movies.csv", toy_movies),
            "products": write_labeled_csv(tmp_path / "products.csv", toy_products),
        },
        "sources": ["movies"],
        "targets": ["products"],
        "encoders": {"tfidf": {"name": "tfidf", "min_df": 1}},
        "strategies": {"frozen": {"name": "frozen", "head": "logreg"}},
        "evaluation": {"n_boot": 0, "plots": False, "oracle": False, "target_only": False},
        "save_models": True,
    }
    result = run_crossdomain(load_crossdomain_config(config))
    row = next(r for r in result.metrics["rows"] if r["setup"] == "tfidf+frozen")
    model = result.run_dir / "models" / "tfidf+frozen" / "movies_to_products"
    meta = json.loads((model / META_FILE).read_text())
    assert meta["metrics"]["cross_domain"]["domain"] == "products"
    assert meta["metrics"]["cross_domain"]["accuracy"] == pytest.approx(row["cross_domain"]["accuracy"]["mean"])
    assert meta["metrics"]["in_domain"]["domain"] == "movies"
    assert meta["training_data"]["domain"] == "movies"
    front = metadata_load(model / "README.md")
    names = {r["dataset"]["name"]: r["metrics"][0]["name"] for r in front["model-index"][0]["results"]}
    assert names == {"movies": "Accuracy (in-domain)", "products": "Accuracy (cross-domain)"}
