"""The shipped vision configs run end to end through `textransfer run` (shrunk: 60 MNIST images,
32-pixel inputs, one or two epochs) and their saved models predict image files."""

from __future__ import annotations

from pathlib import Path

import pytest

from textransfer.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHRINK = ["data.train.limit=60", "training.epochs=1", "cache_dir=null"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "extra"),
    [
        ("vision_mnist_frozen.yaml", ["encoder.image_size=32"]),
        ("vision_mnist_finetune.yaml", ["encoder.image_size=32"]),
        ("vision_mnist_cnn.yaml", []),
    ],
)
def test_vision_config_runs_and_predicts(config, extra, tmp_path, capsys):
    from PIL import Image

    from textransfer.classifier import load
    from textransfer.data import load as load_data

    sets = [f"output_dir={tmp_path}", *SHRINK, *extra]
    args = ["run", str(CONFIGS / config)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0, capsys.readouterr().err
    models = sorted(tmp_path.rglob("textransfer.json"))
    assert models, "the run saved no model"
    digits = load_data({"source": "mnist-5k", "limit": 20, "sample_seed": 1})
    path = tmp_path / "digit.png"
    Image.fromarray(digits.texts[0]).save(path)
    clf = load(models[0].parent)
    assert len(clf.predict([str(path), digits.texts[1]])) == 2
    capsys.readouterr()
    assert main(["predict", str(models[0].parent), str(path)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(path))
