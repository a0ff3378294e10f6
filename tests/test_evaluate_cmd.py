"""`textransfer evaluate` and `textransfer.evaluate`: the numbers on a hand-checked file, every
input format, unlabeled data, the errors, and the output folder rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import make_toy
from textransfer.cli import main
from textransfer.serving import ModelServer

# Texts whose prediction is certain for a model trained on the toy corpus (its own sentence
# pattern), with true labels chosen so that one of six is wrong: the third is a positive text
# labeled negative.
TEXTS = [
    "a good film , really good",
    "a great movie , really great",
    "a superb plot , really superb",
    "a boring film , really boring",
    "a terrible movie , really terrible",
    "a poor plot , really poor",
]
PREDICTED = ["positive", "positive", "positive", "negative", "negative", "negative"]
LABELS = ["positive", "positive", "negative", "negative", "negative", "negative"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny TF-IDF + logistic-regression model trained on the toy movie corpus, saved."""
    import textransfer

    train = make_toy("movies", ["film", "movie", "plot", "actor"], n=48, seed=1)
    strategy = textransfer.create_strategy("frozen")
    clf = strategy.fit(textransfer.create_encoder("tfidf", min_df=1), textransfer.create_head("logreg"), train)
    return clf.save(tmp_path_factory.mktemp("model") / "model")


def _write(path: Path, rows: list[list[object]], header: list[str], sep: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=sep, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    return _write(tmp_path / "small.csv", [[t, lab] for t, lab in zip(TEXTS, LABELS, strict=True)], ["text", "label"])


def test_predictions_are_the_expected_ones(model_dir: Path) -> None:
    import textransfer

    # The premise of the hand-computed numbers below.
    assert textransfer.load(model_dir).predict(TEXTS) == PREDICTED


def test_cli_numbers_match_a_hand_computed_file(model_dir: Path, small_csv: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval"
    assert main(["evaluate", str(model_dir), "--input", str(small_csv), "--output-dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["written_by"] == "textransfer evaluate" and m["labeled"] is True and m["n"] == 6
    # 5 of 6 right; true negatives: 3 of 4 predicted negative; true positives: 2 of 2.
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["confusion_matrix"] == [[3, 1], [0, 2]]
    assert m["per_class"]["negative"]["precision"] == pytest.approx(1.0)
    assert m["per_class"]["negative"]["recall"] == pytest.approx(3 / 4)
    assert m["per_class"]["positive"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["positive"]["recall"] == pytest.approx(1.0)
    f1_neg, f1_pos = 2 * 0.75 / 1.75, 2 * (2 / 3) / (5 / 3)
    assert m["macro_f1"] == pytest.approx((f1_neg + f1_pos) / 2)
    assert m["majority_baseline"] == pytest.approx(4 / 6) and m["majority_class"] == "negative"
    assert m["accuracy_ci95"][0] <= 5 / 6 <= m["accuracy_ci95"][1]
    assert sum(m["reliability"]["count"]) == 6 and 0.0 <= m["ece"] <= 1.0
    assert m["predicted"]["positive"]["count"] == 3
    for name in ("metrics.json", "report.md", "confusion_matrix.png", "reliability.png"):
        assert (out / name).is_file(), name
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # temp files renamed or removed
    report = (out / "report.md").read_text()
    assert "| accuracy | 0.833 |" in report and "![confusion matrix](confusion_matrix.png)" in report
    assert "| negative | 3 | 1 |" in report
    printed = capsys.readouterr().out
    assert "accuracy       0.8333" in printed and "written to" in printed


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "parquet"])
def test_every_predict_format_gives_the_same_numbers(model_dir: Path, tmp_path: Path, fmt: str) -> None:
    import pandas as pd

    import textransfer

    df = pd.DataFrame({"text": TEXTS, "label": LABELS})
    path = tmp_path / f"small.{fmt}"
    if fmt == "tsv":
        df.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    m = textransfer.evaluate(model_dir, path, n_boot=0).metrics
    assert m["accuracy"] == pytest.approx(5 / 6) and m["confusion_matrix"] == [[3, 1], [0, 2]]


def test_api_takes_a_classifier_labeled_texts_or_lists_and_chunks_do_not_change_numbers(model_dir: Path) -> None:
    import textransfer
    from textransfer.data import LabeledTexts

    clf = textransfer.load(model_dir)
    a = textransfer.evaluate(clf, LabeledTexts(TEXTS, LABELS), n_boot=50).metrics
    b = textransfer.evaluate(str(model_dir), (TEXTS, LABELS), chunk_size=2, n_boot=50).metrics
    for m in (a, b):
        assert m["accuracy"] == pytest.approx(5 / 6) and m["confusion_matrix"] == [[3, 1], [0, 2]]
    assert a["ece"] == pytest.approx(b["ece"]) and a["accuracy_ci95"] == b["accuracy_ci95"]


def test_integer_labels_match_whatever_type_the_file_gives(tmp_path: Path) -> None:
    import textransfer
    from textransfer.data import LabeledTexts

    train = make_toy("m", ["film", "movie"], n=40, seed=3)
    ints = LabeledTexts(train.texts, [1 if lab == "positive" else 0 for lab in train.labels])
    clf = textransfer.create_strategy("frozen").fit(
        textransfer.create_encoder("tfidf", min_df=1), textransfer.create_head("logreg"), ints
    )
    path = tmp_path / "ints.jsonl"  # JSON numbers come back as ints or floats depending on the reader
    path.write_text("".join(json.dumps({"text": t, "label": float(lab == "positive")}) + "\n"
                            for t, lab in zip(TEXTS, LABELS, strict=True)))
    assert textransfer.evaluate(clf, path, n_boot=0).metrics["accuracy"] == pytest.approx(5 / 6)


def test_unlabeled_file_gives_the_predicted_distribution(model_dir: Path, tmp_path: Path, capsys) -> None:
    txt = tmp_path / "texts.txt"
    txt.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "eval"
    assert main(["evaluate", str(model_dir), "--input", str(txt), "--output-dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["labeled"] is False and "accuracy" not in m and m["n"] == 6
    assert {k: v["count"] for k, v in m["predicted"].items()} == {"negative": 3, "positive": 3}
    assert 0.5 <= m["mean_confidence"] <= 1.0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.md"]
    assert "**No labels**" in (out / "report.md").read_text()
    assert "no labels" in capsys.readouterr().out


def test_rerun_into_its_own_folder_replaces_its_files_only(model_dir: Path, small_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    assert main(["evaluate", str(model_dir), "--input", str(small_csv), "--output-dir", str(out)]) == 0
    assert (out / "confusion_matrix.png").exists()
    unlabeled = _write(tmp_path / "u.csv", [[t] for t in TEXTS], ["text"])
    assert main(["evaluate", str(model_dir), "--input", str(unlabeled), "--output-dir", str(out)]) == 0
    # The figures of the labeled run would now describe other data: ours, so removed.
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.md"]


def test_a_folder_with_other_files_is_refused_and_left_alone(model_dir: Path, small_csv: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.md").write_text("my notes")
    (out / "metrics.json").write_text('{"accuracy": 0.9}')  # someone else's metrics.json
    assert main(["evaluate", str(model_dir), "--input", str(small_csv), "--output-dir", str(out)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "notes.md"]
    assert (out / "metrics.json").read_text() == '{"accuracy": 0.9}'
    # The model folder is not an evaluation folder either.
    assert main(["evaluate", str(model_dir), "--input", str(small_csv), "--output-dir", str(model_dir)]) == 2


def test_unknown_labels_are_named_with_the_model_labels(model_dir: Path, tmp_path: Path, capsys) -> None:
    path = _write(tmp_path / "n.csv", [[TEXTS[0], "positive"], [TEXTS[1], "neutral"], [TEXTS[2], "mixed"]], ["text", "label"])
    assert main(["evaluate", str(model_dir), "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert "labels not known to the model: 'mixed', 'neutral' (model labels: negative, positive)" in err
    assert "the first is at row 2 (line 3)" in err


def test_label_map_renames_the_files_labels_to_the_models(model_dir: Path, small_csv: Path, tmp_path: Path, capsys) -> None:
    """A test file labeled 1/0 scores like the same file labeled positive/negative once mapped;
    the map is recorded, and a map onto a label the model lacks, or a malformed one, is refused."""
    import textransfer

    numeric = _write(tmp_path / "n.csv", [[t, int(lab == "positive")] for t, lab in zip(TEXTS, LABELS, strict=True)],
                     ["text", "label"])
    expected = textransfer.evaluate(model_dir, small_csv).metrics
    got = textransfer.evaluate(model_dir, numeric, label_map={1: "positive", 0: "negative"}).metrics
    assert got["accuracy"] == expected["accuracy"] == 5 / 6 and got["confusion_matrix"] == expected["confusion_matrix"]
    assert got["label_map"] == {"1": "positive", "0": "negative"}
    # Only the labels it names are renamed: a half map leaves 0 unknown, and says how to map.
    assert main(["evaluate", str(model_dir), "--input", str(numeric), "--label-map", "1=positive"]) == 2
    assert "labels not known to the model: '0'" in capsys.readouterr().err
    out = tmp_path / "ev"
    assert main(["evaluate", str(model_dir), "--input", str(numeric), "--label-map", "0=negative, 1=positive",
                 "--output-dir", str(out)]) == 0
    assert "accuracy       0.8333" in capsys.readouterr().out
    assert "The data's labels were renamed: `0` → `negative`, `1` → `positive`." in (out / "report.md").read_text()
    with pytest.raises(ValueError, match="label_map maps to 'pos', not a label of the model"):
        textransfer.evaluate(model_dir, numeric, label_map={1: "pos", 0: "negative"})
    with pytest.raises(SystemExit):
        main(["evaluate", str(model_dir), "--input", str(numeric), "--label-map", "1:positive"])
    assert "'1:positive' is not FROM=TO" in capsys.readouterr().err


def test_semicolon_files_with_delimiter(model_dir: Path, small_csv: Path, tmp_path: Path, capsys) -> None:
    """A semicolon CSV scores as the comma one with --delimiter ';' (a tab given as \\t on the
    command line too); without it the error names the separator and the option."""
    semi = _write(tmp_path / "semi.csv", [[t, lab] for t, lab in zip(TEXTS, LABELS, strict=True)], ["text", "label"], sep=";")
    tabs = _write(tmp_path / "tabs.csv", [[t, lab] for t, lab in zip(TEXTS, LABELS, strict=True)], ["text", "label"], sep="\t")
    assert main(["evaluate", str(model_dir), "--input", str(small_csv)]) == 0
    expected = capsys.readouterr().out.splitlines()[:3]
    for path, sep in ((semi, ";"), (tabs, "\\t")):
        assert main(["evaluate", str(model_dir), "--input", str(path), "--delimiter", sep]) == 0
        assert capsys.readouterr().out.splitlines()[:3] == expected
    assert main(["evaluate", str(model_dir), "--input", str(semi)]) == 2
    assert "separated by semicolons, not by ',' as .csv expects. Fix: pass --delimiter ';'" in capsys.readouterr().err
    # A JSONL input with a delimiter is refused; a JSONL --source-val beside a semicolon input ignores it.
    import textransfer

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in zip(TEXTS, LABELS, strict=True)))
    with pytest.raises(ValueError, match="a delimiter applies to .csv and .tsv files, not '.jsonl'"):
        textransfer.evaluate(model_dir, jsonl, delimiter=";")
    val = make_toy("movies", ["film", "movie", "plot", "actor"], n=40, seed=7)
    val_jsonl = tmp_path / "val.jsonl"
    val_jsonl.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in zip(val.texts, val.labels or [], strict=True)))
    est = textransfer.estimate_target_accuracy(model_dir, source_val=val_jsonl, target=semi, delimiter=";", min_rows=5)
    assert est["n_source_val"] == 40 and est["n_target"] == 6 and est["true_accuracy"] == 5 / 6


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"", [], "the file is empty"),
        (b"text,label\n", [], "no data rows"),
        (b"review,label\nok,positive\n", [], "no column 'text'"),
        (b"review,label\nok,positive\n", ["--text-column", "review", "--label-column", "stars"], "no label column 'stars'"),
        (b"text,label\na good film,positive\na boring film,\n", [], "row 2 (line 3) has no label"),
        (
            b"id,review,label\n1,a good film,positive\n2,a dull film,negative\n",
            ["--text-column", "id"],
            "column 'id' holds only numbers ('1', '2', 2 row(s) read): that is not a column of texts",
        ),
    ],
)
def test_bad_input_files(model_dir: Path, tmp_path: Path, capsys, content: bytes, args: list[str], message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    assert main(["evaluate", str(model_dir), "--input", str(path), *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_file_and_a_folder_that_is_not_a_model(model_dir: Path, small_csv: Path, tmp_path: Path, capsys) -> None:
    assert main(["evaluate", str(model_dir), "--input", str(tmp_path / "nope.csv")]) == 2
    assert "input file not found" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--input", str(small_csv)]) == 2
    assert "is not a textransfer model" in capsys.readouterr().err


def test_texts_longer_than_the_token_limit_are_counted(tmp_path: Path, tiny_bert_dir: Path, tiny_sentence_dir: Path, capsys) -> None:
    """A transformer encoder with max_length 8 reads the first 8 tokens of a longer text: evaluate
    and predict --input say how many texts that was; TF-IDF has no such limit and says nothing."""
    import textransfer

    train = make_toy("movies", ["film", "movie", "plot", "actor"], n=40, seed=1)
    long_text = " ".join(["a good film , really good"] * 3)  # 18 words + [CLS] [SEP]
    texts = [TEXTS[0], long_text, TEXTS[3], long_text]
    path = _write(tmp_path / "t.csv", [[t, lab] for t, lab in zip(texts, ["positive", "positive", "negative", "positive"], strict=True)],
                  ["text", "label"])
    for name, kwargs, limit in (("transformer", {"model": str(tiny_bert_dir), "max_length": 8}, 8),
                                ("sentence", {"model": str(tiny_sentence_dir), "max_length": 8}, 8)):
        clf = textransfer.create_strategy("frozen").fit(textransfer.create_encoder(name, **kwargs),
                                                         textransfer.create_head("logreg"), train)
        assert clf.truncated(texts) == (2, limit)
        model = clf.save(tmp_path / name)
        metrics = textransfer.evaluate(model, path).metrics
        assert metrics["truncated"] == {"texts": 2, "limit": limit}
        assert main(["evaluate", str(model), "--input", str(path)]) == 0
        assert (f"truncated      2 of 4 texts (50.0%) are longer than the encoder's {limit} tokens: the model "
                f"read their first {limit} only") in capsys.readouterr().out
        assert main(["predict", str(model), "--input", str(path), "--output", str(tmp_path / f"{name}.csv"),
                     "--prediction-column", "pred"]) == 0
        assert f"; 2 texts longer than the encoder's {limit} tokens (read up to there)" in capsys.readouterr().out
        server = ModelServer(textransfer.load(model), "127.0.0.1", 0)
        try:
            assert server.predict(texts)["warnings"] == [
                f"2 of 4 text(s) longer than the encoder's {limit} tokens: the model read their first {limit} only"]
            assert "warnings" not in server.predict(texts[:1])
        finally:
            server.server_close()
    tfidf = textransfer.create_strategy("frozen").fit(textransfer.create_encoder("tfidf", min_df=1),
                                                      textransfer.create_head("logreg"), train)
    assert tfidf.truncated(texts) is None
    assert "truncated" not in textransfer.evaluate(tfidf, path).metrics
