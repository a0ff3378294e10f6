"""Self-training: calibrated, class-balanced pseudo-labels on unlabeled target texts, a label-free
stopping rule, both bases, saved models, and `textransfer crossdomain` with it."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import textransfer
from textransfer.data.labeled import LabeledTexts
from textransfer.encoders import create_encoder
from textransfer.evaluation.label_free import fit_temperature, temperature_scale
from textransfer.heads.base import create_head
from textransfer.strategies.base import CapabilityError, create_strategy
from textransfer.strategies.self_train import (
    _FrozenRounds,
    estimate_target_prior,
    select_pseudo_labels,
)

_SRC_POS, _SRC_NEG = ["good", "great"], ["bad", "awful"]
_TGT_POS, _TGT_NEG = ["sturdy", "reliable"], ["flimsy", "broken"]


def bridge_domains(n: int = 200, seed: int = 0) -> tuple[LabeledTexts, LabeledTexts]:
    """A shift self-training provably fixes: target sentiment words never occur in the source.

    Half the target rows also hold a source sentiment word (the bridge); the other half only
    target words, which a source-only TF-IDF model gives zero weight (so it is at chance there:
    ~75% overall). Confident pseudo-labels on the bridge rows teach the target words.
    """
    rng = random.Random(seed)
    src, tgt = [], []
    for i in range(n):
        pos = i % 2 == 0
        a = rng.choice(_SRC_POS if pos else _SRC_NEG)
        src.append(f"{a} film {rng.choice(['plot', 'actor', 'scene'])}")
        b = rng.choice(_TGT_POS if pos else _TGT_NEG)
        a2 = rng.choice(_SRC_POS if pos else _SRC_NEG)
        tgt.append(f"{a2} {b} phone" if (i // 2) % 2 == 0 else f"{b} phone {rng.choice(['battery', 'screen'])}")
    labels = ["pos" if i % 2 == 0 else "neg" for i in range(n)]
    return LabeledTexts(src, labels, domain="films"), LabeledTexts(tgt, labels, domain="phones")


class NoPeekTexts(LabeledTexts):
    """Target rows whose labels raise once armed: proves a strategy never reads them."""

    armed = False

    @property  # type: ignore[override]
    def labels(self) -> Any:
        if self.armed:
            raise AssertionError("the strategy read the target labels")
        return self._labels

    @labels.setter
    def labels(self, value: Any) -> None:
        self._labels = value


def accuracy(clf: Any, data: LabeledTexts) -> float:
    return float(np.mean(np.array(clf.predict(data.texts)) == np.array(data.labels)))


def tfidf() -> Any:
    return create_encoder("tfidf", min_df=1)


# -- calibration and selection ------------------------------------------------------------------


def test_temperature_scaling_fixes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    true_p = rng.uniform(0.55, 0.95, 4000)  # the calibrated probability of the predicted class
    right = rng.uniform(size=4000) < true_p
    pred = np.where(right, y, 1 - y)
    # An overconfident model: logits 3x too large.
    logit = 3 * np.log(true_p / (1 - true_p))
    p_pred = 1 / (1 + np.exp(-logit))
    proba = np.where(pred[:, None] == np.arange(2), p_pred[:, None], 1 - p_pred[:, None])
    t = fit_temperature(proba, y)
    assert 2.5 < t < 3.5
    calibrated = temperature_scale(proba, t).max(axis=1)
    assert abs(calibrated.mean() - right.mean()) < 0.02 < abs(proba.max(axis=1).mean() - right.mean())


def test_selection_is_class_balanced_on_a_biased_model() -> None:
    # The model calls 90% of the target rows class 0: CBST's per-predicted-class rule keeps that
    # 9:1 mix, the source prior (50/50) keeps equal counts, with the most confident rows of each.
    rng = np.random.default_rng(1)
    n = 1000
    pred1 = np.arange(n) % 10 == 0
    conf = rng.uniform(0.85, 1.0, n)
    proba = np.where(pred1[:, None], np.c_[1 - conf, conf], np.c_[conf, 1 - conf])
    balanced = select_pseudo_labels(proba, 0.2, prior=np.array([0.5, 0.5]), min_confidence=0.0)
    counts = np.bincount(balanced.labels, minlength=2)
    assert counts.tolist() == [100, 100]  # class 1 has 100 candidates: both scaled to fit it
    for c in range(2):
        chosen = balanced.indices[balanced.labels == c]
        others = np.setdiff1d(np.flatnonzero(proba.argmax(axis=1) == c), chosen)
        assert proba[chosen, c].min() >= proba[others, c].max() if len(others) else True
        assert balanced.thresholds[c] == pytest.approx(proba[chosen, c].min())
    cbst = select_pseudo_labels(proba, 0.2, prior=None)
    assert np.bincount(cbst.labels, minlength=2).tolist() == [180, 20]
    skewed_prior = select_pseudo_labels(proba, 0.2, prior=np.array([0.75, 0.25]))
    assert np.bincount(skewed_prior.labels, minlength=2).tolist() == [150, 50]


def test_min_confidence_floor() -> None:
    proba = np.array([[0.95, 0.05], [0.7, 0.3], [0.2, 0.8], [0.02, 0.98]])
    sel = select_pseudo_labels(proba, 1.0, prior=None, min_confidence=0.9)
    assert sorted(sel.indices.tolist()) == [0, 3]


# -- the strategy on the frozen base ------------------------------------------------------------


def test_self_training_fixes_a_shift_source_only_cannot() -> None:
    src, tgt = bridge_domains()
    source_only = create_strategy("frozen").fit(tfidf(), create_head("logreg"), src)
    st = create_strategy("self_train", base="frozen")
    clf = st.fit(tfidf(), create_head("logreg"), src, target_unlabeled=tgt.without_labels())
    assert accuracy(source_only, tgt) < 0.8
    assert accuracy(clf, tgt) > 0.95
    info = st.last_fit_info
    rounds = info["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2, 3] and info["kept_round"] == 3
    assert rounds[1]["pseudo_labels"] == {"neg": 20, "pos": 20}  # 20% of 200, source prior 50/50
    assert rounds[3]["pseudo_labels"] == {"neg": 50, "pos": 50}
    for r in rounds[1:]:
        assert {"temperature", "thresholds", "mean_confidence", "source_val_accuracy"} <= set(r)
    assert info["stopped"].startswith("completed") and info["target_rows"] == 200 and info["val_rows"] == 20


def test_bbse_prior_corrects_the_models_predicted_mix() -> None:
    rng = np.random.default_rng(0)
    # A model that calls 20% of class-0 rows class 1, and is right on class 1.
    def model(y: np.ndarray) -> np.ndarray:
        pred = np.where((y == 0) & (rng.random(len(y)) < 0.2), 1, y)
        return np.eye(2)[pred] * 0.8 + 0.1
    y_val = np.array([0, 1] * 500)
    y_tgt = (rng.random(4000) < 0.7).astype(int)  # target: 30% class 0
    prior = estimate_target_prior(model(y_val), y_val, model(y_tgt))
    predicted_mix = 1 - np.mean(model(y_tgt).argmax(1))
    assert abs(predicted_mix - 0.3) > 0.05  # the model's own mix is off (~0.24)...
    assert prior[0] == pytest.approx(0.3, abs=0.02)  # ...BBSE recovers the target prior
    assert prior.sum() == pytest.approx(1.0)
    # A degenerate model (one class everywhere) keeps every class at the floor share or more.
    flat = np.tile([0.9, 0.1], (100, 1))
    assert estimate_target_prior(flat, np.array([0, 1] * 50), flat).min() >= 0.05 - 1e-9


def test_estimated_balance_follows_the_target_class_mix() -> None:
    src, _ = bridge_domains(400)
    other, _ = bridge_domains(400, seed=1)
    keep = [i for i, lab in enumerate(other.labels) if lab == "neg" or i % 6 == 0]  # 25% pos
    tgt = LabeledTexts([other.texts[i] for i in keep], [other.labels[i] for i in keep], domain="films-2")
    for balance, share in (("estimated", 0.25), ("source_prior", 0.5)):
        st = create_strategy("self_train", base="frozen", rounds=1, keep_fraction=0.5, balance=balance)
        st.fit(tfidf(), create_head("logreg"), src, target_unlabeled=tgt.without_labels())
        r1 = st.last_fit_info["rounds"][1]
        counts = r1["pseudo_labels"]
        assert counts["pos"] / (counts["pos"] + counts["neg"]) == pytest.approx(share, abs=0.03), balance
        assert ("estimated_prior" in r1) == (balance == "estimated")


def test_target_labels_are_never_read() -> None:
    src, tgt = bridge_domains()
    guarded = NoPeekTexts(tgt.texts, tgt.labels, domain=tgt.domain)
    guarded.armed = True
    with pytest.raises(AssertionError):
        _ = guarded.labels  # the guard works
    st = create_strategy("self_train", rounds=2)
    clf = st.fit(tfidf(), create_head("logreg"), src, target_unlabeled=guarded)
    assert len(clf.predict(tgt.texts[:3])) == 3


def test_stops_when_pseudo_labels_converge() -> None:
    src, tgt = bridge_domains()
    st = create_strategy("self_train", rounds=6, keep_fraction=0.4, min_change=0.05)
    st.fit(tfidf(), create_head("logreg"), src, target_unlabeled=tgt.without_labels())
    info = st.last_fit_info
    assert "converged" in info["stopped"], info["stopped"]
    assert len(info["rounds"]) < 7 and info["rounds"][-1]["changed"] < 0.05
    assert "source_val_accuracy" not in info["rounds"][-1]  # the converged round trains nothing


def test_stops_when_no_row_is_confident_enough() -> None:
    src, tgt = bridge_domains()
    st = create_strategy("self_train", min_confidence=0.999999)
    # A strong L2 penalty keeps every confidence low, even after temperature scaling.
    st.fit(tfidf(), create_head("logreg", C=1e-6), src, target_unlabeled=tgt.without_labels())
    assert "no target row reached the thresholds" in st.last_fit_info["stopped"]
    assert st.last_fit_info["kept_round"] == 0


def test_source_val_drop_rolls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # A round that wrecks the head (trained on flipped labels) must be undone.
    src, tgt = bridge_domains()
    fit = _FrozenRounds.fit

    def bad_round(self: _FrozenRounds, y: np.ndarray, y_val: np.ndarray, k: int, pseudo: Any) -> None:
        fit(self, 1 - y if pseudo is not None else y, y_val, k, pseudo)

    monkeypatch.setattr(_FrozenRounds, "fit", bad_round)
    st = create_strategy("self_train", base="frozen")
    clf = st.fit(tfidf(), create_head("logreg"), src, target_unlabeled=tgt.without_labels())
    info = st.last_fit_info
    assert "source-val accuracy fell" in info["stopped"] and info["kept_round"] == 0
    assert info["rounds"][1]["rolled_back"] is True
    assert accuracy(clf, src) == 1.0  # the round-0 model, not the flipped one


def test_frozen_base_with_a_torch_head_and_saved_model(tmp_path: Path) -> None:
    src, tgt = bridge_domains(120)
    # 12 source-validation rows: one flipped row is a 0.083 drop, past the default val_tolerance,
    # and rolls the round back. About one run of this file in 60 did that here (cause not found;
    # not reproduced alone). This test is about the torch head and the saved model, not the
    # stopping rule, so it tolerates a few rows.
    st = create_strategy("self_train", rounds=2, val_tolerance=0.25,
                         training={"epochs": 30, "lr": 0.05, "batch_size": 16})
    clf = st.fit(tfidf(), create_head("linear"), src, target_unlabeled=tgt.without_labels())
    assert st.last_fit_info["kept_round"] >= 1, st.last_fit_info["rounds"]
    clf.save(tmp_path / "m")
    loaded = textransfer.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(tgt.texts), clf.predict_proba(tgt.texts), atol=1e-6)
    assert loaded.strategy["name"] == "self_train" and loaded.strategy["kwargs"]["base"] == "frozen"


def test_max_rows_and_explicit_val() -> None:
    src, tgt = bridge_domains()
    st = create_strategy("self_train", rounds=1, max_train_rows=100, max_target_rows=50)
    st.fit(tfidf(), create_head("logreg"), src, target_unlabeled=tgt.without_labels())
    info = st.last_fit_info
    assert info["train_rows"] == 100 and info["val_rows"] == 10 and info["target_rows"] == 50
    assert sum(info["rounds"][1]["pseudo_labels"].values()) <= 10  # 20% of 50
    val = src.subset(range(0, 30))
    st.fit(tfidf(), create_head("logreg"), src, val=val, target_unlabeled=tgt.without_labels())
    assert st.last_fit_info["val_rows"] == 30 and st.last_fit_info["train_rows"] == 130  # 100 sampled + val


# -- the strategy on the finetune base ----------------------------------------------------------


def test_finetune_base_continues_training_and_round_trips(
    tiny_bert_dir: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts, tmp_path: Path
) -> None:
    st = create_strategy("self_train", base="finetune", rounds=1, keep_fraction=0.5, min_confidence=0.0,
                         val_tolerance=1.0, head_lr=1e-2, freeze_bottom=1)
    st.training = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "patience": None}
    enc = create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
    before = {k: v.clone() for k, v in enc.module.state_dict().items()}
    clf = st.fit(enc, create_head("linear"), toy_movies, target_unlabeled=toy_products.without_labels())
    info = st.last_fit_info
    assert info["base"] == "finetune" and info["kept_round"] == 1
    counts = sorted(info["rounds"][1]["pseudo_labels"].values())  # half of 48 at the source prior (22:21)
    assert counts in ([11, 12], [12, 12])
    assert info["train_rows"] == 48 and info["val_rows"] == 5 and "base_history" in info
    assert any(not (v == before[k]).all() for k, v in enc.module.state_dict().items())
    assert st.base.spec.freeze_bottom == 1  # finetune's options passed through
    clf.save(tmp_path / "ft")
    loaded = textransfer.load(tmp_path / "ft")
    texts = toy_products.texts[:6]
    np.testing.assert_allclose(loaded.predict_proba(texts), clf.predict_proba(texts), atol=1e-5)


def test_round_epochs_sets_the_length_of_the_rounds_only(
    tiny_bert_dir: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts
) -> None:
    from textransfer.strategies.base import FitContext

    training = {"epochs": 3, "batch_size": 16, "lr": 1e-3, "patience": None, "seed": 1}
    epochs = {}
    for round_epochs in (None, 1):
        st = create_strategy("self_train", base="finetune", rounds=2, keep_fraction=0.5, min_confidence=0.0,
                             val_tolerance=1.0, min_change=0.0, round_epochs=round_epochs)
        enc = create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
        info = st.fit_with_context(enc, create_head("linear"), toy_movies, target_unlabeled=toy_products.without_labels(),
                                   context=FitContext(training=training)).info
        assert len(info["base_history"]) == 3  # round 0 is the finetune twin: training.epochs
        epochs[round_epochs] = [e["epochs"] for e in info["rounds"][1:]]
    assert epochs == {None: [3, 3], 1: [1, 1]}


def test_finetune_base_starts_from_a_given_twin_exactly_as_from_its_own_round_0(
    tiny_bert_dir: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts
) -> None:
    from textransfer.strategies.base import FitContext

    training = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "patience": None, "seed": 3}
    options = {"max_train_rows": 40, "head_lr": 1e-2}
    target = toy_products.without_labels()

    def encoder() -> Any:
        return create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)

    twin = create_strategy("finetune", **options).fit_with_context(
        encoder(), create_head("linear"), toy_movies, context=FitContext(training=training))
    twin_weights = {k: v.clone() for k, v in twin.classifier.encoder.module.state_dict().items()}
    results = []
    for base_model in (None, twin.classifier):
        st = create_strategy("self_train", base="finetune", rounds=1, keep_fraction=0.5, min_confidence=0.0,
                             val_tolerance=1.0, **options)
        assert st.base_fit() == ("finetune", create_strategy("finetune", **options).config())
        results.append(st.fit_with_context(encoder(), create_head("linear"), toy_movies, target_unlabeled=target,
                                           context=FitContext(training=training, base_model=base_model)))
    own, started = results
    assert "base_history" in own.info and "started_from_base_model" not in own.info
    assert started.info["started_from_base_model"] and "base_history" not in started.info
    assert own.info["rounds"][0] == started.info["rounds"][0]  # round 0's source-val accuracy
    texts = toy_products.texts[:12]
    np.testing.assert_allclose(started.classifier.predict_proba(texts), own.classifier.predict_proba(texts),
                               rtol=0, atol=1e-6)
    # The twin handed over is copied, never trained further.
    for k, v in twin.classifier.encoder.module.state_dict().items():
        assert bool((v == twin_weights[k]).all()), k
    assert started.classifier.encoder is not twin.classifier.encoder


def test_dapt_base_adapts_round_0_to_the_target_and_starts_from_a_given_dapt_twin_exactly(
    tiny_bert_dir: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts
) -> None:
    from textransfer.strategies.base import FitContext

    training = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "patience": None, "seed": 5}
    options = {"max_train_rows": 40, "head_lr": 1e-2}
    mlm = {"mlm_steps": 3, "mlm_batch_size": 8, "mlm_lr": 1e-3}
    target = toy_products.without_labels()

    def encoder() -> Any:
        return create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)

    dapt = create_strategy("dapt", **options, **mlm, max_target_rows=30)
    twin = dapt.fit_with_context(encoder(), create_head("linear"), toy_movies, target_unlabeled=target,
                                 context=FitContext(training=training))
    # Fine-tuned alone from the same start, the encoder ends elsewhere: the MLM phase changed it.
    plain = create_strategy("finetune", **options).fit_with_context(
        encoder(), create_head("linear"), toy_movies, context=FitContext(training=training))
    texts = toy_products.texts[:12]
    assert np.abs(twin.classifier.predict_proba(texts) - plain.classifier.predict_proba(texts)).max() > 1e-4
    results = []
    for base_model in (None, twin.classifier):
        st = create_strategy("self_train", base="dapt", rounds=1, keep_fraction=0.5, min_confidence=0.0,
                             val_tolerance=1.0, max_target_rows=30, **options, **mlm)
        assert st.base_fit() == ("dapt", dapt.config())
        assert create_strategy("self_train", **st.config()).config() == st.config()  # round-trips
        results.append(st.fit_with_context(encoder(), create_head("linear"), toy_movies, target_unlabeled=target,
                                           context=FitContext(training=training, base_model=base_model)))
    own, started = results
    assert own.info["base"] == "dapt" and own.info["target_rows"] == 30
    assert own.info["rounds"][0] == started.info["rounds"][0] and started.info["started_from_base_model"]
    np.testing.assert_allclose(started.classifier.predict_proba(texts), own.classifier.predict_proba(texts),
                               rtol=0, atol=1e-6)


def test_a_base_model_of_other_labels_or_of_another_type_is_refused(
    tiny_bert_dir: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts
) -> None:
    from textransfer.strategies.base import FitContext

    with pytest.raises(TypeError, match="base_model must be a trained Classifier or None, got str"):
        FitContext(base_model="runs/models/finetune")  # type: ignore[arg-type]
    relabeled = LabeledTexts(toy_movies.texts, ["good" if lab == "positive" else "bad" for lab in toy_movies.labels or []],
                             domain="movies")
    training = {"epochs": 1, "batch_size": 16, "patience": None}
    twin = create_strategy("finetune").fit_with_context(
        create_encoder("transformer", model=str(tiny_bert_dir), max_length=16), create_head("linear"), relabeled,
        context=FitContext(training=training))
    st = create_strategy("self_train", base="finetune", rounds=1)
    with pytest.raises(ValueError, match=r"base_model predicts \['bad', 'good'\], the source rows have"):
        st.fit_with_context(create_encoder("transformer", model=str(tiny_bert_dir), max_length=16),
                            create_head("linear"), toy_movies, target_unlabeled=toy_products.without_labels(),
                            context=FitContext(training=training, base_model=twin.classifier))


def test_finetune_base_needs_a_trainable_encoder(toy_movies: LabeledTexts, toy_products: LabeledTexts) -> None:
    with pytest.raises(CapabilityError, match="finetune needs an encoder"):
        create_strategy("self_train", base="finetune").fit(
            tfidf(), create_head("linear"), toy_movies, target_unlabeled=toy_products.without_labels()
        )


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [None, LabeledTexts([], None, domain="empty")])
def test_missing_target_says_how_to_provide_it(toy_movies: LabeledTexts, target: Any) -> None:
    with pytest.raises(ValueError, match=r"self_train needs unlabeled target texts.*crossdomain.*without_labels\(\)"):
        create_strategy("self_train").fit(tfidf(), create_head("logreg"), toy_movies, target_unlabeled=target)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": "dann"}, "base must be one of frozen, finetune, dapt"),
        ({"rounds": 0}, "rounds must be an integer from 1 to 20"),
        ({"rounds": 2.5}, "rounds must be an integer"),
        ({"keep_fraction": 0}, r"keep_fraction must be a number in \(0, 1\]"),
        ({"keep_fraction": [0.5, 0.2]}, "non-decreasing"),
        ({"keep_fraction": [0.1, 0.2, 0.3, 0.4]}, "at most rounds=3"),
        ({"balance": "uniform"}, "balance must be one of source_prior, equal, predicted, estimated"),
        ({"min_confidence": 1.0}, r"min_confidence must be a number in \[0, 1\)"),
        ({"min_change": -0.1}, "min_change"),
        ({"val_tolerance": -1}, "val_tolerance"),
        ({"val_fraction": 0.0}, "val_fraction must be in"),
        ({"max_target_rows": 1}, "max_target_rows must be an integer >= 2"),
        ({"max_train_rows": 1}, "max_train_rows must be an integer >= 2"),
        ({"freeze_bottom": 2}, "freeze_bottom applies to base: finetune or dapt only"),
        ({"round_epochs": 1}, "round_epochs applies to base: finetune or dapt only .base is frozen"),
        ({"base": "finetune", "round_epochs": 0}, "round_epochs must be an integer >= 1 .or null for training.epochs., got 0"),
        ({"base": "finetune", "round_epochs": 1.5}, "round_epochs must be an integer"),
        ({"base": "finetune", "mlm_steps": 10}, "mlm_steps applies to base: dapt only .base is finetune.; set base: dapt"),
        ({"mlm_texts": "target"}, "mlm_texts applies to base: dapt only"),
        ({"base": "dapt", "mlm_texts": "source"}, "dapt: mlm_texts must be one of target, target.source"),
        ({"base": "dapt", "mlm_steps": 0}, "mlm_steps"),
        ({"base": "finetune", "layer_lr_decay": 2.0}, "layer_lr_decay must be in"),
    ],
)
def test_bad_options_fail_when_built(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_strategy("self_train", **kwargs)


def test_config_round_trips() -> None:
    st = create_strategy("self_train", base="finetune", rounds=2, keep_fraction=[0.3], head_lr=1e-3)
    again = create_strategy("self_train", **st.config())
    assert again.config() == st.config() and st.config()["head_lr"] == 1e-3
    assert "round_epochs" not in st.config()  # unset: the configs (and fit keys) of earlier versions
    short = create_strategy("self_train", base="finetune", round_epochs=1)
    assert create_strategy("self_train", **short.config()).config()["round_epochs"] == 1
    assert st.encodes_frozen_features is False and create_strategy("self_train").encodes_frozen_features is True


# -- textransfer crossdomain ----------------------------------------------------------------------


def _write(path: Path, data: LabeledTexts) -> str:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(zip(data.texts, data.labels or [], strict=True))
    return str(path)


def test_crossdomain_reports_the_adaptation_gain(tmp_path: Path) -> None:
    from textransfer.cli import main

    src, tgt = bridge_domains(250)
    config = {
        "name": "st_xd",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
        "seeds": [0, 1],
        "domains": {"films": _write(tmp_path / "films.csv", src), "phones": _write(tmp_path / "phones.csv", tgt)},
        "sources": ["films"],
        "targets": ["phones"],
        "encoders": {"tfidf": {"name": "tfidf", "min_df": 1}},
        "strategies": {
            "frozen": {"name": "frozen", "head": "logreg"},
            "st": {"name": "self_train", "base": "frozen", "head": "logreg", "baseline": "frozen", "oracle": False},
        },
        "evaluation": {"n_boot": 50, "plots": False, "target_only": False},
        "save_models": True,
    }
    import yaml

    path = tmp_path / "st.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["crossdomain", str(path)]) == 0
    run_dir = tmp_path / "runs" / "st_xd"
    rows = {r["setup"]: r for r in json.loads((run_dir / "metrics.json").read_text())["rows"]}
    st = rows["tfidf+st"]
    assert st["adaptation_gain"] > 0.1, st["adaptation_gain"]
    assert st["cross_domain"]["accuracy"]["mean"] > 0.95
    clf = textransfer.load(run_dir / "models" / "tfidf+st" / "films_to_phones")
    assert accuracy(clf, tgt) > 0.95
    # A bad option is an error naming it before anything runs (exit 2).
    config["strategies"]["st"]["keep_fraction"] = 1.5
    path.write_text(yaml.safe_dump(config))
    assert main(["crossdomain", str(path)]) == 2


def test_later_rounds_build_the_head_where_the_encoder_is(tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Round >= 1 rebuilds the head after round 0 left the encoder on the training device (a GPU:
    the head was built on the CPU and the probe pass failed with a device mismatch). The meta
    device stands in for the GPU; the probe pass is replaced by a check of where things are."""
    import textransfer.training.model as model_module

    seen: dict[str, Any] = {}

    def probe(model: Any, batch: dict[str, Any]) -> list[Any]:
        seen["head"] = {p.device.type for p in model.head.parameters()}
        seen["labels"] = batch["labels"].device.type
        return []

    monkeypatch.setattr(model_module, "unused_parameters", probe)
    enc = create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
    enc.module.to("meta")
    head = create_head("linear")
    create_strategy("finetune").prepare(enc, head, 2, ["a good film", "a bad film"])
    assert seen == {"head": {"meta"}, "labels": "meta"}
