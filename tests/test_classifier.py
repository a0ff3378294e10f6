"""Classifier predict / save / load, and bad model directories."""

from __future__ import annotations

import json

import numpy as np
import pytest

import textransfer
from textransfer.classifier import META_FILE, ModelFormatError


@pytest.fixture
def clf(toy_movies):
    s = textransfer.create_strategy("frozen")
    return s.fit(textransfer.create_encoder("tfidf"), textransfer.create_head("logreg"), toy_movies)


def test_predict_api(clf):
    assert clf.predict([]) == []
    assert clf.predict_proba([]).shape == (0, 2)
    proba = clf.predict_proba(["a wonderful phone", "an awful plot"])
    assert proba.shape == (2, 2) and proba.dtype == np.float32
    assert clf.predict(["a wonderful phone", "an awful plot"]) == ["positive", "negative"]


@pytest.mark.parametrize("bad", [[1, 2], ["ok", None], "a single string"])
def test_non_string_inputs_raise_type_error(clf, bad):
    with pytest.raises(TypeError):
        clf.predict(bad)


def test_save_load_predicts_the_same(clf, tmp_path):
    texts = ["a superb camera", "boring film", "", "日本語 🙂"]
    clf.save(tmp_path / "m")
    assert not list((tmp_path / "m").rglob("*.pkl"))
    meta = json.loads((tmp_path / "m" / META_FILE).read_text())
    assert meta["encoder"]["name"] == "tfidf" and meta["labels"] == ["negative", "positive"]
    loaded = textransfer.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))
    assert textransfer.predict(tmp_path / "m", texts) == clf.predict(texts)


def test_save_overwrites_atomically(clf, tmp_path):
    clf.save(tmp_path / "m")
    clf.save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no leftovers


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model directory"):
        textransfer.load(tmp_path / "nope")
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngood,positive\n")
    with pytest.raises(FileNotFoundError, match=r"reviews\.csv is a file, not a model directory"):
        textransfer.load(data)


def test_missing_meta_file(clf, tmp_path):
    clf.save(tmp_path / "m")
    (tmp_path / "m" / META_FILE).unlink()
    with pytest.raises(ModelFormatError, match="missing"):
        textransfer.load(tmp_path / "m")


def test_missing_weights(clf, tmp_path):
    clf.save(tmp_path / "m")
    (tmp_path / "m" / "head" / "head.safetensors").unlink()
    with pytest.raises(ModelFormatError, match="incomplete"):
        textransfer.load(tmp_path / "m")


def test_newer_format_version(clf, tmp_path):
    clf.save(tmp_path / "m")
    meta_path = tmp_path / "m" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="newer textransfer.*upgrade"):
        textransfer.load(tmp_path / "m")
