"""The fit contract between the experiments and a strategy: a FitContext goes in, a FitResult comes
back, capabilities are declared on the class (or answered by the instance), and nothing is set on
the strategy from outside."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import textransfer
from textransfer.config import SetupConfig
from textransfer.encoders.base import ENCODERS, Encoder
from textransfer.encoders.cache import FeatureCache
from textransfer.experiments._kernel import (
    Checkpointing,
    FeatureStore,
    SharedEncoders,
    fit_setup,
    reads_frozen_features,
    saves_checkpoints,
)
from textransfer.strategies.base import (
    STRATEGIES,
    FitContext,
    FitResult,
    Strategy,
    register_strategy,
)
from textransfer.strategies.finetune import FinetuneStrategy
from textransfer.strategies.frozen import FrozenStrategy
from textransfer.training import TrainingArgs

SEEN: list[FitContext | None] = []


class ContextOnly(Strategy):
    """Implements only the new contract; fits a frozen head with the context it is given."""

    def fit_with_context(self, encoder, head, train, *, val=None, target_unlabeled=None, context=None):  # noqa: ANN001, ANN201
        SEEN.append(context)
        inner = FrozenStrategy().fit_with_context(encoder, head, train, val=val, context=context)
        return FitResult(inner.classifier, {**inner.info, "mine": True})


class Checkpointed(ContextOnly):
    supports_checkpoints = True


class Older(Strategy):
    """Written for the older contract: implements fit, reads its settings from attributes."""

    def fit(self, encoder, head, train, val=None, target_unlabeled=None):  # noqa: ANN001, ANN201
        clf = FrozenStrategy().fit(encoder, head, train) if self.batch_size == 5 else None
        self.last_fit_info = {"batch_size_seen": self.batch_size}
        return clf


@pytest.fixture
def registered():
    names = {"context_only": ContextOnly, "checkpointed": Checkpointed, "older": Older}
    for name, cls in names.items():
        register_strategy(name)(cls)
    SEEN.clear()
    yield
    for name in names:
        STRATEGIES._entries.pop(name, None)


def _setup(strategy: dict[str, Any], encoder: str = "tfidf") -> SetupConfig:
    return SetupConfig.model_validate({"name": "s", "encoder": {"name": encoder}, "strategy": strategy})


def test_the_kernel_passes_a_context_and_sets_nothing_on_the_strategy(registered, toy_movies):
    setup = _setup({"name": "context_only", "head": "logreg"})
    strategy = ContextOnly()
    fit = fit_setup(setup, toy_movies, seed=3, cache=None, batch_size=7, strategy=strategy)
    (context,) = SEEN
    assert context is not None and context.batch_size == 7 and context.training.seed == 3
    assert context.checkpoint_dir is None  # it does not declare supports_checkpoints
    # Nothing was injected: the strategy's own settings are as constructed.
    assert strategy.batch_size == 32 and strategy.training == TrainingArgs() and strategy.cache is None
    assert fit.info["mine"] is True and fit.info["train_rows"] == len(toy_movies)
    assert fit.classifier.predict(["a good film"]) in (["positive"], ["negative"])


def test_a_declared_checkpointing_strategy_gets_the_context_checkpoint_folder(registered, toy_movies, tmp_path):
    checkpoints = Checkpointing(tmp_path / "ckpt", resume=True)
    for name, expected in (("checkpointed", tmp_path / "ckpt"), ("context_only", None)):
        SEEN.clear()
        fit_setup(_setup({"name": name, "head": "logreg"}), toy_movies, seed=0, cache=None, batch_size=8,
                  checkpoints=checkpoints)
        assert SEEN[0].checkpoint_dir == expected, name
        assert SEEN[0].resume is (expected is not None), name
    assert saves_checkpoints(Checkpointed()) and not saves_checkpoints(ContextOnly())
    # Built in: fine-tuning checkpoints; DANN and self-training write none.
    builtin = {n for n in STRATEGIES.names() if STRATEGIES.get(n).supports_checkpoints} - {"checkpointed"}
    assert builtin == {"dapt", "finetune", "udalm"}


def test_a_strategy_of_the_older_contract_still_fits_in_the_experiments(registered, toy_movies):
    fit = fit_setup(_setup({"name": "older", "head": "logreg"}), toy_movies, seed=0, cache=None, batch_size=5)
    assert fit.info["batch_size_seen"] == 5 and fit.classifier is not None


def test_overriding_fit_of_a_strategy_that_implements_the_contract_is_refused():
    with pytest.raises(TypeError, match="override fit_with_context"):
        class Bypassed(FrozenStrategy):  # noqa: F841 - its definition is the test
            def fit(self, encoder, head, train, val=None, target_unlabeled=None):  # noqa: ANN001, ANN201
                return None


def test_fit_returns_the_classifier_and_fit_with_context_the_result(toy_movies):
    strategy = textransfer.create_strategy("frozen", batch_size=4)
    clf = strategy.fit(textransfer.create_encoder("tfidf"), textransfer.create_head("logreg"), toy_movies)
    assert clf.labels and strategy.last_fit_info == {"train_rows": len(toy_movies)}
    result = strategy.fit_with_context(
        textransfer.create_encoder("tfidf"), textransfer.create_head("linear"), toy_movies,
        context=FitContext(training={"epochs": 2, "patience": None}),
    )
    assert len(result.history) == 2 and result.info["history"] == result.history
    assert strategy.batch_size == 4 and strategy.training.epochs != 2  # the context is not stored


def test_fit_context_checks_its_fields(tmp_path):
    ctx = FitContext(training={"epochs": 2}, cache=tmp_path / "c", checkpoint_dir=str(tmp_path / "k"))
    assert ctx.training.epochs == 2 and isinstance(ctx.cache, FeatureCache) and ctx.checkpoint_dir == tmp_path / "k"
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        FitContext(training={"epoch": 2})
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        FitContext(batch_size=0)
    with pytest.raises(TypeError, match="cache must be a FeatureCache"):
        FitContext(cache=3)


def test_finetune_checkpoint_attributes_are_a_convenience_for_fit_without_context(tmp_path):
    strategy = textransfer.create_strategy("finetune")
    strategy.checkpoint_dir, strategy.resume = str(tmp_path), True
    assert strategy.context().checkpoint_dir == tmp_path and strategy.context().resume
    given = FitContext()
    assert strategy.context(given) is given


def test_capabilities_are_declared_and_self_train_answers_per_instance():
    frozen_base = textransfer.create_strategy("self_train", base="frozen")
    finetune_base = textransfer.create_strategy("self_train", base="finetune")
    assert reads_frozen_features(frozen_base) and not frozen_base.trains_encoder
    assert not reads_frozen_features(finetune_base) and finetune_base.trains_encoder
    needs = {n for n in textransfer.list_strategies() if STRATEGIES.get(n).needs_target_texts}
    assert needs == {"coral", "dann", "dapt", "self_train", "udalm"}
    assert isinstance(textransfer.create_strategy("finetune"), FinetuneStrategy)


def test_source_only_is_declared_and_never_inherited_by_an_adaptation():
    # A cross-domain run trains a source-only strategy once per seed for all its targets: an
    # adaptation taken for one would be scored on targets whose texts it never saw.
    from textransfer.strategies.base import is_source_only

    assert {n for n in textransfer.list_strategies() if is_source_only(n)} == {"finetune", "frozen", "zero_shot"}
    for name in textransfer.list_strategies():
        cls = STRATEGIES.get(name)
        if cls.needs_target_texts:  # CORAL, DANN and DAPT subclass a source-only strategy
            assert cls.source_only is False, name

    class Adapts(FrozenStrategy):  # a user's adaptation that forgot to undo FrozenStrategy's flag
        needs_target_texts = True

    register_strategy("adapts_test")(Adapts)
    try:
        assert Adapts.source_only and not is_source_only("adapts_test")
    finally:
        STRATEGIES._entries.pop("adapts_test", None)
    STRATEGIES.register("plain_factory_test")(lambda **kw: FrozenStrategy(**kw))
    try:
        assert not is_source_only("plain_factory_test")  # a factory says nothing about its fit
    finally:
        STRATEGIES._entries.pop("plain_factory_test", None)


class CountingEncoder(Encoder):
    """A frozen, non-fittable encoder that records how many inputs each encode call got."""

    calls: list[int] = []

    @property
    def dim(self) -> int:
        return 2

    def config(self) -> dict[str, Any]:
        return {}

    def _encode(self, items: list[Any], batch_size: int) -> np.ndarray:
        CountingEncoder.calls.append(len(items))
        return np.array([[("good" in t) - ("bad" in t), len(t) / 50] for t in items], dtype=np.float32)


@pytest.fixture
def counting_encoder():
    ENCODERS.register("counting_test")(CountingEncoder)
    CountingEncoder.calls = []
    yield "counting_test"
    ENCODERS._entries.pop("counting_test", None)


def test_self_train_over_frozen_features_reads_the_cache_filled_ahead(counting_encoder, toy_movies, toy_products, tmp_path):
    # As `textransfer crossdomain` does: each domain encoded once, the fit's rows read from the cache.
    source, target = toy_movies, toy_products
    train = source.subset(np.arange(36))
    unlabeled = target.subset(np.arange(30)).without_labels()
    store = FeatureStore(FeatureCache(tmp_path / "features"), batch_size=16)

    def warm(encoder: Encoder) -> None:
        store.warm(encoder, source, train)
        store.warm(encoder, target, unlabeled)

    setup = _setup({"name": "self_train", "base": "frozen", "rounds": 1, "head": "logreg"}, counting_encoder)
    fit = fit_setup(setup, train, seed=0, cache=store.cache, batch_size=16, target_unlabeled=unlabeled,
                    encoders=SharedEncoders(), warm=warm)
    assert CountingEncoder.calls == [len(source), len(target)]  # the whole domains, nothing in the fit
    assert fit.info["base"] == "frozen" and fit.info["target_rows"] == 30


def test_strategy_range_checks_share_one_message_shape():
    from textransfer.strategies._checks import integer, number

    with pytest.raises(ValueError, match=r"^x: k must be an integer >= 2 \(or null for all rows\), got 1$"):
        integer(1, "k", "x", minimum=2, allow_none=True, none_means="all rows")
    with pytest.raises(ValueError, match=r"^x: k must be an integer from 1 to 3, got True$"):
        integer(True, "k", "x", maximum=3)
    with pytest.raises(ValueError, match=r"^x: p must be a number in \[0, 1\), got 1$"):
        number(1, "p", "x", high=1.0, low_closed=True, high_closed=False)
    with pytest.raises(ValueError, match=r"^x: lr must be a number > 0 \(or null\), got -1$"):
        number(-1, "lr", "x", allow_none=True)
    assert integer(None, "k", "x", allow_none=True) is None and number(0.5, "p", "x", high=1.0) == 0.5
