"""The Encoder contract, checked for every registered encoder (tiny instances from
tests/fixtures/models.py; a registered name without a factory there fails)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from textransfer.encoders import create_encoder, list_encoders

NAMES = list_encoders()
ODD = ["", "   ", "🙂 naïve café — 日本語", "\u200b"]
TEXTS = [
    "a good film , really good",
    "a terrible phone , really terrible",
    "the plot is not very lovely",
    "battery",
    "an excellent camera and a superb screen .",
]


@pytest.fixture(params=NAMES)
def encoder(request, make_encoder):
    return make_encoder(request.param)


def test_every_registered_encoder_has_a_factory(make_encoder):
    for name in NAMES:
        assert make_encoder(name).name == name


def test_shape_and_dtype(encoder):
    x = encoder.encode(TEXTS)
    assert x.shape == (len(TEXTS), encoder.dim)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()


def test_input_order_invariance(encoder):
    x = encoder.encode(TEXTS, batch_size=2)
    perm = list(range(len(TEXTS)))
    random.Random(0).shuffle(perm)
    y = encoder.encode([TEXTS[i] for i in perm], batch_size=2)
    np.testing.assert_allclose(y, x[perm], atol=1e-5)


def test_odd_inputs(encoder):
    x = encoder.encode(ODD + TEXTS[:1])
    assert x.shape == (len(ODD) + 1, encoder.dim)
    assert np.isfinite(x).all()


def test_empty_list(encoder):
    x = encoder.encode([])
    assert x.shape == (0, encoder.dim) and x.dtype == np.float32


def test_single_string_rejected(encoder):
    with pytest.raises(TypeError, match="single string"):
        encoder.encode("a good film")


def test_non_string_item_rejected(encoder):
    with pytest.raises(TypeError, match="not str"):
        encoder.encode(["fine", 3])


def test_deterministic(encoder):
    np.testing.assert_array_equal(encoder.encode(TEXTS), encoder.encode(TEXTS))


def test_save_load_roundtrip(encoder, tmp_path):
    from textransfer.encoders.base import ENCODERS

    before = encoder.encode(TEXTS)
    encoder.save(tmp_path / "enc")
    loaded = ENCODERS.get(encoder.name).load(tmp_path / "enc")
    np.testing.assert_allclose(loaded.encode(TEXTS), before, atol=1e-6)
    assert loaded.fingerprint() == encoder.fingerprint()
    assert loaded.config() == encoder.config()


def test_fingerprint(encoder, make_encoder):
    assert encoder.fingerprint() == make_encoder(encoder.name).fingerprint()
    other = make_encoder(encoder.name, variant=1)
    assert other.config() != encoder.config()
    assert other.fingerprint() != encoder.fingerprint()


def test_config_rebuilds_through_registry(encoder):
    rebuilt = create_encoder(encoder.name, **encoder.config())
    assert rebuilt.config() == encoder.config()
