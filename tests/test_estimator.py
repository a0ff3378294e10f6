"""TextTransferClassifier: scikit-learn API (clone, Pipeline, GridSearchCV, cross_val_score),
sklearn's own estimator checks, and on texts the properties of the checks that only fit numbers."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import textransfer
from tests.conftest import make_toy
from textransfer.estimator import NUMERIC_ONLY_CHECKS, TextTransferClassifier


@pytest.fixture
def toy():
    data = make_toy("movies", ["film", "movie", "plot", "actor"], n=60, seed=1)
    return data.texts, data.labels


@pytest.fixture
def products():
    data = make_toy("products", ["phone", "battery", "camera", "screen"], n=40, seed=2)
    return data.texts, data.labels


def test_lazy_name_is_the_class():
    assert textransfer.TextTransferClassifier is TextTransferClassifier


def test_fit_predict_score_and_classes(toy, products):
    X, y = toy
    est = TextTransferClassifier("tfidf", {"name": "logreg", "C": 10.0})
    assert est.fit(X, y) is est
    assert est.classes_.tolist() == ["negative", "positive"]
    proba = est.predict_proba(products[0])
    assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    pred = est.predict(products[0])
    assert pred.tolist() == est.classes_[proba.argmax(axis=1)].tolist()
    assert est.score(*products) > 0.9
    assert est.predict([]).shape == (0,)


def test_get_params_are_the_constructor_args_and_clone_is_unfitted(toy):
    head = {"name": "logreg", "C": 3.0}
    est = TextTransferClassifier("tfidf", head, epochs=2, lr=0.01)
    params = est.get_params()
    assert params["encoder"] == "tfidf" and params["head"] is head
    assert params["epochs"] == 2 and params["lr"] == 0.01 and params["strategy"] == "frozen"
    before = copy.deepcopy(params)
    state_before = set(vars(est))
    est.fit(*toy)
    assert est.get_params() == before and head == {"name": "logreg", "C": 3.0}  # nothing mutated
    added = set(vars(est)) - state_before
    assert added and all(name.endswith("_") for name in added), added
    twin = clone(est)
    assert twin.get_params() == before
    with pytest.raises(NotFittedError):
        twin.predict(["a good film"])
    assert est.set_params(head="cosine") is est and est.head == "cosine"


def test_pipeline(toy, products):
    lower = FunctionTransformer(lambda texts: [t.upper() for t in texts])
    pipe = make_pipeline(lower, TextTransferClassifier("tfidf", {"name": "logreg", "C": 10.0}))
    pipe.fit(*toy)
    assert pipe.score(*products) > 0.9
    assert pipe.predict(["A WONDERFUL PHONE"]).tolist() == ["positive"]


def test_grid_search_over_head_params(toy):
    grid = {"head": [{"name": "logreg", "C": 1e-4}, {"name": "logreg", "C": 10.0}]}
    search = GridSearchCV(TextTransferClassifier("tfidf"), grid, cv=3).fit(*toy)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2
    # C=1e-4 barely moves off the prior; C=10 separates the toy corpus.
    assert search.best_params_ == {"head": {"name": "logreg", "C": 10.0}}
    assert scores[1] > 0.9
    assert search.best_estimator_.predict(["a superb camera"]).tolist() == ["positive"]


def test_cross_val_score(toy):
    scores = cross_val_score(TextTransferClassifier("tfidf", {"name": "logreg", "C": 10.0}), *toy, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9


def test_sklearn_estimator_checks():
    """sklearn's check_estimator: the checks that fit on numeric arrays are expected to fail
    (their reasons are in NUMERIC_ONLY_CHECKS and the class docstring); all others must pass,
    and every expected failure must still fail (the list stays exact)."""
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            TextTransferClassifier(), expected_failed_checks=NUMERIC_ONLY_CHECKS, on_skip=None
        )
    status: dict[str, set[str]] = {}
    for r in results:
        status.setdefault(r["check_name"], set()).add(r["status"])
    passed = {name for name, s in status.items() if s == {"passed"}}
    # The API checks that apply to any estimator, texts or not.
    assert {
        "check_estimator_cloneable",
        "check_estimator_repr",
        "check_no_attributes_set_in_init",
        "check_get_params_invariance",
        "check_set_params",
        "check_parameters_default_constructible",
        "check_do_not_raise_errors_in_init_or_set_params",
        "check_mixin_order",
        "check_estimators_unfitted",
        "check_requires_y_none",
        "check_classifiers_regression_target",
        "check_estimator_sparse_matrix",
    } <= passed
    unexpected_pass = [n for n in NUMERIC_ONLY_CHECKS if "passed" in status.get(n, set())]
    assert not unexpected_pass, f"now pass, remove from NUMERIC_ONLY_CHECKS: {unexpected_pass}"
    assert all(s <= {"passed", "xfail", "skipped"} for s in status.values())
    assert {n for n, s in status.items() if "xfail" in s} == set(NUMERIC_ONLY_CHECKS)


# -- on texts: what the numeric-only checks guard ------------------------------------------------


def test_fit_is_idempotent_and_order_and_subset_invariant(toy, products):
    est = TextTransferClassifier("tfidf", {"name": "logreg", "C": 10.0}).fit(*toy)
    first = est.predict_proba(products[0])
    assert np.allclose(est.fit(*toy).predict_proba(products[0]), first, atol=1e-6)
    perm = np.random.default_rng(0).permutation(len(products[0]))
    shuffled = est.predict_proba([products[0][i] for i in perm])
    assert np.allclose(shuffled, first[perm], atol=1e-6)
    assert np.allclose(est.predict_proba(products[0][:7]), first[:7], atol=1e-6)


def test_integer_labels_series_and_one_column_frame(toy):
    X, y = toy
    y_int = np.array([1 if lab == "positive" else 0 for lab in y])
    est = TextTransferClassifier("tfidf", {"name": "logreg", "C": 10.0}).fit(pd.Series(X), y_int)
    assert est.classes_.tolist() == [0, 1]
    pred = est.predict(pd.DataFrame({"text": ["a lovely plot", "a dreadful actor"]}))
    assert pred.tolist() == [1, 0] and pred.dtype.kind == "i"
    assert est.predict(np.array(["a lovely plot"], dtype=object)).tolist() == [1]


@pytest.mark.parametrize(
    ("X", "y", "error", "match"),
    [
        (["a good film", "a bad film"], ["pos", "pos"], ValueError, "single class"),
        (["a good film", "a bad film"], ["pos"], ValueError, "2 texts but y has 1 labels"),
        (["a good film", 3.5], ["pos", "neg"], TypeError, "input 1 is float"),
        (np.zeros((2, 3)), ["pos", "neg"], ValueError, r"shape \(2, 3\) and holds numbers"),
        ("a good film", ["pos"], TypeError, "single string"),
        (["a good film", "a bad film"], [0.5, 1.5], ValueError, "Unknown label type"),
        (["a good film", "a bad film"], None, ValueError, "requires y"),
    ],
)
def test_bad_inputs_raise_one_clear_error(X, y, error, match):
    with pytest.raises(error, match=match):
        TextTransferClassifier("tfidf").fit(X, y)


def test_sparse_input_is_refused_with_its_name():
    from scipy import sparse

    with pytest.raises(TypeError, match="sparse input is not supported"):
        TextTransferClassifier("tfidf").fit(sparse.csr_matrix(np.eye(2)), ["pos", "neg"])


def test_component_errors_name_the_fix(toy):
    with pytest.raises(ValueError, match="unknown encoder 'tfidff'.*Did you mean 'tfidf'"):
        TextTransferClassifier("tfidff").fit(*toy)
    with pytest.raises(ValueError, match="unknown key 'Cc'.*Did you mean 'C'"):
        TextTransferClassifier("tfidf", {"name": "logreg", "Cc": 1}).fit(*toy)
    with pytest.raises(ValueError, match="registered name .* or a dict with a 'name' key"):
        TextTransferClassifier("tfidf", head=42).fit(*toy)
    with pytest.raises(ValueError, match="training.epochs must be >= 1"):
        TextTransferClassifier("tfidf", "linear", epochs=0).fit(*toy)


def test_training_settings_reach_the_training_loop(toy):
    est = TextTransferClassifier("tfidf", {"name": "linear", "dropout": 0.0}, epochs=3, lr=0.05, patience=None)
    est.fit(*toy)
    assert len(est.fit_info_["history"]) == 3
    assert est.score(*toy) > 0.9


def test_adaptation_strategy_gets_target_texts(toy, products):
    est = TextTransferClassifier("tfidf", {"name": "logreg", "C": 10.0}, "coral")
    with pytest.raises(ValueError, match=r"coral needs unlabeled target texts.*data\.unlabeled.*without_labels\(\)"):
        est.fit(*toy)
    est.fit(*toy, target_texts=products[0])
    assert est.fit_info_["target_rows"] == len(products[0])
    assert est.score(*products) > 0.8


def test_save_round_trips_through_textransfer_load(toy, products, tmp_path):
    est = TextTransferClassifier("tfidf", {"name": "logreg", "C": 10.0}).fit(*toy)
    path = est.save(tmp_path / "model")
    loaded = textransfer.load(path)
    assert loaded.labels == est.classes_.tolist()
    assert np.allclose(loaded.predict_proba(products[0]), est.predict_proba(products[0]), atol=1e-6)
    with pytest.raises(NotFittedError):
        TextTransferClassifier().save(tmp_path / "other")
