"""Target labels never reach training: strategies see the target only as unlabeled texts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import textransfer.experiments._kernel as kernel
import textransfer.experiments.crossdomain.run as xd
from tests.test_crossdomain import toy_config  # noqa: F401  (fixture)
from textransfer.data.labeled import LabeledTexts
from textransfer.experiments.crossdomain.config import load_crossdomain_config


def test_strategies_never_receive_target_labels(
    toy_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    calls: list[dict[str, Any]] = []
    real_build = kernel.build_components

    def spy_build(*args: Any, **kwargs: Any) -> Any:
        encoder, head, strategy = real_build(*args, **kwargs)
        real_fit = strategy.fit_with_context  # what the kernel calls

        def spy_fit(enc: Any, hd: Any, train: LabeledTexts, *, val: Any = None, target_unlabeled: Any = None,
                    context: Any = None) -> Any:
            calls.append({"seed": context.training.seed, "train": train, "target": target_unlabeled})
            return real_fit(enc, hd, train, val=val, target_unlabeled=target_unlabeled, context=context)

        strategy.fit_with_context = spy_fit  # type: ignore[method-assign]
        return encoder, head, strategy

    monkeypatch.setattr(kernel, "build_components", spy_build)  # every fit builds through the kernel
    xd.run_crossdomain(load_crossdomain_config(toy_config))
    source_fits = [c for c in calls if c["train"].domain == "movies"]
    assert len(source_fits) == 3  # frozen x 2 seeds + coral x 1 seed
    for c in source_fits:
        assert c["target"] is not None and c["target"].labels is None  # texts only
        assert c["target"].domain == "products"
    # No fit sees a row of its seed's target test split, with or without labels (rows by id).
    data, _ = xd.load_domains(load_crossdomain_config(toy_config))
    for c in calls:
        test = xd.split_domain("products", data["products"], 0.2, c["seed"]).test
        assert test is not None
        seen = set(c["train"].ids) if c["train"].domain == "products" else set()
        seen |= set(c["target"].ids) if c["target"] is not None else set()
        assert not seen & set(test.ids)
    # The only fits on product labels are the oracle and the target-only baseline.
    assert {c["train"].domain for c in calls} == {"movies", "products"}


def test_predictions_do_not_depend_on_target_labels(toy_config: dict[str, Any], toy_products: LabeledTexts) -> None:  # noqa: F811
    cfg = load_crossdomain_config({**toy_config, "evaluation": {"n_boot": 0, "oracle": False, "target_only": False}})
    data, _ = xd.load_domains(cfg)
    probas = []
    for flip in (False, True):
        doms = {n: xd.split_domain(n, d, cfg.test_size, 0) for n, d in data.items()}
        tgt = doms["products"]
        assert tgt.train is not None and tgt.train.labels is not None
        if flip:  # scramble the target training labels: nothing trained on the source may change
            flipped = ["positive" if lab == "negative" else "negative" for lab in tgt.train.labels]
            tgt.train = LabeledTexts(tgt.train.texts, flipped, tgt.train.domain, tgt.train.ids)
            tgt.unlabeled = tgt.train.without_labels()
        exp = xd.CrossDomainRun(cfg)
        setup = next(s for s in cfg.setups() if s.name == "tfidf+coral")
        exp.run_pair(setup, "movies", "products", doms, 0, {})
        probas.append(exp.scores[(setup.name, "movies", "products", "cross_domain")][0].proba)
    np.testing.assert_array_equal(probas[0], probas[1])


def test_experiment_refuses_labeled_target_texts(toy_config: dict[str, Any], toy_movies: LabeledTexts, toy_products: LabeledTexts) -> None:  # noqa: F811
    exp = xd.CrossDomainRun(load_crossdomain_config(toy_config))
    with pytest.raises(AssertionError, match="target labels must never reach training"):
        exp.fit(exp.config.setups()[0], toy_movies, 0, toy_products)


def test_only_frozen_feature_strategies_fill_the_feature_cache_ahead(
    toy_config: dict[str, Any], tiny_bert_dir: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    # Warming encodes the whole source domain with the encoder as it is before training: useful
    # to frozen and CORAL, wasted time for a strategy that trains the encoder.
    toy_config["encoders"]["bert"] = {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16}
    toy_config["strategies"] = {
        "frozen": {"name": "frozen", "head": "logreg", "encoders": ["tfidf"]},
        "finetune": {"name": "finetune", "head": "linear", "encoders": ["bert"], "val_fraction": 0.0,
                     "training": {"epochs": 1, "batch_size": 16}},
    }
    cfg = load_crossdomain_config(toy_config)
    exp = xd.CrossDomainRun(cfg)
    warmed: list[str] = []
    monkeypatch.setattr(exp.store, "warm", lambda encoder, full, *parts: warmed.append(encoder.name))
    data, _ = xd.load_domains(cfg)
    exp.full = {d.domain: d for d in data.values()}
    movies = xd.split_domain("movies", data["movies"], 0.2, 0).train
    assert movies is not None
    for setup in cfg.setups():
        exp.fit(setup, movies, 0, None)
    assert warmed == ["tfidf"]
