"""Python ergonomics: DataFrames / datasets.Dataset as data (load_dataset and every strategy's
fit), and training settings given to create_strategy (textransfer.TrainingArgs)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import textransfer
from tests.conftest import make_toy
from textransfer.data import LabeledTexts, load_with_report
from textransfer.encoders.cache import FeatureCache
from textransfer.strategies import STRATEGIES, Strategy
from textransfer.training.args import TrainingArgs

pd = pytest.importorskip("pandas")

# Constructor settings a strategy cannot be built without.
_REQUIRED_KWARGS = {"zero_shot": {"labels": {"positive": "a good one", "negative": "a bad one"}}}


def _reviews() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review": ["a good film", "a bad film", "great plot", "awful plot"],
            "stars": [5, 1, 5, 1],
        }
    )


def _toy_frame(n: int = 48) -> pd.DataFrame:
    toy = make_toy("movies", ["film", "movie", "plot", "actor"], n=n, seed=1)
    return pd.DataFrame({"text": toy.texts, "label": toy.labels})


# --- 1. load_dataset(DataFrame / Dataset) ---------------------------------------------------------


def test_dataframe_with_named_columns():
    data = textransfer.load_dataset(
        _reviews(), text_column="review", label_column="stars", domain="shop"
    )
    assert isinstance(data, LabeledTexts)
    assert data.texts == ["a good film", "a bad film", "great plot", "awful plot"]
    assert data.labels == [5, 1, 5, 1] and all(type(lab) is int for lab in data.labels)
    assert data.domain == "shop"
    assert data.ids == [1, 2, 3, 4]


def test_dataframe_default_columns_and_unlabeled():
    df = _reviews().rename(columns={"review": "text"})
    unlabeled = textransfer.load_dataset(df, label_column=None)
    assert unlabeled.labels is None and unlabeled.texts == df["text"].tolist()
    assert textransfer.load_dataset(df.rename(columns={"stars": "label"})).labels == [5, 1, 5, 1]


def test_missing_column_names_the_columns_found():
    with pytest.raises(
        ValueError, match=r"column 'text' not found; columns are \['review', 'stars'\]"
    ):
        textransfer.load_dataset(_reviews())
    with pytest.raises(
        ValueError, match=r"column 'label' not found.*label_column='stars'.*label_column=None"
    ):
        textransfer.load_dataset(_reviews(), text_column="review")


def test_invalid_rows_dropped_with_counts_or_rejected():
    df = pd.DataFrame(
        {
            "text": ["good", None, "  ", "bad", "fine", "ok"],
            "label": ["pos", "pos", "neg", None, "N/A", "neg"],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    data, report = load_with_report(df)
    assert data.texts == ["good", "ok"] and data.labels == ["pos", "neg"]
    assert report.rows_read == 6 and report.dropped == 4 and report.kept == 2
    assert report.reasons == {"missing text": 1, "empty text": 1, "missing label": 2}
    # Row notes name the DataFrame's own index label, as pandas users look rows up.
    with pytest.raises(
        ValueError, match=r"4 of 6 rows are unusable .*row 2 \(index 11\): missing text"
    ):
        textransfer.load_dataset(df, on_invalid="error")


def test_missing_label_spelling_kept_when_label_map_names_it():
    df = pd.DataFrame({"text": ["a", "b", "c"], "label": ["yes", "no", "N/A"]})
    assert textransfer.load_dataset(df).labels == ["yes", "no"]
    mapped = textransfer.load_dataset(df, label_map={"N/A": "unknown"})
    assert mapped.labels == ["yes", "no", "unknown"]


def test_float_labels_normalised_and_scores_rejected():
    whole = pd.DataFrame({"text": ["a", "b", "c"], "label": [1.0, 0.0, np.nan]})
    assert textransfer.load_dataset(whole).labels == [1, 0]  # a NaN made the column float
    scores = pd.DataFrame({"text": ["a", "b", "c"], "label": [0.25, 0.5, 0.75]})
    with pytest.raises(ValueError, match="non-integer numbers .*a score, not classes"):
        textransfer.load_dataset(scores)


def test_high_cardinality_label_column_rejected():
    df = pd.DataFrame(
        {"text": [f"text {i}" for i in range(40)], "title": [f"title {i}" for i in range(40)]}
    )
    with pytest.raises(ValueError, match="40 distinct values in 40 rows"):
        textransfer.load_dataset(df, label_column="title")


def test_non_string_column_names_and_id_column():
    df = pd.DataFrame({0: ["x", "y"], 1: ["a", "b"], "id": ["r1", "r2"]})
    data = textransfer.load_dataset(df, text_column="0", label_column="1")
    assert data.texts == ["x", "y"] and data.labels == ["a", "b"] and data.ids == ["r1", "r2"]


def test_same_frame_same_fingerprint_as_the_csv_file(tmp_path):
    df = _reviews()
    first = textransfer.load_dataset(df, text_column="review", label_column="stars")
    again = textransfer.load_dataset(df.copy(), text_column="review", label_column="stars")
    assert first.fingerprint() == again.fingerprint()
    df.to_csv(tmp_path / "reviews.csv", index=False)
    from_file = textransfer.load_dataset(
        str(tmp_path / "reviews.csv"), text_column="review", label_column="stars"
    )
    assert from_file.fingerprint() == first.fingerprint()  # the feature cache hits across both
    other = df.assign(stars=[5, 1, 1, 1])
    assert (
        textransfer.load_dataset(other, text_column="review", label_column="stars").fingerprint()
        != first.fingerprint()
    )


def test_options_are_checked():
    with pytest.raises(TypeError, match="Did you mean 'text_column'"):
        textransfer.load_dataset(_reviews(), text_col="review")
    with pytest.raises(TypeError, match="encoding applies to files"):
        textransfer.load_dataset(
            _reviews(), text_column="review", label_column="stars", encoding="latin-1"
        )
    with pytest.raises(ValueError, match=r"load_dataset\(on_invalid='skip'\)"):
        textransfer.load_dataset(
            _reviews(), text_column="review", label_column="stars", on_invalid="skip"
        )
    with pytest.raises(TypeError, match="pandas DataFrame or a datasets.Dataset, got list"):
        textransfer.load_dataset(["a good film"])


def test_options_apply_to_files_too(tmp_path):
    _reviews().to_csv(tmp_path / "r.csv", index=False)
    data = textransfer.load_dataset(
        str(tmp_path / "r.csv"), text_column="review", label_column="stars", limit=2
    )
    assert len(data) == 2 and sorted(data.labels) == [1, 5]


def test_hf_dataset_with_class_labels():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "y": datasets.ClassLabel(names=["neg", "pos"])}
    )
    ds = datasets.Dataset.from_dict(
        {"sentence": ["meh", "great", "lost"], "y": [0, 1, -1]}, features=features
    )
    data, report = load_with_report(ds, text_column="sentence", label_column="y")
    assert data.texts == ["meh", "great"] and data.labels == ["neg", "pos"]  # -1: no label, dropped
    assert report.reasons == {"missing label": 1}
    with pytest.raises(
        ValueError, match=r"Dataset: column 'text' not found; columns are \['sentence', 'y'\]"
    ):
        textransfer.load_dataset(ds)


def test_dataset_dict_needs_a_split():
    datasets = pytest.importorskip("datasets")
    part = datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]})
    dd = datasets.DatasetDict({"train": part, "test": part.select([1])})
    with pytest.raises(
        ValueError, match=r"several splits \('train', 'test'\).*load_dataset\(data\['train'\]\)"
    ):
        textransfer.load_dataset(dd)
    assert textransfer.load_dataset(dd, split="test").labels == ["y"]
    with pytest.raises(ValueError, match=r"no split 'dev'; its splits are \['train', 'test'\]"):
        textransfer.load_dataset(dd, split="dev")


def test_loading_a_frame_imports_nothing_heavy_itself():
    # textransfer must not import pandas/datasets to recognise (or fail to recognise) a table.
    code = (
        "import sys, json, textransfer; from textransfer.data import frames; "
        "frames.table_kind([1]); textransfer.load_dataset; "
        "print(json.dumps([m for m in ('pandas', 'datasets') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# --- 2. Strategy.fit takes tables, for every registered strategy ----------------------------------


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_reads_a_table_before_fitting(name):
    strategy = textransfer.create_strategy(name, **_REQUIRED_KWARGS.get(name, {}))
    enc, head = textransfer.create_encoder("tfidf"), textransfer.create_head("logreg")
    wrong = pd.DataFrame({"review": ["good"], "label": ["pos"]})
    # The table is read (and its columns checked) before any strategy-specific check runs.
    with pytest.raises(
        ValueError, match=r"fit\(train=\.\.\.\): DataFrame: column 'text' not found"
    ):
        strategy.fit(enc, head, wrong)
    with pytest.raises(ValueError, match=r"fit\(val=\.\.\.\): DataFrame: column 'text' not found"):
        strategy.fit(enc, head, _toy_frame(), val=wrong)
    with pytest.raises(
        TypeError, match=r"fit\(train=\.\.\.\) takes LabeledTexts, a pandas DataFrame"
    ):
        strategy.fit(enc, head, ["good"])


def test_frozen_fit_on_a_frame_equals_fit_on_labeled_texts():
    df = _toy_frame()
    data = LabeledTexts(df["text"].tolist(), df["label"].tolist())
    clf_df = textransfer.create_strategy("frozen").fit(
        textransfer.create_encoder("tfidf"), textransfer.create_head("logreg"), df
    )
    clf_lt = textransfer.create_strategy("frozen").fit(
        textransfer.create_encoder("tfidf"), textransfer.create_head("logreg"), data
    )
    probe = ["a good phone", "a dreadful plot"]
    assert clf_df.predict(probe) == ["positive", "negative"]
    np.testing.assert_array_equal(clf_df.predict_proba(probe), clf_lt.predict_proba(probe))


def test_coral_takes_target_texts_as_a_frame_without_labels():
    source = _toy_frame()
    target = pd.DataFrame({"text": make_toy("products", ["phone", "screen"], n=20, seed=2).texts})
    strategy = textransfer.create_strategy("coral")
    clf = strategy.fit(
        textransfer.create_encoder("tfidf", max_features=50),
        textransfer.create_head("logreg"),
        source,
        target_unlabeled=target,
    )
    assert strategy.last_fit_info["target_rows"] == 20
    assert clf.predict(["a good screen"]) == ["positive"]


def test_a_users_own_strategy_gets_tables_too():
    seen = {}

    class Recording(Strategy):
        def fit(self, encoder, head, train, val=None, target_unlabeled=None):
            seen.update(train=train, val=val, target=target_unlabeled)
            return None

    df = _toy_frame(8)
    Recording().fit(None, None, df, val=df, target_unlabeled=df)
    assert isinstance(seen["train"], LabeledTexts) and seen["train"].labels == df["label"].tolist()
    assert isinstance(seen["val"], LabeledTexts)
    assert seen["target"].labels is None  # target texts are read without their labels


# --- 3. TrainingArgs public; create_strategy(training=, batch_size=, cache=) ----------------------


def test_training_args_is_public():
    assert textransfer.TrainingArgs is TrainingArgs
    assert "TrainingArgs" in textransfer.__all__


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_create_strategy_sets_training_batch_size_and_cache(name, tmp_path):
    strategy = textransfer.create_strategy(
        name,
        training=TrainingArgs(epochs=2, lr=1e-4),
        batch_size=7,
        cache=tmp_path / "feats",
        **_REQUIRED_KWARGS.get(name, {}),
    )
    assert (strategy.training.epochs, strategy.training.lr) == (2, 1e-4)
    assert strategy.batch_size == 7
    assert (
        isinstance(strategy.cache, FeatureCache) and strategy.cache.directory == tmp_path / "feats"
    )
    as_dict = textransfer.create_strategy(
        name, training={"epochs": 3, "lr": "1e-3"}, **_REQUIRED_KWARGS.get(name, {})
    )
    assert (as_dict.training.epochs, as_dict.training.lr) == (3, 1e-3)


def test_training_settings_are_checked():
    with pytest.raises(TypeError, match="training must be a TrainingArgs .* got int"):
        textransfer.create_strategy("finetune", training=2)
    with pytest.raises(ValueError, match="unknown setting 'epoch'. Did you mean 'epochs'"):
        textransfer.create_strategy("finetune", training={"epoch": 2})
    with pytest.raises(ValueError, match="training.lr must be > 0"):
        textransfer.create_strategy("finetune", training={"lr": -1})
    with pytest.raises(
        ValueError, match=r"'epochs' is a training setting.*training=TrainingArgs\(epochs=\.\.\.\)"
    ):
        textransfer.create_strategy("finetune", epochs=2)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        textransfer.create_strategy("frozen", batch_size="8")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        textransfer.create_strategy("frozen", batch_size=0)
    with pytest.raises(TypeError, match="cache must be a FeatureCache"):
        textransfer.create_strategy("frozen", cache=3)


def test_attribute_assignment_still_works_and_is_checked():
    strategy = textransfer.create_strategy("frozen")
    strategy.training = TrainingArgs(epochs=4)
    assert strategy.training.epochs == 4
    strategy.training = {"epochs": 5}
    assert isinstance(strategy.training, TrainingArgs) and strategy.training.epochs == 5
    strategy.cache = None
    assert strategy.cache is None
    with pytest.raises(TypeError, match="training must be a TrainingArgs"):
        strategy.training = "fast"


def test_finetune_trains_with_the_settings_given_to_create_strategy(tiny_bert_dir):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    strategy = textransfer.create_strategy(
        "finetune",
        val_fraction=0.0,
        training=TrainingArgs(epochs=1, lr=1e-3, batch_size=8, patience=None),
    )
    encoder = textransfer.create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
    clf = strategy.fit(encoder, textransfer.create_head("linear"), _toy_frame(16))
    assert len(strategy.last_fit_info["history"]) == 1  # epochs=1, not the default 10
    assert strategy.last_fit_info["train_rows"] == 16
    assert set(clf.predict(["a good film", "a bad plot"])) <= {"positive", "negative"}
