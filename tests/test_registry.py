from __future__ import annotations

import pytest

import textransfer
from textransfer._registry import Registry, UnknownNameError


def test_unknown_name_lists_known_names_and_suggests():
    with pytest.raises(UnknownNameError) as err:
        textransfer.create_encoder("tfdif")
    msg = str(err.value)
    assert "tfidf" in msg and "Did you mean 'tfidf'" in msg and "static" in msg


def test_unknown_constructor_key_is_named():
    with pytest.raises(ValueError, match=r"unknown key 'hiden'.*Did you mean 'hidden'"):
        textransfer.create_head("mlp", hiden=8)


def test_builtin_names_registered():
    assert {"tfidf", "static", "transformer", "sentence"} <= set(textransfer.list_encoders())
    assert {"logreg", "linear", "mlp"} <= set(textransfer.list_heads())
    assert "frozen" in textransfer.list_strategies()
    assert {"movies", "products"} <= set(textransfer.list_datasets())


def test_duplicate_registration_is_an_error():
    reg: Registry[object] = Registry("thing")

    @reg.register("a")
    class A: ...

    with pytest.raises(ValueError, match="already registered"):

        @reg.register("a")
        class B: ...
