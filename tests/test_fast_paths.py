"""Each fast path against its slow reference: length-sorted batching vs one padded batch, int8 vs
fp32, vectorised static pooling vs gensim's per-sentence mean, streamed vs in-memory features."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.models import TOY_TEXTS
from textransfer.encoders.cache import encode_streamed
from textransfer.encoders.sentence import SentenceEncoder
from textransfer.encoders.static import StaticEncoder, tokenize
from textransfer.encoders.transformer import TransformerEncoder, pool_hidden

TEXTS = [
    "a good film",
    "a really terrible phone , really terrible and not very lovely",
    "plot",
    "the camera is excellent , the screen is superb and the battery is great .",
    "bad actor",
    "",
    *TOY_TEXTS[:10],
]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_transformer_sorted_batches_match_one_unsorted_batch(tiny_bert_dir):
    import torch

    enc = TransformerEncoder(str(tiny_bert_dir), max_length=32)
    with torch.inference_mode():
        batch = enc.collate(TEXTS)  # one batch, padded to the longest text, input order
        hidden = enc.module(**batch).last_hidden_state
        reference = pool_hidden(hidden, batch["attention_mask"], "mean").numpy()
    np.testing.assert_allclose(enc.encode(TEXTS, batch_size=3), reference, atol=1e-5)


def test_sentence_fast_loop_matches_sentence_transformers_encode(tiny_sentence_dir):
    enc = SentenceEncoder(str(tiny_sentence_dir))
    reference = enc.module.encode(TEXTS, batch_size=4, convert_to_numpy=True)
    np.testing.assert_allclose(enc.encode(TEXTS, batch_size=4), reference, atol=1e-5)


def test_sentence_tokenises_once_when_the_model_preprocessing_agrees(tiny_sentence_dir, monkeypatch):
    enc = SentenceEncoder(str(tiny_sentence_dir))
    calls = []
    original = enc.collate
    monkeypatch.setattr(enc, "collate", lambda items: calls.append(len(items)) or original(items))
    texts = [*TEXTS, "A Good FILM", "  padded  text ", "plot plot plot plot"]
    ours = enc.encode(texts, batch_size=3)
    assert calls == [3]  # the first batch only: it checked the single tokenisation's batches
    reference = enc.module.encode(texts, batch_size=3, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_sentence_uses_model_preprocessing_for_every_batch_when_it_differs(tiny_sentence_dir, monkeypatch):
    """A model whose preprocessing changes the text (here: a prefix) must get it on every batch."""
    enc = SentenceEncoder(str(tiny_sentence_dir))
    original = enc.collate
    calls = []

    def prefixed(items):
        calls.append(len(items))
        return original(["film " + t for t in items])

    monkeypatch.setattr(enc, "collate", prefixed)
    ours = enc.encode(TEXTS, batch_size=4)
    assert len(calls) == -(-len(TEXTS) // 4)
    reference = enc.module.encode(["film " + t for t in TEXTS], batch_size=4, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize("cls", [TransformerEncoder, SentenceEncoder])
def test_int8_close_to_fp32(cls, tiny_bert_dir, tiny_sentence_dir):
    import torch

    path = tiny_bert_dir if cls is TransformerEncoder else tiny_sentence_dir
    fp32 = cls(str(path), precision="fp32").encode(TEXTS, batch_size=4)
    int8_enc = cls(str(path), precision="int8")
    int8 = int8_enc.encode(TEXTS, batch_size=4)
    assert int8.dtype == np.float32 and int8.shape == fp32.shape
    assert _cosine(fp32, int8).min() > 0.99
    # Quantisation works on a copy: the fp32 weights used for training are untouched.
    assert all(p.dtype == torch.float32 for p in int8_enc.module.parameters())

def test_int8_scheme_is_part_of_the_fingerprint(tiny_bert_dir, tiny_sentence_dir, monkeypatch):
    import textransfer.encoders._fast as tmod

    for enc in (TransformerEncoder(str(tiny_bert_dir), precision="int8"), SentenceEncoder(str(tiny_sentence_dir), precision="int8")):
        before = enc.fingerprint()
        monkeypatch.setattr(tmod, "INT8_SCHEME", "another scheme")
        assert enc.fingerprint() != before
        monkeypatch.undo()


def test_precision_is_part_of_config_and_fingerprint(tiny_bert_dir):
    a = TransformerEncoder(str(tiny_bert_dir), precision="fp32")
    b = TransformerEncoder(str(tiny_bert_dir), precision="int8")
    assert a.config()["precision"] == "fp32" and b.config()["precision"] == "int8"
    assert a.fingerprint() != b.fingerprint()
    with pytest.raises(ValueError, match="precision"):
        TransformerEncoder(str(tiny_bert_dir), precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="precision"):
        SentenceEncoder("x", precision="int4")  # type: ignore[arg-type]


def test_int8_copy_follows_weight_updates(tiny_bert_dir):
    import torch

    enc = TransformerEncoder(str(tiny_bert_dir), precision="int8")
    before = enc.encode(TEXTS[:3])
    with torch.no_grad():  # an optimizer step changes weights in place, like this
        enc.module.encoder.layer[0].output.dense.weight.mul_(3.0)
    after = enc.encode(TEXTS[:3])
    assert not np.allclose(before, after, atol=1e-3)
    fp32_after = TransformerEncoder(str(tiny_bert_dir), precision="fp32")
    fp32_after._module = enc.module
    assert _cosine(fp32_after.encode(TEXTS[:3]), after).min() > 0.99


def test_static_pooling_equals_gensim_mean(tiny_glove_file):
    enc = StaticEncoder(str(tiny_glove_file), pooling="mean")
    texts = [*TEXTS, "zzz unknown qqq", "good , zzz bad"]
    token_lists = [tokenize(t) for t in texts]
    kv = enc.keyed_vectors
    ours = enc.pool_tokens(token_lists)
    for row, toks in zip(ours, token_lists, strict=True):
        if any(t in kv.key_to_index for t in toks):
            ref = kv.get_mean_vector(toks, pre_normalize=False, post_normalize=False)
            np.testing.assert_array_equal(row, ref)  # same float32 sums, same order: bit-identical
        else:
            np.testing.assert_array_equal(row, 0.0)
    np.testing.assert_array_equal(enc.encode(texts), ours)


@pytest.mark.parametrize("pooling", ["mean", "max", "sif"])
def test_static_pooling_matches_per_text_loop(tiny_glove_file, pooling):
    enc = StaticEncoder(str(tiny_glove_file), pooling=pooling)
    kv, probs = enc.keyed_vectors, enc._probs
    ours = enc.pool_tokens([tokenize(t) for t in TEXTS])
    for row, text in zip(ours, TEXTS, strict=True):
        ids = [kv.key_to_index[t] for t in tokenize(text) if t in kv.key_to_index]
        if not ids:
            np.testing.assert_array_equal(row, 0.0)
            continue
        vecs = kv.vectors[ids].astype(np.float64)
        if pooling == "max":
            ref = vecs.max(0)
        elif pooling == "sif":
            ref = (vecs * (enc.sif_a / (enc.sif_a + probs[ids]))[:, None]).mean(0)
        else:
            ref = vecs.mean(0)
        np.testing.assert_allclose(row, ref, atol=1e-6)


def test_streamed_features_equal_in_memory(tiny_glove_file, tmp_path):
    enc = StaticEncoder(str(tiny_glove_file), pooling="mean")
    texts = TOY_TEXTS * 3
    streamed = encode_streamed(enc, texts, tmp_path / "feats.npy", chunk_size=7)
    assert isinstance(streamed, np.memmap) and streamed.dtype == np.float32
    np.testing.assert_array_equal(streamed, enc.encode(texts))
    assert not list(tmp_path.glob("*.tmp"))
