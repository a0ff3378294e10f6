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
from textransfer.precision import detect_capabilities as _REAL_DETECT  # noqa: E402

pytest_plugins = ["tests.fixtures.models", "tests.fixtures.data", "tests.fixtures.images"]

@pytest.fixture(scope="session", autouse=True)
def _same_machine_everywhere():
    """Every test sees one machine without bf16 units, so that ``precision: auto`` and
    ``mixed_precision: auto`` mean fp32 whichever CPU runs the suite (an AMX or Zen 4 machine would
    otherwise encode in bf16 and miss the fp32 tolerances of the numeric tests). Session-wide, so
    that module-scoped models are built under it too. Tests of the detection itself take the
    ``real_capabilities`` fixture; tests of what each machine kind gets set their own
    capabilities (tests/test_precision.py)."""
    import textransfer.precision as prec

    fp32_machine = prec.Capabilities(cpu="test CPU without bf16 units")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prec, "detect_capabilities", lambda: fp32_machine)
        yield


@pytest.fixture
def real_capabilities(monkeypatch):
    """The machine's own capability detection for one test (see ``_same_machine_everywhere``)."""
    import textransfer.precision as prec

    monkeypatch.setattr(prec, "detect_capabilities", _REAL_DETECT)
    prec.detect_capabilities.cache_clear()
    yield prec.detect_capabilities
    prec.detect_capabilities.cache_clear()


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
