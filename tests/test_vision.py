"""Image encoders through the unchanged strategies: freezing by gradients, overfitting a tiny set,
save/load, predict from paths / PIL / arrays, CLI predict on image files, modality errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.images import bars_dataset
from textransfer.classifier import load
from textransfer.encoders import create_encoder
from textransfer.heads.base import create_head
from textransfer.strategies.base import create_strategy
from textransfer.training.args import TrainingArgs


def _tiny_cnn(**kw):
    return create_encoder("cnn", channels=[8, 16], dim=32, image_size=16, **kw)


def _finetune(epochs: int = 12, **kw):
    strategy = create_strategy("finetune", val_fraction=0.0, **kw)
    strategy.training = TrainingArgs(
        epochs=epochs, batch_size=8, lr=1e-2, patience=None, max_grad_norm=None
    )
    return strategy


def test_efficientnet_layer_groups_cover_the_backbone_bottom_to_top():
    enc = create_encoder("efficientnet-lite0", image_size=32)
    groups = enc.layer_groups()
    names = [n for n, _ in groups]
    assert names == ["stem", *[f"stage.{i}" for i in range(7)], "head"]
    grouped = {id(p) for _, ps in groups for p in ps}
    assert grouped == {id(p) for p in enc.module.parameters()}  # the ImageNet classifier is gone
    assert sum(p.numel() for p in enc.module.parameters()) == pytest.approx(3.37e6, rel=0.05)


@pytest.mark.parametrize(
    "spec", [{"freeze_embeddings": True, "freeze_bottom": 1}, {"freeze_bottom": 0}]
)
def test_cnn_freezing_verified_by_gradients(spec):
    import torch

    enc, head = _tiny_cnn(), create_head("linear")
    data = bars_dataset(8)
    strategy = _finetune(**spec)
    model, plan = strategy.prepare(enc, head, 2, data.texts)
    batch = enc.collate(data.texts)
    batch["labels"] = torch.tensor([0, 1] * 4)
    model.train()
    model(**batch)["loss"].backward()
    frozen = {"stem", "block.0"} if spec.get("freeze_bottom") else set()
    for name, params in enc.layer_groups():
        for p in params:
            if name in frozen:
                assert not p.requires_grad and p.grad is None, name
            else:
                assert (
                    p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
                ), name


def test_frozen_batchnorm_keeps_running_stats():
    import torch

    enc, head = _tiny_cnn(), create_head("linear")
    data = bars_dataset(8)
    model, _ = _finetune(freeze_embeddings=True).prepare(enc, head, 2, data.texts)
    stem_bn = enc.module["stem"][1]
    block_bn = enc.module["blocks"][0][1]
    before_stem, before_block = stem_bn.running_mean.clone(), block_bn.running_mean.clone()
    batch = enc.collate(data.texts)
    batch["labels"] = torch.tensor([0, 1] * 4)
    model.train()
    model(**batch)
    assert torch.equal(stem_bn.running_mean, before_stem)  # frozen: statistics kept
    assert not torch.equal(block_bn.running_mean, before_block)  # trained: statistics updated


def test_gradual_unfreezing_stages_over_efficientnet_groups():
    from textransfer.training.freezing import FreezePlan, FreezeSpec

    groups = create_encoder("efficientnet-lite0", image_size=32).layer_groups()
    plan = FreezePlan(groups, FreezeSpec(freeze_bottom=3, gradual_unfreezing=True))
    assert plan.active_groups(1) == ["head"]
    assert plan.active_groups(2) == ["stage.6", "head"]
    assert plan.active_groups(None)[0] == "stem" and "stage.2" not in plan.active_groups(None)
    with pytest.raises(ValueError, match="only 7 layers"):
        FreezePlan(groups, FreezeSpec(freeze_bottom=8))


def test_tiny_random_cnn_overfits_a_few_images():
    data = bars_dataset(16)
    clf = _finetune(epochs=15).fit(_tiny_cnn(), create_head("linear"), data)
    assert clf.predict(data.texts) == data.labels


def test_finetuned_cnn_save_load_predicts_the_same(tmp_path):
    data = bars_dataset(16)
    clf = _finetune(epochs=2).fit(_tiny_cnn(), create_head("linear"), data)
    clf.save(tmp_path / "model")
    files = {p.name for p in (tmp_path / "model").rglob("*") if p.is_file()}
    assert "weights.safetensors" in files
    assert not any(f.endswith((".pkl", ".pickle", ".pt", ".pth", ".bin")) for f in files)
    loaded = load(tmp_path / "model")
    np.testing.assert_allclose(
        loaded.predict_proba(data.texts), clf.predict_proba(data.texts), atol=1e-6
    )
    assert loaded.encoder.fingerprint() == clf.encoder.fingerprint()
    assert loaded.encoder.fingerprint() != _tiny_cnn().fingerprint()  # trained weights differ


def test_frozen_efficientnet_predicts_paths_pil_and_arrays(tmp_path):
    from PIL import Image

    data = bars_dataset(12)
    clf = create_strategy("frozen").fit(
        create_encoder("efficientnet-lite0", image_size=32), create_head("logreg"), data
    )
    clf.save(tmp_path / "model")
    enc_files = {p.name for p in (tmp_path / "model" / "encoder").iterdir()}
    assert enc_files == {"encoder.json"}  # unmodified: a reference to the packaged weights only
    path = tmp_path / "img.png"
    Image.fromarray(data.texts[0]).save(path)
    loaded = load(tmp_path / "model")
    as_array, as_pil, as_path = loaded.predict_proba(
        [data.texts[0], Image.fromarray(data.texts[0]), str(path)]
    )
    np.testing.assert_allclose(as_pil, as_array, atol=1e-6)
    np.testing.assert_allclose(as_path, as_array, atol=1e-6)


def test_cli_predict_image_files(tmp_path, capsys):
    from PIL import Image

    from textransfer.cli import main

    data = bars_dataset(16)
    clf = create_strategy("frozen").fit(_tiny_cnn(), create_head("logreg"), data)
    clf.save(tmp_path / "model")
    paths = []
    for i in range(2):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(data.texts[i]).convert("RGB").save(paths[-1])
    assert main(["predict", str(tmp_path / "model"), *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[1] for line in lines] == paths
    assert [line.split("\t")[0] for line in lines] == clf.predict(paths)
    assert main(["predict", str(tmp_path / "model"), "a text, not a file"]) == 2
    assert "modality 'image'" in capsys.readouterr().err


def test_text_model_given_images_names_the_modality(toy_movies):
    clf = create_strategy("frozen").fit(create_encoder("tfidf"), create_head("logreg"), toy_movies)
    with pytest.raises(TypeError, match="text encoder .modality 'text'.*image encoder"):
        clf.predict([np.zeros((8, 8), np.uint8)])


def test_bad_image_arrays_have_clear_errors():
    enc = _tiny_cnn()
    with pytest.raises(ValueError, match="not .H, W. or .H, W, C."):
        enc.encode([np.zeros((2, 3, 4, 5), np.uint8)])
    with pytest.raises(ValueError, match="reshape flattened"):
        enc.encode([np.zeros((28, 28, 7), np.uint8)])
    with pytest.raises(ValueError, match="NaN"):
        enc.encode([np.full((8, 8), np.nan, np.float32)])
    with pytest.raises(ValueError, match="image_size"):
        create_encoder("cnn", image_size=4)

