"""Layer transfer (Yosinski et al. 2014): re-initialising the groups above k, freezing the
bottom k, and the `textransfer layers` run end to end on tiny models."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests.conftest import make_toy
from tests.fixtures.data import write_labeled_csv
from tests.fixtures.images import bars_dataset
from textransfer.cli import main
from textransfer.training.reinit import reinitialise_above


def _snapshot(encoder) -> list[tuple[str, list[torch.Tensor]]]:
    return [(name, [p.detach().clone() for p in params]) for name, params in encoder.layer_groups()]


def _check_exactly_above(make, k: int) -> None:
    enc = make()
    before = _snapshot(enc)
    reset = reinitialise_above(enc, k, seed=1)
    after = enc.layer_groups()
    assert reset == [name for name, _ in before[k:]]
    for i, ((name, old), (_, new)) in enumerate(zip(before, after, strict=True)):
        same = [torch.equal(a, b) for a, b in zip(old, new, strict=True)]
        if i < k:
            assert all(same), f"k={k}: kept group {name} changed"
        else:
            # every weight matrix / kernel changes (norm weights of ones may legitimately stay ones)
            changed = [not s for s, a in zip(same, old, strict=True) if a.ndim >= 2]
            assert changed and all(changed), f"k={k}: group {name} was not re-initialised"


@pytest.mark.parametrize("name", ["transformer", "sentence", "cnn"])
def test_reinit_changes_exactly_the_groups_above_k(name, make_encoder):
    n = len(make_encoder(name).layer_groups())
    for k in range(n + 1):
        _check_exactly_above(lambda: make_encoder(name), k)


def test_reinit_efficientnet_groups_above_k(make_encoder):
    enc = make_encoder("efficientnet-lite0")
    n = len(enc.layer_groups())
    for k in (0, 4, n):
        _check_exactly_above(lambda: make_encoder("efficientnet-lite0"), k)


def test_reinit_is_seeded_and_leaves_the_global_stream_alone(make_encoder):
    a, b = make_encoder("cnn"), make_encoder("cnn")
    state = torch.random.get_rng_state()
    reinitialise_above(a, 1, seed=3)
    reinitialise_above(b, 1, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    for (_, pa), (_, pb) in zip(a.layer_groups(), b.layer_groups(), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))


def test_k_outside_range_names_L(make_encoder):
    enc = make_encoder("cnn")  # stem, block.0, head
    with pytest.raises(ValueError, match=r"outside 0\.\.L with L=3"):
        reinitialise_above(enc, 4)
    with pytest.raises(ValueError, match="L=3"):
        reinitialise_above(enc, -1)


def test_frozen_bottom_groups_do_not_train(make_encoder):
    from textransfer.experiments.layers.run import BottomFrozenFinetune
    from textransfer.heads.base import create_head
    from textransfer.training.args import TrainingArgs

    enc = make_encoder("cnn")
    before = _snapshot(enc)
    strategy = BottomFrozenFinetune(frozen_groups=2, val_fraction=0.0)
    strategy.training = TrainingArgs(epochs=1, batch_size=8, lr=1e-2, patience=None)
    strategy.fit(enc, create_head("linear"), bars_dataset(16))
    for i, ((name, old), (_, new)) in enumerate(zip(before, enc.layer_groups(), strict=True)):
        moved = any(not torch.equal(a, b) for a, b in zip(old, new, strict=True))
        assert moved == (i >= 2), f"group {name}: moved={moved}"


def test_random_transformer_is_seeded_and_saved_with_its_weights(tiny_bert_dir, tmp_path):
    from textransfer.classifier import Classifier
    from textransfer.encoders import create_encoder
    from textransfer.heads.base import create_head
    from textransfer.strategies.base import create_strategy
    from textransfer.training.args import TrainingArgs

    pre = create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
    r1 = create_encoder(
        "transformer", model=str(tiny_bert_dir), max_length=16, pretrained=False, seed=1
    )
    r2 = create_encoder(
        "transformer", model=str(tiny_bert_dir), max_length=16, pretrained=False, seed=1
    )
    texts = ["a good film", "a bad phone"]
    assert (r1.encode(texts) == r2.encode(texts)).all() and not (
        r1.encode(texts) == pre.encode(texts)
    ).all()
    assert r1.config()["pretrained"] is False and "pretrained" not in pre.config()
    assert r1.fingerprint() != pre.fingerprint()
    strategy = create_strategy("finetune", val_fraction=0.0)
    strategy.training = TrainingArgs(epochs=1, batch_size=8, patience=None)
    clf = strategy.fit(r1, create_head("linear"), make_toy("movies", ["film"], n=8))
    clf.save(tmp_path / "m")
    loaded = Classifier.load(tmp_path / "m")
    assert (loaded.predict_proba(texts) == clf.predict_proba(texts)).all()


def test_layers_run_end_to_end(tiny_bert_dir, tmp_path, capsys):
    raw = {
        "name": "layers_toy",
        "output_dir": str(tmp_path / "runs"),
        "seeds": [0],
        "base": "source",
        "source": write_labeled_csv(
            tmp_path / "movies.csv", make_toy("movies", ["film", "plot"], n=32, seed=1)
        ),
        "target": write_labeled_csv(
            tmp_path / "products.csv", make_toy("products", ["phone", "battery"], n=40, seed=2)
        ),
        "test_size": 0.25,
        "budget": 16,
        "encoder": {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16},
        "strategy": {"name": "finetune", "head": "linear", "val_fraction": 0.0},
        "training": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "patience": None},
        "ks": [0, 4],
    }
    cfg = tmp_path / "layers.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["layers", str(cfg)]) == 0, capsys.readouterr().err
    run = tmp_path / "runs" / "layers_toy"
    for f in (
        "report.md",
        "metrics.json",
        "samples.json",
        "config.resolved.yaml",
        "plots/layer_transfer.png",
    ):
        assert (run / f).is_file(), f
    assert (run / "bases" / "seed0" / "A" / "textransfer.json").is_file()
    m = json.loads((run / "metrics.json").read_text())
    assert m["groups"] == ["embeddings", "layer.0", "layer.1", "pooler"]
    assert set(m["variants"]) == {"AnB", "AnB+", "BnB", "BnB+"}
    assert all(set(v) == {"0", "4"} for v in m["variants"].values())
    k0 = [r for r in m["records"] if r["k"] == 0]
    assert len(k0) == 4 and sum("same_as" in r for r in k0) == 3  # k=0: one network for all
    assert len(json.loads((run / "samples.json").read_text())["0"]) == 16
    report = (run / "report.md").read_text()
    assert "AnB+" in report and "BnB" in report and "layer_transfer.png" in report

    assert main(["layers", str(cfg), "--set", "ks=[5]"]) == 2
    assert "L=4" in capsys.readouterr().err


@pytest.mark.slow
def test_vision_layers_config_runs_shrunk(tmp_path, capsys):
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "vision_layers.yaml"
    sets = [f"output_dir={tmp_path}", "source.limit=60", "target.limit=80", "budget=20", "ks=[0, 4]",
            "training.epochs=1", "source_training.epochs=1", "encoder.image_size=12"]  # fmt: skip
    assert main(["layers", str(config), *[a for s in sets for a in ("--set", s)]]) == 0, (
        capsys.readouterr().err
    )
    m = json.loads((tmp_path / "vision_layers" / "metrics.json").read_text())
    assert m["groups"] == ["stem", "block.0", "block.1", "head"]
    assert set(m["target"]["labels"]) == {5, 6, 7, 8, 9} or set(m["target"]["labels"]) == {
        "5",
        "6",
        "7",
        "8",
        "9",
    }
    assert set(m["variants"]) == {"AnB", "AnB+", "BnB", "BnB+"}
