"""Zero-shot classification by similarity to label descriptions, and the cosine head it saves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import textransfer
from tests.conftest import _NEG, _POS, make_toy
from textransfer.data import LabeledTexts
from textransfer.experiments.train.config import load_config
from textransfer.strategies.base import CapabilityError

LABELS = {"positive": "good great wonderful", "negative": "bad awful terrible"}


@pytest.fixture(scope="module")
def sentiment_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GloVe-format vectors where positive words point along axis 0, negative ones along axis 1
    and every other word along axis 2: mean-pooled texts and descriptions are trivially separable."""
    rng = np.random.default_rng(0)
    words = {w: 0 for w in _POS} | {w: 1 for w in _NEG}
    others = [
        "a",
        "film",
        "movie",
        "plot",
        "actor",
        "phone",
        "battery",
        "camera",
        "screen",
        ",",
        "really",
    ]
    lines = []
    for w in [*words, *others]:
        v = rng.normal(scale=0.05, size=4)
        v[words.get(w, 2)] += 1.0
        lines.append(w + " " + " ".join(f"{x:.5f}" for x in v))
    path = tmp_path_factory.mktemp("zs") / "vectors.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _fit(vectors: Path, labels=LABELS, train=None):
    enc = textransfer.create_encoder("static", vectors=str(vectors), pooling="mean")
    strategy = textransfer.create_strategy("zero_shot", labels=labels)
    return strategy.fit(enc, textransfer.create_head("cosine"), train)


def test_zero_shot_separates_trivially_described_labels(sentiment_vectors, tmp_path):
    data = make_toy("products", ["phone", "battery", "camera", "screen"], n=40)
    clf = _fit(sentiment_vectors, train=data)
    assert clf.labels == ["negative", "positive"]
    assert clf.predict(data.texts) == data.labels
    proba = clf.predict_proba(data.texts[:3])
    assert proba.shape == (3, 2) and proba.dtype == np.float32
    clf.save(tmp_path / "model")
    assert not list((tmp_path / "model").rglob("*.pkl"))
    loaded = textransfer.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_proba(data.texts), clf.predict_proba(data.texts))
    assert loaded.strategy["name"] == "zero_shot" and loaded.strategy["kwargs"]["labels"] == LABELS


def test_zero_shot_reads_no_training_labels(sentiment_vectors):
    data = make_toy("products", ["phone", "camera"], n=20)
    flipped = LabeledTexts(
        data.texts, ["positive" if y == "negative" else "negative" for y in data.labels]
    )
    a = _fit(sentiment_vectors, train=data).predict_proba(data.texts)
    b = _fit(sentiment_vectors, train=flipped).predict_proba(data.texts)
    np.testing.assert_array_equal(a, b)


def test_several_descriptions_per_label_and_int_labels(sentiment_vectors):
    texts = ["a good phone", "a bad phone"]
    clf = _fit(
        sentiment_vectors,
        labels={1: ["good", "great"], 0: "awful"},
        train=LabeledTexts(texts, [1, 0]),
    )
    assert clf.labels == [0, 1] and clf.predict(texts) == [1, 0]


def test_missing_descriptions_are_named(sentiment_vectors):
    data = LabeledTexts(
        ["a good film", "a bad film", "a film"], ["positive", "negative", "neutral"]
    )
    with pytest.raises(ValueError, match=r"no description for label\(s\) \['neutral'\]"):
        _fit(sentiment_vectors, train=data)
    with pytest.raises(ValueError, match="needs a description of every label"):
        textransfer.create_strategy("zero_shot")


def test_zero_shot_needs_a_prototype_head(sentiment_vectors):
    enc = textransfer.create_encoder("static", vectors=str(sentiment_vectors))
    with pytest.raises(CapabilityError, match="head: cosine"):
        textransfer.create_strategy("zero_shot", labels=LABELS).fit(
            enc, textransfer.create_head("logreg"), None
        )


def test_zero_shot_config_defaults_to_the_cosine_head_and_runs(sentiment_vectors, tmp_path):
    from textransfer.cli import main

    csv = tmp_path / "reviews.csv"
    data = make_toy("movies", ["film", "plot"], n=24)
    csv.write_text(
        "text,label\n"
        + "".join(f"{t},{y}\n" for t, y in zip(data.texts, data.labels, strict=True)).replace(
            " , ", " "
        )
    )
    raw = {
        "name": "zs",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": None,
        "data": {"train": str(csv), "test_size": 0.25},
        "encoder": {"name": "static", "vectors": str(sentiment_vectors)},
        "strategy": {"name": "zero_shot", "labels": LABELS},
    }
    assert load_config(raw).strategy.head.name == "cosine"
    cfg = tmp_path / "zs.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(raw))
    assert main(["run", str(cfg)]) == 0
    clf = textransfer.load(tmp_path / "runs" / "zs" / "model")
    assert clf.predict(["a wonderful film", "a dreadful plot"]) == ["positive", "negative"]
    assert (
        main(["run", str(cfg), "--set", "strategy.labels={positive: good}"]) == 2
    )  # one label only


def test_a_crossdomain_grid_gives_zero_shot_its_cosine_head_too() -> None:
    """The default head comes from the strategy registry through the experiments layer (config.py
    itself imports no registry): every config loader must still apply it."""
    import yaml

    from textransfer.experiments.crossdomain.config import load_crossdomain_config

    raw = yaml.safe_load((Path(__file__).parents[1] / "configs" / "crossdomain_toy.yaml").read_text())
    raw["strategies"] = {"zs": {"name": "zero_shot", "encoders": list(raw["encoders"])[:1]},
                         "plain": {"name": "frozen", "encoders": list(raw["encoders"])[:1]}}
    cfg = load_crossdomain_config(raw)
    assert {k: v.head.name for k, v in cfg.strategies.items()} == {"zs": "cosine", "plain": "logreg"}
