"""DANN: gradient reversal flips the domain loss gradient; the strategy trains on unlabeled target texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from textransfer.data.labeled import LabeledTexts
from textransfer.encoders import create_encoder
from textransfer.heads.base import create_head
from textransfer.strategies.base import CapabilityError, create_strategy


def test_gradient_reversal_flips_the_sign() -> None:
    import torch

    from textransfer.strategies._dann_modules import grad_reverse

    torch.manual_seed(0)
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(3, 2)
    y = torch.tensor([0, 1, 0, 1, 1])
    torch.nn.functional.cross_entropy(x @ w, y).backward()
    plain = x.grad.clone()
    x.grad = None
    torch.nn.functional.cross_entropy(grad_reverse(x, 0.5) @ w, y).backward()
    torch.testing.assert_close(x.grad, -0.5 * plain)
    assert torch.equal(grad_reverse(x, 0.5), x)  # identity forward


def test_lambda_schedule() -> None:
    from textransfer.strategies._dann_modules import lambda_schedule

    assert lambda_schedule(0.0) == 0.0
    assert lambda_schedule(1.0) == pytest.approx(2 / (1 + 2.718281828 ** -10) - 1)
    assert lambda_schedule(0.5, lambda_max=0.1) < 0.1


def test_dann_trains_encoder_and_domain_classifier(
    tiny_bert_dir: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts
) -> None:
    strategy = create_strategy("dann", head_lr=1e-2, domain_lr=1e-2, val_fraction=0.0, max_source_rows=32)
    strategy.training = type(strategy.training)(epochs=2, batch_size=16, lr=1e-3, patience=None)
    enc = create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
    before = {k: v.clone() for k, v in enc.module.state_dict().items()}
    clf = strategy.fit(enc, create_head("linear"), toy_movies, target_unlabeled=toy_products.without_labels())
    info = strategy.last_fit_info
    assert info["train_rows"] == 32 and info["target_rows"] == len(toy_products)
    assert 0 < info["final_lambda"] <= 1 and info["final_domain_loss"] > 0
    changed = [k for k, v in enc.module.state_dict().items() if not (v == before[k]).all()]
    assert changed, "the encoder was not trained"
    assert clf.predict_proba(toy_products.texts[:3]).shape == (3, 2)


def test_dann_needs_target_and_trainable_encoder(toy_movies: LabeledTexts, toy_products: LabeledTexts) -> None:
    with pytest.raises(ValueError, match="dann needs unlabeled target texts"):
        create_strategy("dann").fit(create_encoder("tfidf"), create_head("linear"), toy_movies)
    with pytest.raises(CapabilityError):
        create_strategy("dann").fit(
            create_encoder("tfidf"), create_head("linear"), toy_movies, target_unlabeled=toy_products.without_labels()
        )
