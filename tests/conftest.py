"""Shared test setup: offline hub, tiny fixtures (models in tests/fixtures/models.py, data files in
tests/fixtures/data.py) and a trivially separable two-domain corpus."""

from __future__ import annotations

import os

# Never reach for the hub from tests: fail fast instead of retrying for ~40 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from textransfer.data.labeled import LabeledTexts  # noqa: E402

pytest_plugins = ["tests.fixtures.models", "tests.fixtures.data", "tests.fixtures.images"]

_POS = ["good", "great", "wonderful", "excellent", "superb", "lovely"]
_NEG = ["bad", "awful", "terrible", "boring", "poor", "dreadful"]


def make_toy(domain: str, nouns: list[str], n: int = 48, seed: int = 0) -> LabeledTexts:
    """A trivially separable sentiment corpus: a positive or negative word in each sentence."""
    import random

    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        pos = i % 2 == 0
        word = rng.choice(_POS if pos else _NEG)
        noun = rng.choice(nouns)
        texts.append(f"a {word} {noun} , really {word}")
        labels.append("positive" if pos else "negative")
    return LabeledTexts(texts, labels, domain=domain)


@pytest.fixture
def toy_movies() -> LabeledTexts:
    return make_toy("movies", ["film", "movie", "plot", "actor"], seed=1)


@pytest.fixture
def toy_products() -> LabeledTexts:
    return make_toy("products", ["phone", "battery", "camera", "screen"], seed=2)
