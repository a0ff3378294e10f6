"""Domain-adaptive pretraining (dapt) and UDALM: masked-LM training of the encoder's own backbone
on unlabeled target texts, with the tiny random BERT of tests/fixtures/models.py."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fixtures.models import TOY_TEXTS
from textransfer.data.labeled import LabeledTexts
from textransfer.encoders import create_encoder
from textransfer.heads.base import create_head
from textransfer.strategies.base import CapabilityError, create_strategy

FAST = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "patience": None}


def tiny(folder: Path) -> Any:
    return create_encoder("transformer", model=str(folder), max_length=16)


def snapshot(module: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(module: Any, before: dict[str, Any]) -> list[str]:
    import torch

    return [k for k, v in module.state_dict().items() if not torch.equal(v, before[k])]


@pytest.fixture(scope="module")
def tiny_mlm_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT saved as BertForMaskedLM: its folder holds a trained-looking MLM head."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    d = tmp_path_factory.mktemp("tiny_mlm")
    torch.manual_seed(1)
    model = BertForMaskedLM(BertConfig.from_pretrained(str(tiny_bert_dir)))
    with torch.no_grad():  # distinct values, so a loaded head is told apart from a fresh one
        model.cls.predictions.transform.dense.weight.fill_(0.125)
        model.cls.predictions.bias.fill_(0.5)
    model.save_pretrained(str(d))
    for f in tiny_bert_dir.iterdir():
        if f.name.startswith(("vocab", "tokenizer", "special")):
            shutil.copy(f, d / f.name)
    return d


# -- the MLM model --------------------------------------------------------------------------------


def test_mlm_loss_decreases_on_repeated_texts(tiny_bert_dir: Path) -> None:
    enc = tiny(tiny_bert_dir)
    strategy = create_strategy("dapt", mlm_lr=5e-3, mlm_batch_size=8, mlm_warmup_ratio=0.0)
    mlm = strategy.masked_lm(enc)
    info = strategy.mlm_phase(enc, mlm, TOY_TEXTS[:8] * 4, steps=24)
    trace = mlm.trace
    assert len(trace) == 24 and info["steps"] == 24
    assert np.mean(trace[-6:]) < 0.8 * np.mean(trace[:6]), trace
    assert info["loss_last"] < info["loss_first"]


def test_mlm_phase_trains_the_encoders_own_module(tiny_bert_dir: Path) -> None:
    enc = tiny(tiny_bert_dir)
    strategy = create_strategy("dapt", mlm_lr=1e-3, mlm_batch_size=8)
    mlm = strategy.masked_lm(enc)
    assert mlm.model.bert is enc.module  # shared, not a copy
    before = snapshot(enc.module)
    strategy.mlm_phase(enc, mlm, TOY_TEXTS, steps=3)
    moved = changed(enc.module, before)
    assert any(k.startswith("embeddings.") for k in moved) and any(k.startswith("encoder.layer.1") for k in moved)
    assert enc.weights_modified


def test_head_warm_up_trains_a_fresh_head_alone(tiny_bert_dir: Path) -> None:
    """The encoder (tied decoder included) stays bit for bit; the head moves and its loss falls;
    the requires_grad flags come back as they were."""
    enc = tiny(tiny_bert_dir)
    strategy = create_strategy("dapt", mlm_head_lr=5e-2, mlm_batch_size=8, mlm_warmup_ratio=0.0,
                               mlm_head_warmup_steps=24)
    mlm = strategy.masked_lm(enc)
    enc.module.embeddings.position_embeddings.weight.requires_grad_(False)  # a flag to restore
    before, head_before = snapshot(enc.module), {n: p.detach().clone() for n, p in mlm.model.named_parameters()
                                                 if not n.startswith("bert.")}
    info = strategy.warm_up_head(enc, mlm, TOY_TEXTS[:8] * 4)
    assert info is not None and info["steps"] == 24 and len(mlm.trace) == 24
    assert changed(enc.module, before) == []
    moved = [n for n, p in mlm.model.named_parameters() if n in head_before and not p.equal(head_before[n])]
    assert any("transform.dense" in n for n in moved) and any("LayerNorm" in n for n in moved)
    assert info["loss_last"] < info["loss_first"]
    assert not enc.module.embeddings.position_embeddings.weight.requires_grad
    assert enc.module.embeddings.word_embeddings.weight.requires_grad


@pytest.mark.parametrize("frozen_backbone", [False, True])
def test_a_batch_without_masked_tokens_has_zero_loss_and_a_backward(tiny_bert_dir: Path, frozen_backbone: bool) -> None:
    import torch

    enc = tiny(tiny_bert_dir)
    mlm = create_strategy("dapt").masked_lm(enc)
    head_ids = {id(p) for p in mlm.head_parameters()}
    for p in mlm.parameters():
        p.requires_grad_(not frozen_backbone or id(p) in head_ids)
    batch = dict(enc.tokenizer(TOY_TEXTS[:2], padding=True, return_tensors="pt"))
    mlm.train()
    out = mlm(labels=torch.full_like(batch["input_ids"], -100), **batch)
    assert out["loss"].detach().item() == 0.0 and out["logits"].shape[0] == 0
    out["loss"].backward()
    grads = [p.grad for p in mlm.parameters() if id(p) in head_ids]
    assert grads and all(g is not None and torch.count_nonzero(g) == 0 for g in grads)


def test_head_warm_up_is_skipped_for_a_checkpoint_head_and_off_by_default(tiny_mlm_dir: Path, tiny_bert_dir: Path) -> None:
    warm = create_strategy("dapt", mlm_head_warmup_steps=5)
    assert warm.warm_up_head(tiny(tiny_mlm_dir), warm.masked_lm(tiny(tiny_mlm_dir)), TOY_TEXTS) == {
        "skipped": "the checkpoint's own MLM head"}
    plain = create_strategy("dapt")
    enc = tiny(tiny_bert_dir)
    mlm = plain.masked_lm(enc)
    assert plain.warm_up_head(enc, mlm, TOY_TEXTS) is None and mlm.trace == []


@pytest.mark.parametrize("name", ["dapt", "udalm"])
def test_fit_warms_the_head_up_before_the_encoder_learns(
    tiny_bert_dir: Path, name: str, toy_movies: LabeledTexts, toy_products: LabeledTexts
) -> None:
    extra = {"mlm_steps": 2} if name == "dapt" else {}
    strategy = create_strategy(name, mlm_head_warmup_steps=3, mlm_head_lr=1e-2, mlm_batch_size=8, head_lr=1e-2,
                               val_fraction=0.0, training=FAST, **extra)
    strategy.fit(tiny(tiny_bert_dir), create_head("linear"), toy_movies, target_unlabeled=toy_products.without_labels())
    info = strategy.last_fit_info
    assert info["mlm_head_warmup"]["steps"] == 3 and info["mlm_head_warmup"]["loss_first"] > 0
    if name == "dapt":  # the MLM phase's own losses exclude the warm-up's
        assert info["mlm"]["steps"] == 2


def test_dapt_classifier_gets_the_adapted_encoder(
    tiny_bert_dir: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts
) -> None:
    """Same seed and fine-tuning: dapt's classifier differs from finetune's only by the MLM phase."""
    import torch

    target = toy_products.without_labels()
    ft_enc, dapt_enc = tiny(tiny_bert_dir), tiny(tiny_bert_dir)
    ft = create_strategy("finetune", head_lr=1e-2, val_fraction=0.0, training=FAST)
    ft_clf = ft.fit(ft_enc, create_head("linear"), toy_movies)
    dapt = create_strategy("dapt", mlm_steps=4, mlm_lr=1e-3, mlm_batch_size=8, head_lr=1e-2, val_fraction=0.0,
                           training=FAST)
    dapt_clf = dapt.fit(dapt_enc, create_head("linear"), toy_movies, target_unlabeled=target)
    assert dapt_clf.encoder is dapt_enc
    diff = [k for k, v in dapt_enc.module.state_dict().items() if not torch.equal(v, ft_enc.module.state_dict()[k])]
    assert diff, "the MLM phase left no trace in the classifier's encoder"
    info = dapt.last_fit_info
    assert info["mlm"]["steps"] == 4 and info["mlm"]["texts"] == len(toy_products) and info["target_rows"] == len(toy_products)
    assert dapt_clf.strategy["name"] == "dapt" and dapt_clf.strategy["kwargs"]["mlm_steps"] == 4
    assert not np.allclose(dapt_clf.predict_proba(toy_products.texts), ft_clf.predict_proba(toy_products.texts))


def test_fresh_head_is_initialised_and_tied_with_a_log_line(tiny_bert_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    enc = tiny(tiny_bert_dir)
    with caplog.at_level(logging.INFO, logger="textransfer.strategies"):
        mlm = create_strategy("dapt").masked_lm(enc)
    assert mlm.head_source == "initialised"
    assert "has no masked-LM head" in caplog.text and "initialised one" in caplog.text
    decoder = mlm.model.get_output_embeddings()
    emb = enc.module.get_input_embeddings().weight
    assert decoder.weight is emb and decoder.weight.data_ptr() == emb.data_ptr()  # same storage
    assert torch.count_nonzero(mlm.model.cls.predictions.bias) == 0
    ln = mlm.model.cls.predictions.transform.LayerNorm
    assert torch.equal(ln.weight, torch.ones_like(ln.weight)) and torch.count_nonzero(ln.bias) == 0
    # the tied decoder is not a head parameter of its own (it trains as the embeddings)
    assert all(p is not emb for p in mlm.head_parameters())


def test_a_fresh_head_depends_on_the_seed_alone_and_leaves_the_global_stream(tiny_bert_dir: Path) -> None:
    # Its linear weights once came from the global torch stream: the same seeded dapt fit then
    # gave another model after any earlier random draw in the process.
    import torch

    def head(seed: int) -> dict[str, Any]:
        mlm = create_strategy("dapt").masked_lm(tiny(tiny_bert_dir), seed=seed)
        return {id_: p.detach().clone() for id_, p in enumerate(mlm.head_parameters())}

    first = head(3)
    torch.manual_seed(123)
    torch.rand(7)
    state = torch.random.get_rng_state()
    again = head(3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's stream did not move
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    other = head(4)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_sentence_encoder_gets_a_tied_head_on_its_backbone(tiny_sentence_dir: Path) -> None:
    enc = create_encoder("sentence", model=str(tiny_sentence_dir))
    mlm = create_strategy("dapt").masked_lm(enc)
    backbone = enc.module[0].auto_model
    assert mlm.model.bert is backbone and mlm.head_source == "initialised"
    assert mlm.model.get_output_embeddings().weight.data_ptr() == backbone.get_input_embeddings().weight.data_ptr()


@pytest.fixture(scope="module")
def tiny_mpnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer MPNet (the family of the packaged all-mpnet-base-v2), no MLM head."""
    import torch
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    from tests.fixtures.models import TOY_WORDS

    d = tmp_path_factory.mktemp("tiny_mpnet")
    specials = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]
    (d / "vocab.txt").write_text("\n".join(specials + TOY_WORDS) + "\n", encoding="utf-8")
    tokenizer = MPNetTokenizerFast(vocab=str(d / "vocab.txt"))
    config = MPNetConfig(vocab_size=len(specials) + len(TOY_WORDS), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=37, max_position_embeddings=66,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    MPNetModel(config).save_pretrained(str(d))
    tokenizer.save_pretrained(str(d))
    return d


def test_mpnet_gets_a_tied_head_and_udalm_trains_it(tiny_mpnet_dir: Path, toy_movies: LabeledTexts,
                                                    toy_products: LabeledTexts) -> None:
    """MPNet's head is ``lm_head`` (not BERT's ``cls.predictions``): the decoder is tied to the
    word embeddings, the rest is fresh, and a UDALM fit moves the encoder through both losses."""
    import torch

    enc = tiny(tiny_mpnet_dir)
    assert enc.tokenizer.convert_tokens_to_ids("phone") != enc.tokenizer.unk_token_id  # words, not [UNK]
    mlm = create_strategy("udalm").masked_lm(enc)
    assert type(mlm.model).__name__ == "MPNetForMaskedLM" and mlm.head_source == "initialised"
    assert mlm.model.mpnet is enc.module
    emb = enc.module.get_input_embeddings().weight
    assert mlm.model.lm_head.decoder.weight.data_ptr() == emb.data_ptr()
    assert torch.count_nonzero(mlm.model.lm_head.bias) == 0
    assert all(p is not emb for p in mlm.head_parameters())

    enc = tiny(tiny_mpnet_dir)
    before = snapshot(enc.module)
    strategy = create_strategy("udalm", mlm_batch_size=8, head_lr=1e-2, val_fraction=0.0, training=FAST)
    clf = strategy.fit(enc, create_head("linear"), toy_movies, target_unlabeled=toy_products.without_labels())
    info = strategy.last_fit_info
    assert info["mlm_head"] == "initialised" and info["final_mlm_loss"] > 0 and info["final_cls_loss"] > 0
    assert "embeddings.word_embeddings.weight" in changed(enc.module, before)
    assert clf.predict_proba(toy_products.texts[:3]).shape == (3, 2)


def test_checkpoint_mlm_head_is_used(tiny_mlm_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    enc = tiny(tiny_mlm_dir)
    with caplog.at_level(logging.INFO, logger="textransfer.strategies"):
        mlm = create_strategy("dapt").masked_lm(enc)
    assert mlm.head_source == "checkpoint" and "MLM head loaded from" in caplog.text
    head = mlm.model.cls.predictions
    assert torch.all(head.transform.dense.weight == 0.125) and torch.all(head.bias == 0.5)
    assert head.decoder.weight.data_ptr() == enc.module.get_input_embeddings().weight.data_ptr()


# -- errors and options ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dapt", "udalm"])
@pytest.mark.parametrize("encoder", ["tfidf", "static", "cnn"])
def test_encoders_without_a_masked_lm_are_capability_errors(
    make_encoder: Any, name: str, encoder: str, toy_movies: LabeledTexts, toy_products: LabeledTexts
) -> None:
    with pytest.raises(CapabilityError, match="masked language model") as err:
        create_strategy(name).fit(make_encoder(encoder), create_head("linear"), toy_movies,
                                  target_unlabeled=toy_products.without_labels())
    message = str(err.value)
    assert "transformer" in message and "sentence" in message and "cnn" not in message.split("can:")[1]


@pytest.mark.parametrize("name", ["dapt", "udalm"])
def test_missing_or_empty_target_says_how_to_provide_it(
    tiny_bert_dir: Path, name: str, toy_movies: LabeledTexts
) -> None:
    for target in (None, LabeledTexts([], None, domain="products")):
        with pytest.raises(ValueError, match="needs unlabeled target texts") as err:
            create_strategy(name).fit(tiny(tiny_bert_dir), create_head("linear"), toy_movies, target_unlabeled=target)
        assert "crossdomain" in str(err.value) and "without_labels()" in str(err.value)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("dapt", {"mlm_steps": 0}, "mlm_steps must be an integer >= 1"),
        ("dapt", {"mlm_steps": 10, "mlm_epochs": 1.0}, "not both"),
        ("dapt", {"mlm_epochs": 0}, "mlm_epochs must be a number > 0"),
        ("dapt", {"mlm_probability": 1.5}, "mlm_probability must be in"),
        ("dapt", {"mlm_probability": 0}, "mlm_probability must be in"),
        ("dapt", {"mlm_texts": "both"}, "mlm_texts must be one of target, target[+]source"),
        ("dapt", {"mlm_batch_size": 0}, "mlm_batch_size must be an integer >= 1"),
        ("dapt", {"mlm_lr": -1e-4}, "mlm_lr must be a number > 0"),
        ("dapt", {"mlm_warmup_ratio": 1.0}, "mlm_warmup_ratio must be in"),
        ("dapt", {"max_target_rows": 1}, "max_target_rows must be an integer >= 2"),
        ("dapt", {"layer_lr_decay": 0}, "layer_lr_decay"),
        ("udalm", {"cls_weight": 0}, "cls_weight"),
        ("udalm", {"cls_weight": 1.5}, "cls_weight"),
        ("udalm", {"mlm_steps": -1}, "mlm_steps must be an integer >= 0"),
        ("dapt", {"mlm_head_warmup_steps": -1}, "mlm_head_warmup_steps must be an integer >= 0"),
        ("udalm", {"mlm_head_warmup_steps": 2.5}, "mlm_head_warmup_steps must be an integer"),
    ],
)
def test_options_are_checked_when_built(name: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_strategy(name, **kwargs)


def test_udalm_takes_no_gradual_unfreezing() -> None:
    with pytest.raises(ValueError, match="gradual_unfreezing"):
        create_strategy("udalm", gradual_unfreezing=True)


# -- UDALM ------------------------------------------------------------------------------------------


def test_mixed_loss_weights_classification_and_mlm() -> None:
    import torch

    from textransfer.training.mlm import MixedLoss

    class Fixed(torch.nn.Module):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(value))

        def forward(self, labels: Any = None, **batch: Any) -> dict[str, Any]:
            return {"loss": self.w * 1.0, "logits": torch.zeros(2, 2)}

    mixed = MixedLoss(Fixed(2.0), Fixed(10.0), cls_weight=0.25).train()  # type: ignore[arg-type]
    out = mixed(labels=torch.zeros(2), input_ids=torch.zeros(2), mlm_input_ids=torch.zeros(2))
    assert float(out["loss"].detach()) == pytest.approx(0.25 * 2.0 + 0.75 * 10.0)
    assert mixed.last == {"cls_loss": 2.0, "mlm_loss": 10.0}
    mixed.eval()  # validation: the classification loss only
    assert float(mixed(labels=torch.zeros(2), input_ids=torch.zeros(2))["loss"].detach()) == pytest.approx(2.0)


def test_udalm_trains_with_both_losses(tiny_bert_dir: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts) -> None:
    enc = tiny(tiny_bert_dir)
    before = snapshot(enc.module)
    strategy = create_strategy("udalm", cls_weight=0.5, mlm_batch_size=8, head_lr=1e-2, val_fraction=0.0, training=FAST)
    clf = strategy.fit(enc, create_head("linear"), toy_movies, target_unlabeled=toy_products.without_labels())
    info = strategy.last_fit_info
    assert info["mlm"] is None and info["mlm_head"] == "initialised"  # no MLM phase by default
    assert info["final_mlm_loss"] > 0 and info["final_cls_loss"] > 0
    assert changed(enc.module, before)
    assert clf.predict_proba(toy_products.texts[:3]).shape == (3, 2)


# -- saved models and cross-domain runs ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["dapt", "udalm"])
def test_saved_classifier_round_trips_without_the_mlm_head(
    tiny_bert_dir: Path, name: str, tmp_path: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts
) -> None:
    import textransfer
    from textransfer._modelfolder import tensor_shapes

    strategy = create_strategy(name, mlm_steps=2, mlm_batch_size=8, val_fraction=0.0, training=FAST)
    clf = strategy.fit(tiny(tiny_bert_dir), create_head("linear"), toy_movies,
                       target_unlabeled=toy_products.without_labels())
    clf.save(tmp_path / "model")
    names = [n for f in (tmp_path / "model").rglob("*.safetensors") for n in tensor_shapes(f)]
    assert names and not [n for n in names if n.startswith("cls.") or "lm_head" in n]
    loaded = textransfer.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(toy_products.texts), clf.predict_proba(toy_products.texts),
                               rtol=1e-5, atol=1e-6)


def test_crossdomain_run_with_a_finetune_baseline(tiny_bert_dir: Path, tmp_path: Path,
                                                 toy_movies: LabeledTexts, toy_products: LabeledTexts) -> None:
    from tests.test_crossdomain import write_domain
    from textransfer.crossdomain import run_crossdomain
    from textransfer.crossdomain_config import load_crossdomain_config

    training = {"lr": 1e-3, "epochs": 1, "batch_size": 16, "patience": None}
    common = {"head": "linear", "oracle": False, "head_lr": 1e-2, "training": training}
    config = {
        "name": "toy_dapt",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
        "seeds": [0],
        "domains": {"movies": write_domain(tmp_path / "movies.csv", toy_movies),
                    "products": write_domain(tmp_path / "products.csv", toy_products)},
        "sources": ["movies"],
        "targets": ["products"],
        "encoders": {"bert": {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16}},
        "strategies": {
            "finetune": {"name": "finetune", **common},
            "dapt": {"name": "dapt", "mlm_steps": 3, "mlm_batch_size": 8, "baseline": "finetune", **common},
            "udalm": {"name": "udalm", "mlm_batch_size": 8, "baseline": "finetune", **common},
        },
        "evaluation": {"n_boot": 50, "plots": False, "target_only": False, "a_distance_encoders": []},
    }
    result = run_crossdomain(load_crossdomain_config(config))
    rows = {r["setup"]: r for r in result.metrics["rows"]}
    for setup in ("bert+dapt", "bert+udalm"):
        assert "adaptation_gain" in rows[setup], setup
        assert 0.0 <= rows[setup]["cross_domain"]["accuracy"]["mean"] <= 1.0
