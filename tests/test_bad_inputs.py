"""Bad inputs to ``predict --input`` and to data loading (issue 12): a user's file is never lost,
a bad file gets one message naming the file, the line and the fix, and nothing is silently
scored or trained on the wrong values."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import pytest

import textransfer
from tests.conftest import make_toy
from textransfer.classifier import Classifier
from textransfer.cli import main
from textransfer.data import load_with_report
from textransfer.encoders import create_encoder
from textransfer.encoders.base import check_batch_size, check_inputs
from textransfer.prediction import predict_file, predict_file_with_report

OLD_OUTPUT = b"precious,user,data\n1,2,3\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny TF-IDF + logistic-regression model on the toy corpus, saved once per module."""
    toy = make_toy("movies", ["film", "movie", "plot", "actor"], seed=1)
    clf = textransfer.create_strategy("frozen").fit(
        create_encoder("tfidf"), textransfer.create_head("logreg"), toy
    )
    return clf.save(tmp_path_factory.mktemp("bad_inputs") / "model")


@pytest.fixture(scope="module")
def clf(model_dir: Path) -> Classifier:
    return textransfer.load(model_dir)


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- 1. input = output ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink"])
def test_input_equal_to_output_is_refused_and_the_input_kept(clf, tmp_path, monkeypatch, suffix, spelling):
    content = "a good film\nan awful plot\n" if suffix == ".txt" else "text\na good film\nan awful plot\n"
    src = _write(tmp_path / f"data{suffix}", content)
    monkeypatch.chdir(tmp_path)
    if spelling == "same":
        dst: Path | str = src
    elif spelling == "relative":
        (tmp_path / "sub").mkdir()
        dst = f"sub/../data{suffix}"
    elif spelling == "symlink":
        dst = tmp_path / "link.csv"
        dst.symlink_to(src)
    else:
        dst = tmp_path / "hard.csv"
        os.link(src, dst)
    with pytest.raises(ValueError, match="same file"):
        predict_file(clf, src, dst)
    assert src.read_text(encoding="utf-8") == content


def test_cli_refuses_input_equal_to_output_with_exit_2(model_dir, tmp_path, capsys):
    src = _write(tmp_path / "texts.txt", "a good film\n")
    assert main(["predict", str(model_dir), "--input", str(src), "--output", str(src)]) == 2
    assert "same file" in capsys.readouterr().err
    assert src.read_text(encoding="utf-8") == "a good film\n"


# -- 2. a failed predict leaves the old output exactly as it was -------------------------------


BROKEN_LATE = {
    "missing text column value": ("in.csv", "id,text\n1,good\n2,bad\n3,fine\n4\n"),
    "bad utf-8 late": ("in.txt", b"good\nbad\nfine\nok\n\xff\xfe broken\n"),
    "ragged row late": ("in.csv", "text\ngood\nbad\nfine\nok\nx,y\n"),
}


@pytest.mark.parametrize("case", list(BROKEN_LATE))
def test_failed_predict_keeps_the_old_output_and_leaves_no_temp_file(clf, tmp_path, case):
    name, content = BROKEN_LATE[case]
    src = _write(tmp_path / name, content)
    dst = _write(tmp_path / "out.csv", OLD_OUTPUT)
    with pytest.raises(ValueError):
        predict_file(clf, src, dst, chunk_size=2)  # the first chunks are predicted before the error
    assert dst.read_bytes() == OLD_OUTPUT
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "out.csv"])


def test_failed_predict_writes_no_partial_file(clf, tmp_path):
    src = _write(tmp_path / "in.csv", 'text\ngood\nbad\nfine\n\n"unterminated\nx,y\n')
    with pytest.raises(ValueError, match=r"in\.csv: cannot parse the row starting on line 6"):
        predict_file(clf, src, tmp_path / "out" / "preds.csv", chunk_size=1)
    assert not (tmp_path / "out" / "preds.csv").exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "in.csv"]


def test_successful_predict_replaces_the_output_and_keeps_its_permissions(clf, tmp_path):
    src = _write(tmp_path / "in.txt", "a good film\nan awful plot\n")
    dst = _write(tmp_path / "out.csv", OLD_OUTPUT)
    dst.chmod(0o640)
    assert predict_file(clf, src, dst) == 2
    assert [r["label"] for r in _rows(dst)] == ["positive", "negative"]
    assert (dst.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.csv"]


def test_output_through_a_symlink_replaces_the_file_it_names(clf, tmp_path):
    src = _write(tmp_path / "in.txt", "a good film\n")
    real = _write(tmp_path / "real.csv", OLD_OUTPUT)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert predict_file(clf, src, link) == 1
    assert link.is_symlink() and _rows(real)[0]["label"] == "positive"


# -- 3. an input column is never overwritten -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "column"),
    [
        ("gold.csv", "text,label\na good film,negative\n", "label"),
        ("probs.jsonl", '{"text": "a good film", "proba_positive": 0.1}\n', "proba_positive"),
        ("label.txt", "a good film\n", "label"),  # --text-column label on a .txt
    ],
)
def test_prediction_columns_never_overwrite_an_input_column(clf, tmp_path, name, content, column):
    src = _write(tmp_path / name, content)
    text_column = "label" if name.endswith(".txt") else "text"
    with pytest.raises(ValueError, match=f"already has a column '{column}'.*--prediction-column"):
        predict_file(clf, src, tmp_path / "out.csv", text_column=text_column)
    assert not (tmp_path / "out.csv").exists()
    # Naming the prediction column moves the probabilities too, and keeps every input column.
    assert predict_file(clf, src, tmp_path / "out.csv", text_column=text_column, prediction_column="pred") == 1
    row = _rows(tmp_path / "out.csv")[0]
    assert row["pred"] == "positive"
    assert {"pred_proba_negative", "pred_proba_positive"} <= set(row)
    if column != "label" or not name.endswith(".txt"):
        assert row[column] == ("negative" if column == "label" else "0.1")


def test_cli_prediction_column_flag(model_dir, tmp_path, capsys):
    src = _write(tmp_path / "gold.csv", "text,label\na good film,negative\nan awful plot,positive\n")
    dst = tmp_path / "out.csv"
    assert main(["predict", str(model_dir), "--input", str(src), "--output", str(dst)]) == 2
    assert "'label'" in capsys.readouterr().err and not dst.exists()
    args = ["predict", str(model_dir), "--input", str(src), "--output", str(dst)]
    assert main([*args, "--prediction-column", "predicted"]) == 0
    rows = _rows(dst)
    assert [r["label"] for r in rows] == ["negative", "positive"]  # the gold labels, untouched
    assert [r["predicted"] for r in rows] == ["positive", "negative"]
    assert list(rows[0])[-2:] == ["predicted_proba_negative", "predicted_proba_positive"]


# -- 12. batch size ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8", None, True])
def test_batch_size_must_be_a_positive_int(clf, tmp_path, bad):
    src = _write(tmp_path / "in.txt", "a good film\n")
    calls = [
        lambda: clf.predict_proba(["a good film"], batch_size=bad),
        lambda: clf.predict(["a good film"], batch_size=bad),
        lambda: clf.encoder.encode(["a good film"], batch_size=bad),
        lambda: predict_file(clf, src, tmp_path / "out.csv", batch_size=bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            call()
    assert not (tmp_path / "out.csv").exists()
    assert check_batch_size(np.int64(4)) == 4


@pytest.mark.parametrize("value", ["-1", "0"])
def test_cli_batch_size_below_one_exits_2(model_dir, tmp_path, capsys, value):
    assert main(["predict", str(model_dir), "a good film", "--batch-size", value]) == 2
    captured = capsys.readouterr()
    assert "batch_size must be a positive integer" in captured.err and "nan" not in captured.out


# -- 15. a CSV never gets an index column; ragged rows name their line ----------------------------


def test_predict_first_row_with_extra_separator_is_an_error_naming_the_line(clf, tmp_path):
    src = _write(tmp_path / "shifted.csv", "id,text\n1,a good, film\n2,an awful plot\n")
    with pytest.raises(ValueError, match=r"shifted\.csv: cannot parse as CSV: line 2 has 3 fields but the header has 2"):
        predict_file(clf, src, tmp_path / "out.csv")
    # A trailing separator loses nothing: the row is cut to the header's width.
    src = _write(tmp_path / "trailing.csv", "id,text\n1,a good film,\n2,an awful plot\n")
    assert predict_file(clf, src, tmp_path / "out.csv") == 2
    assert [(r["id"], r["text"]) for r in _rows(tmp_path / "out.csv")] == [("1", "a good film"), ("2", "an awful plot")]


def test_predict_input_with_another_separator_names_it(clf, tmp_path):
    src = _write(tmp_path / "export.csv", 'text;id\n"a good, fine film";1\nbad;2\n')
    with pytest.raises(ValueError, match=r"export\.csv: the header line 'text;id' is separated by semicolons, "
                                         r"not by ',' as \.csv expects\. Fix: pass --delimiter ';'"):
        predict_file(clf, src, tmp_path / "out.csv")
    # With the delimiter: the same predictions as the comma file, written with semicolons.
    assert predict_file(clf, src, tmp_path / "semi_out.csv", delimiter=";") == 2
    comma = _write(tmp_path / "comma.csv", 'text,id\n"a good, fine film",1\nbad,2\n')
    predict_file(clf, comma, tmp_path / "comma_out.csv")
    semi_rows = list(csv.reader((tmp_path / "semi_out.csv").open(newline="", encoding="utf-8"), delimiter=";"))
    assert semi_rows == list(csv.reader((tmp_path / "comma_out.csv").open(newline="", encoding="utf-8")))
    src = _write(tmp_path / "tabs.csv", "text\tid\ngood\t1\n")
    with pytest.raises(ValueError, match=r"separated by tabs.*Fix: rename it \.tsv, or pass --delimiter '\\t'"):
        predict_file(clf, src, tmp_path / "out.csv")
    jsonl = _write(tmp_path / "in.jsonl", '{"text": "good"}\n')
    with pytest.raises(ValueError, match=r"in\.jsonl: a delimiter applies to \.csv and \.tsv files, not '\.jsonl'"):
        predict_file(clf, jsonl, tmp_path / "out.csv", delimiter=";")
    with pytest.raises(ValueError, match="one separator character"):
        predict_file(clf, src, tmp_path / "out.csv", delimiter=";;")
    # One column named like that, and it is the text column: read as it is.
    src = _write(tmp_path / "one.csv", "text;id\ngood\n")
    assert predict_file(clf, src, tmp_path / "out.csv", text_column="text;id") == 1


def test_predict_ragged_row_after_quoted_line_breaks_names_the_file_line(clf, tmp_path):
    src = _write(tmp_path / "in.tsv", 'id\ttext\n1\t"two\nlines"\n\n2\tbad\textra\n')
    with pytest.raises(ValueError, match=r"in\.tsv: cannot parse as TSV: line 5 has 3 fields"):
        predict_file(clf, src, tmp_path / "out.csv")


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("text,label\na good, film,pos\nbad,neg\nfine,pos\n", 2),  # pandas took `text` as the index
        ("text,label\na good film,pos\nbad,neg\n\nfine,pos,x\n", 5),
    ],
)
def test_training_file_with_a_ragged_row_is_an_error_naming_the_line(tmp_path, content, line):
    path = _write(tmp_path / "train.csv", content)
    with pytest.raises(ValueError, match=rf"train\.csv: cannot parse as CSV: line {line} has 3 fields"):
        load_with_report(str(path))


def test_training_file_with_trailing_separators_loads_the_right_columns(tmp_path):
    path = _write(tmp_path / "train.csv", "text,label\na good film,pos,\nbad,neg,\nfine,pos\n")
    data = load_with_report(str(path))[0]
    assert data.texts == ["a good film", "bad", "fine"] and data.labels == ["pos", "neg", "pos"]


# -- 16. missing-value spellings, scores and id-like columns as labels ---------------------------


def test_missing_label_spellings_are_dropped_and_counted(tmp_path):
    missing = ["NaN", "nan", "NA", "N/A", "null", "None", ""]
    rows = [f"good text {i},pos" for i in range(4)] + [f"bad text {i},neg" for i in range(4)]
    rows += [f"unlabeled {i},{m}" for i, m in enumerate(missing)]
    path = _write(tmp_path / "labels.csv", "text,label\n" + "\n".join(rows) + "\n")
    data, report = load_with_report(str(path))
    assert sorted(set(data.labels)) == ["neg", "pos"]
    assert report.reasons == {"missing label": len(missing)} and report.kept == 8
    # A spelling that `label_map` names is a label the user meant.
    data = load_with_report({"source": str(path), "label_map": {"None": "neutral"}})[0]
    assert data.label_counts()["neutral"] == 1


@pytest.mark.parametrize("with_nan", [False, True])
def test_a_score_column_as_labels_is_an_error_naming_the_column(tmp_path, with_nan):
    scores = [f"{0.03 * i:.2f}" for i in range(1, 33)] + (["NaN"] if with_nan else [])
    path = _write(tmp_path / "scores.csv", "text,score\n" + "".join(f"text {i},{s}\n" for i, s in enumerate(scores)))
    with pytest.raises(ValueError, match=r"label column 'score' holds non-integer numbers.*binarise.*label_map"):
        load_with_report({"source": str(path), "label_column": "score"})


def test_a_score_column_mapped_to_classes_loads(tmp_path):
    path = _write(tmp_path / "half.csv", "text,label\na,0.5\nb,1.5\nc,0.5\nd,2.5\n")
    mapping = {"0.5": "low", "1.5": "high", "2.5": "top"}
    assert load_with_report({"source": str(path), "label_map": mapping})[0].labels == ["low", "high", "low", "top"]
    with pytest.raises(ValueError, match=r"non-integer numbers \(1\.5, 2\.5; 3 distinct values\)"):
        load_with_report({"source": str(path), "label_map": {"0.5": "low"}})


def test_an_id_like_label_column_is_an_error(tmp_path):
    path = _write(tmp_path / "ids.csv", "text,label\n" + "".join(f"text {i},doc-{i}\n" for i in range(40)))
    with pytest.raises(ValueError, match=r"label column 'label' has 40 distinct values in 40 rows.*label_column"):
        load_with_report(str(path))
    # Many classes that repeat are fine (here 25 classes, 2 rows each).
    many = _write(tmp_path / "many.csv", "text,label\n" + "".join(f"text {i},c{i % 25}\n" for i in range(50)))
    assert len(set(load_with_report(str(many))[0].labels)) == 25


# -- 18. empty texts are reported; unordered inputs are rejected ---------------------------------


def test_empty_texts_are_counted_and_reported(clf, model_dir, tmp_path, caplog, capsys):
    src = _write(tmp_path / "in.csv", 'id,text\n1,a good film\n2,\n3,"  "\n4,an awful plot\n')
    with caplog.at_level(logging.WARNING, logger="textransfer.prediction"):
        report = predict_file_with_report(clf, src, tmp_path / "out.csv")
    assert report.rows == 4 and report.empty_texts == 2
    assert report.empty_rows == ["row 2 (line 3)", "row 3 (line 4)"]
    [record] = [r for r in caplog.records if r.name == "textransfer.prediction"]
    assert "in.csv: 2 empty texts at row 2 (line 3), row 3 (line 4)" in record.getMessage()
    assert main(["-q", "predict", str(model_dir), "--input", str(src), "--output", str(tmp_path / "o.csv")]) == 0
    assert "4 predictions written to" in (out := capsys.readouterr().out) and "2 empty texts" in out


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({"a good film": 1, "bad": 0}, "got a dict: pass list(d.values())"),
        ({"a good film", "bad"}, "got a set, which has no order"),
        (frozenset({"a good film"}), "got a frozenset, which has no order"),
        ({"a good film": 1}.keys(), "which has no order"),
        ("a good film", "pass a list of texts"),
    ],
)
def test_unordered_or_single_string_inputs_are_rejected(clf, inputs, words):
    with pytest.raises(TypeError, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_inputs(inputs)
    with pytest.raises(TypeError):
        clf.predict(inputs)


def test_generators_and_tuples_keep_their_order(clf):
    texts = ["a good film", "an awful plot", "a superb actor"]
    expected = clf.predict(texts)
    assert clf.predict(t for t in texts) == expected and clf.predict(tuple(texts)) == expected


# -- 19. folders, files and permissions where the other is expected ------------------------------


def test_folder_and_file_mix_ups_are_one_clear_message(clf, tmp_path):
    src = _write(tmp_path / "in.txt", "a good film\n")
    folder = tmp_path / "inputs.csv"
    folder.mkdir()
    not_a_folder = _write(tmp_path / "plain.txt", "x")
    cases = [
        (folder, tmp_path / "out.csv", "is a folder: pass a file inside it"),
        (src, folder, "is a folder: pass a file name"),
        (src, not_a_folder / "out.csv", "plain.txt is a file, not a folder"),
        (src, not_a_folder / "deeper" / "out.csv", "plain.txt is a file, not a folder"),
    ]
    for inp, out, words in cases:
        with pytest.raises(ValueError, match=words):
            predict_file(clf, inp, out)
    assert not_a_folder.read_text() == "x"


@pytest.mark.parametrize("name", ["out.parquet", "out.jsonl", "out.tsv", "out.txt", "out.xlsx"])
def test_an_output_named_for_another_format_is_refused_before_writing(clf, tmp_path, name):
    """Predictions are CSV: written under a .parquet (or other) name, the next reader fails or,
    worse, misreads them."""
    src = _write(tmp_path / "in.txt", "a good film\n")
    dst = _write(tmp_path / name, "keep me")
    with pytest.raises(ValueError, match=r"predictions are written as CSV.*name the output \.csv, e\.g\. .*out\.csv"):
        predict_file(clf, src, dst)
    assert dst.read_text() == "keep me"
    assert sorted(q.name for q in tmp_path.iterdir()) == sorted(["in.txt", name])
    plain = tmp_path / "predictions"  # no suffix: CSV, as documented
    assert predict_file(clf, src, plain) == 1 and _rows(plain)[0]["label"] in ("positive", "negative")


def test_unreadable_input_is_one_clear_message(clf, tmp_path, monkeypatch):
    src = _write(tmp_path / "in.csv", "text\na good film\n")
    real_open = Path.open

    def deny(self, *args, **kwargs):  # root reads anything: simulate a file it may not read
        if self == src:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(ValueError, match=r"cannot read .*in\.csv: permission denied"):
        predict_file(clf, src, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_unwritable_output_folder_is_one_clear_message_and_keeps_the_old_file(clf, tmp_path, monkeypatch):
    src = _write(tmp_path / "in.txt", "a good film\n")
    dst = _write(tmp_path / "out.csv", OLD_OUTPUT)
    real_open = os.open

    def deny(path, *args, **kwargs):  # root writes anywhere: simulate a folder it may not write
        if Path(path).parent == tmp_path and str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(ValueError, match=r"cannot write .*out\.csv \(Permission denied\)"):
        predict_file(clf, src, dst)
    assert dst.read_bytes() == OLD_OUTPUT


# -- 23. bad input files name the file and the line ----------------------------------------------


GOOD_LINES = 11_001


def _late_bad_byte(header: str, row: str) -> bytes:
    """``GOOD_LINES`` good lines (header included), then a bad byte at column 15 of the next."""
    lines = [header] if header else []
    lines += [row] * (GOOD_LINES - len(lines))
    good = "".join(line + "\n" for line in lines).encode()
    return good + b"a good film is \xff here\n", len(good) + 15


@pytest.mark.parametrize(
    ("name", "header", "row"),
    [("big.txt", "", "a good film"), ("big.csv", "text", "a good film"), ("big.jsonl", "", '{"text": "a good film"}')],
)
def test_bad_utf8_late_in_the_file_names_its_line_and_file_offset(clf, tmp_path, name, header, row):
    content, offset = _late_bad_byte(header, row)
    src = _write(tmp_path / name, content)
    with pytest.raises(ValueError) as err:
        predict_file(clf, src, tmp_path / "out.csv")
    msg = str(err.value)
    assert name in msg and "line 11002" in msg and f"byte offset {offset}" in msg and "0xff" in msg


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("broken.jsonl", '{"text": "a good film"}\n\n{"text": "bad",}\n', r"broken\.jsonl: line 3 is not valid JSON"),
        ("list.jsonl", '{"text": "a good film"}\n["bad"]\n', r"list\.jsonl: line 2 is a JSON list"),
        ("empty.csv", "", r"empty\.csv: the file is empty"),
        ("blank.csv", "\n\n", r"blank\.csv: the file is empty"),
        ("notparquet.parquet", "text\na good film\n", r"notparquet\.parquet: cannot read as Parquet"),
        ("late.jsonl", '{"text": "a"}\n{"text": "b"}\n{"text": "c", "extra": 1}\n', r"late\.jsonl: line 3 has the key 'extra'"),
        ("nocol.csv", "body\na good film\n", r"nocol\.csv: no column 'text'; columns found: body"),
        ("short.csv", "id,text\n1,a good film\n2\n", r"short\.csv: row 2 \(line 3\): column 'text' is missing"),
        ("nulls.jsonl", '{"text": "ok"}\n{"text": null}\n', r"nulls\.jsonl: row 2 \(line 2\): column 'text' is missing"),
        ("data.xlsx", "x", r"data\.xlsx: unsupported input format '\.xlsx'"),
    ],
)
def test_bad_input_files_name_the_file_and_line(clf, tmp_path, name, content, words):
    src = _write(tmp_path / name, content)
    with pytest.raises(ValueError, match=words):
        predict_file(clf, src, tmp_path / "out.csv", chunk_size=2)
    assert not (tmp_path / "out.csv").exists()


def test_header_only_csv_writes_its_header(clf, tmp_path):
    src = _write(tmp_path / "in.csv", "id,text\n")
    assert predict_file(clf, src, tmp_path / "out.csv") == 0
    assert (tmp_path / "out.csv").read_text().splitlines() == ["id,text,label,proba_negative,proba_positive"]


def test_a_text_column_of_numbers_is_refused_before_any_output(clf, tmp_path):
    src = _write(tmp_path / "ids.csv", "id,review\n1,a good film\n2,a dull film\n3,a fine film\n4,a bad film\n")
    with pytest.raises(
        ValueError,
        match=r"ids\.csv: column 'id' holds only numbers \('1', '2', '3', \.\.\., 4 row\(s\) read\).*"
        r"--text-column NAME.*the other columns: review",
    ):
        predict_file(clf, src, tmp_path / "out.csv", text_column="id")
    assert not (tmp_path / "out.csv").exists()


def test_numbers_among_texts_are_predicted_as_texts(clf, tmp_path):
    src = _write(tmp_path / "mixed.csv", "text\n10\na good film\n")
    assert predict_file(clf, src, tmp_path / "out.csv") == 2
