"""The Encoder contract, checked for every registered encoder (tiny instances from
tests/fixtures/models.py and tests/fixtures/images.py; a registered name without a factory there
fails). Text encoders get TEXTS, image encoders (``modality == "image"``) get IMAGES."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.fixtures.images import synthetic_images
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
IMAGES = synthetic_images(5)
# 1x1 pixel, RGBA of an odd size, all-zero float, a 16-bit gray image
ODD_IMAGES = [
    np.full((1, 1), 128, np.uint8),
    np.zeros((37, 11, 4), np.uint8),
    np.zeros((9, 9), np.float64),
    np.full((12, 12), 40000, np.uint16),
]


def inputs_for(encoder) -> list:
    return TEXTS if encoder.modality == "text" else IMAGES


@pytest.fixture(params=NAMES)
def encoder(request, make_encoder):
    return make_encoder(request.param)


def test_every_registered_encoder_has_a_factory(make_encoder):
    for name in NAMES:
        try:
            assert make_encoder(name).name == name
        except pytest.skip.Exception:  # an optional package (timm, torchvision) is missing
            continue


def test_shape_and_dtype(encoder):
    inputs = inputs_for(encoder)
    x = encoder.encode(inputs)
    assert x.shape == (len(inputs), encoder.dim)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()


def test_input_order_invariance(encoder):
    inputs = inputs_for(encoder)
    x = encoder.encode(inputs, batch_size=2)
    perm = list(range(len(inputs)))
    random.Random(0).shuffle(perm)
    y = encoder.encode([inputs[i] for i in perm], batch_size=2)
    np.testing.assert_allclose(y, x[perm], atol=1e-5)


def test_odd_inputs(encoder):
    odd = ODD if encoder.modality == "text" else ODD_IMAGES
    x = encoder.encode(odd + inputs_for(encoder)[:1])
    assert x.shape == (len(odd) + 1, encoder.dim)
    assert np.isfinite(x).all()


def test_empty_list(encoder):
    x = encoder.encode([])
    assert x.shape == (0, encoder.dim) and x.dtype == np.float32


def test_single_string_rejected(encoder):
    with pytest.raises(TypeError, match="single string"):
        encoder.encode("a good film")


def test_non_string_item_rejected(encoder):
    first = "fine" if encoder.modality == "text" else IMAGES[0]
    with pytest.raises(TypeError, match="not str" if encoder.modality == "text" else "not an image"):
        encoder.encode([first, 3])


def test_other_modality_rejected_naming_it(encoder):
    # a text encoder given images, an image encoder given texts: a TypeError naming the modality
    other = IMAGES[:2] if encoder.modality == "text" else TEXTS[:2]
    with pytest.raises(TypeError, match=f"modality '{encoder.modality}'"):
        encoder.encode(other)


def test_deterministic(encoder):
    inputs = inputs_for(encoder)
    np.testing.assert_array_equal(encoder.encode(inputs), encoder.encode(inputs))


def test_save_load_roundtrip(encoder, tmp_path):
    from textransfer.encoders.base import ENCODERS

    inputs = inputs_for(encoder)
    before = encoder.encode(inputs)
    encoder.save(tmp_path / "enc")
    loaded = ENCODERS.get(encoder.name).load(tmp_path / "enc")
    np.testing.assert_allclose(loaded.encode(inputs), before, atol=1e-6)
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
