"""The ``Example:`` blocks in textransfer's docstrings run and print what they show (examples that
need a model download, a run directory or a GPU are marked ``# doctest: +SKIP``)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import textransfer

MODULES = sorted(m.name for m in pkgutil.walk_packages(textransfer.__path__, "textransfer."))


def test_every_module_is_found():
    assert "textransfer.evaluation.label_free" in MODULES and "textransfer.heads.cosine" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring example lines of {name} fail (output above)"
