"""Label-free accuracy estimates (ATC-NE, ATC-MC, DoC, AC, their average, COT, COTT; temperature scaling)
on arrays with known answers, the
model-level front (`textransfer.estimate_target_accuracy`) and `textransfer evaluate --source-val`."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_toy
from textransfer.evaluation.label_free import (
    METHODS,
    atc_threshold,
    confidence_scores,
    estimate_accuracy,
    fit_temperature,
    label_free_estimates,
    prediction_shift,
    temperature_scale,
    transported_confidence,
)


def _source(n: int = 400, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities with distinct confidences and labels that agree with the argmax mostly on
    confident rows (as a trained model's would)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k) * 0.7, size=n)
    pred = p.argmax(axis=1)
    wrong = rng.random(n) > p.max(axis=1)  # less confident rows are wrong more often
    y = np.where(wrong, (pred + 1) % k, pred)
    return p, y


@pytest.mark.parametrize("method", ["atc-ne", "atc-mc"])
def test_atc_returns_source_accuracy_when_target_confidences_match(method: str) -> None:
    p, y = _source()
    acc = float(np.mean(p.argmax(axis=1) == y))
    target = p[np.random.default_rng(1).permutation(len(p))]  # same rows, other order
    assert estimate_accuracy(p, y, target, method=method) == pytest.approx(acc, abs=1 / len(p))


def test_atc_threshold_puts_the_source_accuracy_above_it() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    correct = np.array([0, 0, 1, 0, 1, 1, 1, 1, 1, 1], dtype=bool)  # accuracy 0.7
    t = atc_threshold(scores, correct)
    assert np.mean(scores > t) == pytest.approx(0.7) and t == pytest.approx(0.3)
    # Every row right: the threshold lies below every source score.
    t_all = atc_threshold(scores, np.ones(10, dtype=bool))
    assert np.mean(scores > t_all) == 1.0


def test_hand_computed_atc_and_doc() -> None:
    src = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]] * 5)
    y = np.array([0, 0, 0, 1] * 5)  # the least confident of each four is wrong: accuracy 0.75
    tgt = np.array([[0.9, 0.1], [0.52, 0.48]] * 10)  # half above the wrong source rows, half below
    assert estimate_accuracy(src, y, tgt, method="atc-ne") == pytest.approx(0.5)
    # DoC: 0.75 - (mean source confidence 0.7125 - mean target confidence 0.71) = 0.7475
    doc = 0.75 - (0.7125 - 0.71)
    assert estimate_accuracy(src, y, tgt, method="doc", calibration="none") == pytest.approx(doc)
    assert estimate_accuracy(src, y, tgt, method="ac", calibration="none") == pytest.approx(0.71)
    assert estimate_accuracy(src, y, tgt, method="average", calibration="none") == pytest.approx(
        (0.5 + doc + 0.71) / 3
    )


def test_transport_keeps_the_argmax_when_the_predicted_mix_is_the_mix() -> None:
    p, _ = _source(k=3)
    mix = np.bincount(p.argmax(axis=1), minlength=3)  # counts: normalised inside
    assert transported_confidence(p, mix).mean() == pytest.approx(p.max(axis=1).mean(), abs=0.0012)
    p2, _ = _source(k=2)
    assert transported_confidence(p2, np.bincount(p2.argmax(axis=1))) == pytest.approx(p2.max(axis=1))


def test_transport_moves_the_least_confident_rows_to_the_missing_class() -> None:
    # Every row predicts class 0; half must carry class 1: the four least sure rows move.
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]] * 2)
    got = transported_confidence(p, [0.5, 0.5])
    assert got == pytest.approx([0.9, 0.8, 0.3, 0.4] * 2)
    # A quota falling inside a row splits it: 2.5 of 8 rows to class 1 take both 0.6 rows and
    # half of one 0.7 row, which then scores 0.5 * 0.3 + 0.5 * 0.7.
    got = transported_confidence(p, [5.5, 2.5])
    assert sorted(got) == pytest.approx(sorted([0.9, 0.9, 0.8, 0.8, 0.7, 0.5, 0.4, 0.4]))


def test_transport_of_many_classes_is_the_cheapest_assignment() -> None:
    from itertools import permutations

    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3), size=6)
    labels = [0, 0, 1, 1, 2, 2]  # the mix 1/3 each, two rows a class
    best = max(sum(p[i, c] for i, c in enumerate(perm)) for perm in set(permutations(labels)))
    got = transported_confidence(p, [1, 1, 1])  # entropic: within 0.001 * log 3 a row
    assert got.sum() == pytest.approx(best, abs=6 * 0.0011)
    # Two classes by the many-class solver (a third class nobody may take) agree with the sort.
    q = _source(n=50, k=2)[0]
    padded = np.c_[q * 0.99, np.full(50, 0.01)]
    assert transported_confidence(padded, [0.3, 0.7, 0.0]).mean() == pytest.approx(
        0.99 * transported_confidence(q, [0.3, 0.7]).mean(), abs=0.0011
    )
    # Skewed quotas on more rows: the classes get their shares, the argmax rows keep theirs.
    r = _source(n=600, k=4)[0]
    assert transported_confidence(r, np.bincount(r.argmax(axis=1), minlength=4)).mean() == pytest.approx(
        r.max(axis=1).mean(), abs=0.0015
    )
    with pytest.raises(ValueError, match="mix must be 3 non-negative"):
        transported_confidence(p, [0.5, 0.5])


def test_hand_computed_cot_and_cott() -> None:
    src = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]] * 5)
    y = np.array([0, 1, 0, 1] * 5)  # a 50/50 source whose rows all predict class 0: accuracy 0.5
    tgt = np.array([[0.95, 0.05]] * 20)  # the target predicts class 0 alone
    # COT: half the target rows keep 0.95, half are moved and score 0.05.
    assert estimate_accuracy(src, y, tgt, method="cot", calibration="none") == pytest.approx(0.5)
    assert estimate_accuracy(src, y, tgt, method="ac", calibration="none") == pytest.approx(0.95)
    # COTT: source transported scores 0.9, 0.8 (kept) and 0.4, 0.45 (moved); accuracy 0.5 puts
    # the threshold at 0.45, so the moved target rows (0.05) count as wrong: 0.5.
    assert estimate_accuracy(src, y, tgt, method="cott", calibration="none") == pytest.approx(0.5)
    # A target that keeps the source's 50/50 predictions: COT is AC.
    balanced = np.array([[0.95, 0.05], [0.05, 0.95]] * 10)
    assert estimate_accuracy(src, y, balanced, method="cot", calibration="none") == pytest.approx(0.95)


def test_estimates_fall_as_target_confidence_falls() -> None:
    p, y = _source()
    k = p.shape[1]
    previous = {m: math.inf for m in METHODS}
    for mix in (0.0, 0.2, 0.4, 0.6, 0.8):  # move every target row towards uniform
        target = (1 - mix) * p + mix / k
        for m in previous:
            est = estimate_accuracy(p, y, target, method=m)
            assert est <= previous[m] + 1e-12, (m, mix)
            previous[m] = est
    assert (
        previous["atc-ne"] < 0.2
        and previous["doc"] < estimate_accuracy(p, y, p, method="doc") - 0.15
    )


def test_doc_is_clipped_to_a_probability() -> None:
    src = np.array([[0.99, 0.01]] * 20)
    y = np.ones(20, dtype=np.int64)  # every confident prediction wrong: accuracy 0
    tgt = np.array([[0.5, 0.5]] * 20)
    assert estimate_accuracy(src, y, tgt, method="doc", calibration="none") == 0.0


def _shifted(
    n: int, scale: float, seed: int, overconfidence: float = 3.0, k: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose labels are drawn from known class probabilities ``softmax(z)``, ``z ~ N(0,
    scale)`` (a smaller scale: harder rows), and an overconfident model that reports
    ``softmax(overconfidence * z)``. Returns (model probabilities, labels, true probabilities)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, scale, size=(n, k))
    truth = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = (rng.random((n, 1)) > truth.cumsum(axis=1)).sum(axis=1)  # one draw per row
    return temperature_scale(truth, 1 / overconfidence), y, truth


def test_fit_temperature_recovers_a_known_overconfidence() -> None:
    p, y, truth = _shifted(4000, 2.0, seed=0, overconfidence=3.0)
    assert fit_temperature(p, y) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(truth, y) == pytest.approx(1.0, rel=0.1)  # already calibrated
    under, y_under, _ = _shifted(4000, 2.0, seed=0, overconfidence=0.5)
    assert fit_temperature(under, y_under) == pytest.approx(0.5, rel=0.1)
    # Scaling back with the fitted temperature calibrates: mean confidence ~ accuracy.
    calibrated = temperature_scale(p, fit_temperature(p, y))
    assert calibrated.max(axis=1).mean() == pytest.approx(np.mean(p.argmax(axis=1) == y), abs=0.02)
    assert np.array_equal(calibrated.argmax(axis=1), p.argmax(axis=1))


def test_temperature_scaling_recovers_the_target_accuracy_of_an_overconfident_model() -> None:
    """Covariate shift to harder rows, labels still drawn from the same class probabilities:
    a calibrated model stays calibrated, so calibrated AC and DoC are right and the raw ones,
    fooled by the overconfidence, are not."""
    src, y_src, _ = _shifted(4000, 2.0, seed=0)
    tgt, y_tgt, _ = _shifted(4000, 1.0, seed=1)
    true = float(np.mean(tgt.argmax(axis=1) == y_tgt))
    for method in ("ac", "doc"):
        calibrated = estimate_accuracy(src, y_src, tgt, method=method)
        raw = estimate_accuracy(src, y_src, tgt, method=method, calibration="none")
        assert abs(calibrated - true) < 0.02 < abs(raw - true), (method, calibrated, raw, true)


def test_two_class_atc_does_not_depend_on_temperature() -> None:
    """Temperature scaling keeps the order of two-class confidences, and ATC reads only that."""
    p, y = _source(k=2)
    tgt, _ = _source(k=2, seed=5)
    for method in ("atc-ne", "atc-mc"):
        assert estimate_accuracy(p, y, tgt, method=method) == estimate_accuracy(
            p, y, tgt, method=method, calibration="none"
        )
    assert estimate_accuracy(p, y, tgt, method="ac") != estimate_accuracy(
        p, y, tgt, method="ac", calibration="none"
    )


def test_average_and_its_spread_and_prediction_shift() -> None:
    p, y = _source(k=2)
    tgt = np.concatenate([p[:300], np.tile([[0.2, 0.8]], (100, 1))])  # more class-1 predictions
    out = label_free_estimates(p, y, tgt)
    est, avg = out["estimates"], out["average"]
    parts = [est["atc-ne"], est["doc"], est["ac"]]
    assert est["average"] == pytest.approx(np.mean(parts))
    assert avg["spread"] == pytest.approx(max(parts) - min(parts)) and avg["lower"] == min(parts)
    assert out["calibration"] == "temperature" and out["temperature"] > 0
    f_src = np.mean(p.argmax(axis=1) == 1)
    f_tgt = np.mean(tgt.argmax(axis=1) == 1)
    assert out["prediction_shift"] == pytest.approx(abs(f_tgt - f_src))
    assert prediction_shift(p, p) == 0.0
    assert label_free_estimates(p, y, tgt, calibration="none")["temperature"] == 1.0


def test_bad_calibration_and_temperature_are_errors() -> None:
    p, y = _source()
    with pytest.raises(ValueError, match="unknown calibration 'platt'"):
        estimate_accuracy(p, y, p, calibration="platt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature must be"):
        temperature_scale(p, 0.0)


def test_two_classes_atc_ne_equals_atc_mc_and_negative_entropy_orders_like_confidence() -> None:
    p, y = _source(k=2)
    tgt, _ = _source(k=2, seed=5)
    assert estimate_accuracy(p, y, tgt, method="atc-ne") == estimate_accuracy(
        p, y, tgt, method="atc-mc"
    )
    ne, mc = confidence_scores(p, "ne"), confidence_scores(p, "mc")
    assert np.array_equal(np.argsort(ne, kind="stable"), np.argsort(mc, kind="stable"))
    assert confidence_scores(np.array([[1.0, 0.0]]), "ne")[0] == 0.0  # 0 log 0 = 0, no NaN


def test_too_small_is_said_not_nan() -> None:
    p, y = _source(n=15)
    with pytest.raises(ValueError, match="fewer than the 20"):
        estimate_accuracy(p, y, p)
    out = label_free_estimates(p, y, _source(n=100)[0])
    assert (
        set(out) == {"missing", "n_source_val", "n_target"}
        and "source validation set has 15 rows" in out["missing"]
    )
    out = label_free_estimates(_source(n=100)[0], _source(n=100)[1], p)
    assert "the target has 15 rows" in out["missing"]


@pytest.mark.parametrize(
    ("src", "labels", "tgt", "message"),
    [
        (np.full((30, 2), 0.7), np.zeros(30, dtype=int), np.full((30, 2), 0.5), "rows sum to 1"),
        (np.full((30, 2), 0.5), np.full(30, 2), np.full((30, 2), 0.5), r"class ids in \[0, 2\)"),
        (np.full((30, 2), 0.5), np.zeros(30, dtype=int), np.full((30, 3), 1 / 3), "has 3 classes"),
        (
            np.full((30, 2), 0.5),
            np.zeros(29, dtype=int),
            np.full((30, 2), 0.5),
            "source_val_labels must be",
        ),
    ],
)
def test_malformed_arrays_get_one_clear_error(src, labels, tgt, message) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_accuracy(src, labels, tgt)
    with pytest.raises(ValueError, match="unknown label-free method"):
        estimate_accuracy(*_source()[:2], _source()[0], method="atc")  # type: ignore[arg-type]


def test_public_api_is_lazy_and_the_same_function() -> None:
    import textransfer
    from textransfer.estimation import estimate_target_accuracy

    assert textransfer.estimate_accuracy is estimate_accuracy
    assert textransfer.estimate_target_accuracy is estimate_target_accuracy


# -- from a model -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_model():
    import textransfer

    train = make_toy("movies", ["film", "movie", "plot", "actor"], n=48, seed=1)
    strategy = textransfer.create_strategy("frozen")
    return strategy.fit(
        textransfer.create_encoder("tfidf", min_df=1), textransfer.create_head("logreg"), train
    )


def test_estimate_target_accuracy_from_a_model(toy_model) -> None:
    import textransfer

    val = make_toy("movies", ["film", "movie", "plot", "actor"], n=40, seed=7)
    target = make_toy("products", ["phone", "battery", "camera", "screen"], n=60, seed=2)
    est = textransfer.estimate_target_accuracy(toy_model, source_val=val, target=target)
    proba = toy_model.predict_proba(target.texts)
    y = toy_model.label_map.encode(target.labels)
    assert est["true_accuracy"] == pytest.approx(float(np.mean(proba.argmax(axis=1) == y)))
    yv = toy_model.label_map.encode(val.labels)
    assert est["estimate"] == pytest.approx(
        estimate_accuracy(toy_model.predict_proba(val.texts), yv, proba)
    )
    assert est["method"] == "cot" and est["n_source_val"] == 40 and est["n_target"] == 60
    assert est["estimate"] == est["estimates"]["cot"]
    assert est["abs_error"]["doc"] == pytest.approx(
        abs(est["estimates"]["doc"] - est["true_accuracy"])
    )
    unlabeled = textransfer.estimate_target_accuracy(
        toy_model, source_val=val, target=(target.texts, None), method="doc"
    )
    assert "true_accuracy" not in unlabeled and unlabeled["estimate"] == pytest.approx(
        est["estimates"]["doc"]
    )
    with pytest.raises(ValueError, match="has no labels"):
        textransfer.estimate_target_accuracy(toy_model, source_val=(val.texts, None), target=target)
    with pytest.raises(ValueError, match="fewer than the 20"):
        textransfer.estimate_target_accuracy(
            toy_model, source_val=val, target=(target.texts[:10], None)
        )


def _csv(path: Path, texts: list[str], labels: list[str] | None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"] if labels is not None else ["text"])
        w.writerows(zip(texts, labels, strict=True) if labels is not None else [[t] for t in texts])
    return path


def test_evaluate_cli_estimates_unlabeled_input_with_source_val(
    toy_model, tmp_path: Path, capsys
) -> None:
    from textransfer.cli import main

    model_dir = toy_model.save(tmp_path / "model")
    val = make_toy("movies", ["film", "movie", "plot", "actor"], n=40, seed=7)
    target = make_toy("products", ["phone", "battery", "camera", "screen"], n=60, seed=2)
    val_csv = _csv(tmp_path / "val.csv", val.texts, val.labels)
    out = tmp_path / "eval"
    args = [
        "evaluate",
        str(model_dir),
        "--input",
        str(_csv(tmp_path / "t.csv", target.texts, None)),
        "--source-val",
        str(val_csv),
        "--output-dir",
        str(out),
    ]
    assert main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["labeled"] is False and set(m["label_free"]["estimates"]) == set(METHODS)
    assert "true_accuracy" not in m["label_free"]
    report = (out / "report.md").read_text()
    assert (
        "## Estimated accuracy without labels" in report
        and "estimates, not measured accuracies" in report
    )
    assert "estimated acc" in capsys.readouterr().out
    # Labeled input: the estimate beside the true accuracy, with its error.
    out2 = tmp_path / "eval2"
    assert (
        main(
            [
                "evaluate",
                str(model_dir),
                "--input",
                str(_csv(tmp_path / "l.csv", target.texts, target.labels)),
                "--source-val",
                str(val_csv),
                "--output-dir",
                str(out2),
            ]
        )
        == 0
    )
    m2 = json.loads((out2 / "metrics.json").read_text())
    assert m2["label_free"]["true_accuracy"] == pytest.approx(m2["accuracy"])
    assert m2["label_free"]["estimates"] == pytest.approx(m["label_free"]["estimates"])
    # Too few rows: said in the report, no NaN anywhere.
    out3 = tmp_path / "eval3"
    assert (
        main(
            [
                "evaluate",
                str(model_dir),
                "--input",
                str(_csv(tmp_path / "s.csv", target.texts[:8], None)),
                "--source-val",
                str(val_csv),
                "--output-dir",
                str(out3),
            ]
        )
        == 0
    )
    small = (out3 / "report.md").read_text()
    assert "No estimate: the target has 8 rows" in small and "nan" not in small.lower()


def test_evaluate_cli_source_val_without_labels_is_an_error(
    toy_model, tmp_path: Path, capsys
) -> None:
    from textransfer.cli import main

    model_dir = toy_model.save(tmp_path / "model")
    texts = make_toy("movies", ["film"], n=30).texts
    code = main(
        [
            "evaluate",
            str(model_dir),
            "--input",
            str(_csv(tmp_path / "t.csv", texts, None)),
            "--source-val",
            str(_csv(tmp_path / "v.csv", texts, None)),
        ]
    )
    assert code == 2 and "has no labels" in capsys.readouterr().err


def test_source_val_file_with_its_own_column_names(toy_model, tmp_path: Path, capsys) -> None:
    """An unlabeled target file (column ``review``) and a labeled source file (``sentence`` /
    ``sentiment``): the source file's columns are named on their own (the input has no label
    column to share). Naming the source's label column as --label-column fails on the input and
    the error points at the option."""
    import textransfer
    from textransfer.cli import main

    model_dir = toy_model.save(tmp_path / "model")
    val = make_toy("movies", ["film", "movie", "plot", "actor"], n=40, seed=7)
    target = make_toy("products", ["phone", "battery", "camera", "screen"], n=60, seed=2)
    src = tmp_path / "source.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["sentence", "sentiment"], *zip(val.texts, val.labels or [], strict=True)])
    tgt = tmp_path / "target.csv"
    with tgt.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["review"], *[[t] for t in target.texts]])
    expected = textransfer.estimate_target_accuracy(toy_model, source_val=val, target=(target.texts, None))
    got = textransfer.estimate_target_accuracy(
        toy_model, source_val=src, target=tgt, text_column="review",
        source_val_text_column="sentence", source_val_label_column="sentiment",
    )
    assert got["estimates"] == pytest.approx(expected["estimates"])
    res = textransfer.evaluate(model_dir, tgt, text_column="review", source_val=src,
                               source_val_text_column="sentence", source_val_label_column="sentiment")
    assert res.metrics["label_free"]["estimates"] == pytest.approx(expected["estimates"])
    base = ["evaluate", str(model_dir), "--input", str(tgt), "--text-column", "review", "--source-val", str(src)]
    assert main([*base, "--source-val-text-column", "sentence", "--source-val-label-column", "sentiment"]) == 0
    assert f"estimated acc  {expected['estimate']:.4f}  COT" in capsys.readouterr().out
    assert main([*base, "--source-val-text-column", "sentence", "--label-column", "sentiment"]) == 2
    assert "--source-val-label-column" in capsys.readouterr().err


def test_source_validation_outputs_saved_with_the_model(toy_model, tmp_path: Path, capsys) -> None:
    """set_calibration keeps the model's outputs on held-out source rows; they are saved (checked
    by the folder's checksums) and evaluate / estimate_target_accuracy use them when no
    source_val is given, with the same numbers as passing those rows."""
    import copy

    import textransfer
    from textransfer.classifier import ModelFormatError
    from textransfer.cli import main

    val = make_toy("movies", ["film", "movie", "plot", "actor"], n=40, seed=7)
    target = make_toy("products", ["phone", "battery", "camera", "screen"], n=60, seed=2)
    clf = copy.deepcopy(toy_model)
    clf.set_calibration(clf.predict_proba(val.texts), clf.label_map.encode(val.labels), "40 held-out movie rows")
    model_dir = clf.save(tmp_path / "model")
    loaded = textransfer.load(model_dir)
    assert loaded.calibration is not None and loaded.calibration["source"] == "40 held-out movie rows"
    assert np.allclose(loaded.calibration["probabilities"], clf.calibration["probabilities"])
    expected = textransfer.estimate_target_accuracy(toy_model, source_val=val, target=target)
    saved = textransfer.estimate_target_accuracy(model_dir, source_val=None, target=target)
    assert saved["estimates"] == pytest.approx(expected["estimates"])
    assert saved["source_val"] == "saved with the model: 40 held-out movie rows"
    tgt_csv = _csv(tmp_path / "t.csv", target.texts, None)
    assert main(["evaluate", str(model_dir), "--input", str(tgt_csv)]) == 0
    out = capsys.readouterr().out
    assert f"estimated acc  {expected['estimate']:.4f}  COT (no labels: an estimate)" in out
    assert "calibrated on the 40 source validation rows saved with the model" in out
    # A model saved without them: evaluate gives no estimate, estimate_target_accuracy says how to get one.
    plain = toy_model.save(tmp_path / "plain")
    assert "label_free" not in textransfer.evaluate(plain, tgt_csv).metrics
    with pytest.raises(ValueError, match="saved without source validation outputs.*--source-val FILE"):
        textransfer.estimate_target_accuracy(plain, source_val=None, target=target)
    # The file is covered by the folder's checksums.
    (model_dir / "calibration" / "source_val.safetensors").write_bytes(b"x" * 100)
    with pytest.raises(ModelFormatError, match="does not match the sha256"):
        textransfer.load(model_dir)
    with pytest.raises(ValueError, match=r"calibration needs \(3, 2\) probabilities"):
        clf.set_calibration(np.ones((3, 3)), np.zeros(3, dtype=int), "x")
    with pytest.raises(ValueError, match="class ids in"):
        clf.set_calibration(np.full((2, 2), 0.5), np.array([0, 2]), "x")
