"""Freezing is verified by gradients: after one optimiser step, frozen parameters have no gradient
and are unchanged; trainable ones have finite, non-zero gradients and moved."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import textransfer  # noqa: E402
from textransfer.training.freezing import FreezePlan, FreezeSpec, split_groups  # noqa: E402

# Name fragments of the tiny BERT's parameter groups (same in the sentence-transformers wrapper).
EMB, L0, L1, POOLER = "embeddings.", "layer.0.", "layer.1.", "pooler."


def _group_of(name: str) -> str:
    if name.startswith("head."):
        return "head"
    for frag in (EMB, L0, L1, POOLER):
        if frag in name:
            return frag
    raise AssertionError(f"parameter {name} is in no known group")


def _one_step(make_encoder, toy_movies, encoder_name="transformer", stage=None, **spec):
    strategy = textransfer.create_strategy("finetune", **spec)
    enc, head = make_encoder(encoder_name), textransfer.create_head("linear")
    model, plan = strategy.prepare(enc, head, 2, toy_movies.texts[:8])
    plan.apply(stage)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(strategy.optimizer_groups(plan, head), lr=1e-2)
    batch = enc.collate(toy_movies.texts[:16])
    batch["labels"] = torch.tensor([i % 2 for i in range(16)])
    model.train()
    model(**batch)["loss"].backward()
    opt.step()
    return model, before


def _check(model, before, trainable_groups: set[str]) -> None:
    for name, p in model.named_parameters():
        if _group_of(name) in trainable_groups:
            assert p.requires_grad, name
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, f"{name}: zero gradient"
            assert not torch.equal(p, before[name]), f"{name} did not move"
        else:
            assert not p.requires_grad, f"{name} should be frozen"
            assert p.grad is None, f"{name} got a gradient"
            assert torch.equal(p, before[name]), f"{name} changed while frozen"


# The pooler is never trainable: mean pooling does not use it, so no gradient reaches it.
@pytest.mark.parametrize(
    ("spec", "trainable"),
    [
        ({}, {EMB, L0, L1, "head"}),
        ({"freeze_bottom": 1}, {EMB, L1, "head"}),
        ({"freeze_bottom": 2}, {EMB, "head"}),
        ({"freeze_embeddings": True}, {L0, L1, "head"}),
        ({"freeze_embeddings": True, "freeze_bottom": 2}, {"head"}),
    ],
)
def test_static_freezing_by_gradients(make_encoder, toy_movies, spec, trainable):
    model, before = _one_step(make_encoder, toy_movies, **spec)
    _check(model, before, trainable)


@pytest.mark.parametrize(
    ("stage", "trainable"),
    [(0, {"head"}), (1, {L1, "head"}), (2, {L0, L1, "head"}), (3, {EMB, L0, L1, "head"}), (9, {EMB, L0, L1, "head"})],
)
def test_gradual_unfreezing_stages_by_gradients(make_encoder, toy_movies, stage, trainable):
    model, before = _one_step(make_encoder, toy_movies, stage=stage, gradual_unfreezing=True)
    _check(model, before, trainable)


def test_gradual_unfreezing_skips_fixed_groups(make_encoder, toy_movies):
    model, before = _one_step(make_encoder, toy_movies, stage=3, gradual_unfreezing=True, freeze_bottom=1)
    _check(model, before, {L1, EMB, "head"})


def test_sentence_encoder_freezing_by_gradients(make_encoder, toy_movies):
    model, before = _one_step(make_encoder, toy_movies, encoder_name="sentence", freeze_bottom=1)
    _check(model, before, {EMB, L1, "head"})


def test_layerwise_learning_rates_follow_the_decay_rule(make_encoder, toy_movies):
    strategy = textransfer.create_strategy("finetune", layer_lr_decay=0.5, head_lr=1e-2)
    strategy.training.lr = 1e-3
    head = textransfer.create_head("linear")
    _, plan = strategy.prepare(make_encoder("transformer"), head, 2, toy_movies.texts[:8])
    groups = strategy.optimizer_groups(plan, head)
    lrs = {g["group"].removesuffix("/no_decay"): g["lr"] for g in groups}
    # Top trainable group (layer.1; the unused pooler is left out) at lr, each lower one x 0.5.
    assert lrs == pytest.approx({"layer.1": 1e-3, "layer.0": 5e-4, "embeddings": 2.5e-4, "head": 1e-2})
    for g in groups:
        one_d = all(p.ndim < 2 for p in g["params"])
        assert (g["weight_decay"] == 0.0) == one_d == g["group"].endswith("/no_decay")


def test_freeze_bottom_larger_than_layer_count_names_the_count(make_encoder, toy_movies):
    strategy = textransfer.create_strategy("finetune", freeze_bottom=5)
    with pytest.raises(ValueError, match=r"freeze_bottom=5, but the encoder has only 2 layers"):
        strategy.prepare(make_encoder("transformer"), textransfer.create_head("linear"), 2, toy_movies.texts[:4])


def test_group_split_is_by_position_and_numbering():
    assert split_groups(["stem", "block.0", "block.1", "head_norm"]) == ([0], [1, 2], [3])
    with pytest.raises(ValueError, match="no numbered layer"):
        split_groups(["embeddings", "pooler"])
    p = [torch.nn.Parameter(torch.zeros(2)) for _ in range(3)]
    plan = FreezePlan([("stem", [p[0]]), ("block.0", [p[1]]), ("block.1", [p[2]])], FreezeSpec(gradual_unfreezing=True))
    assert plan.num_stages == 4 and plan.active_groups(1) == ["block.1"]
    with pytest.raises(ValueError, match="integer >= 0"):
        FreezeSpec(freeze_bottom=-1)
