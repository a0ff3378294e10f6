"""Bad image input gives errors that name the file or folder and the fix: unreadable, missing or
folder paths at predict time (Python and CLI), image files given to a text model, unreadable
.npz files, a class folder whose images are all unreadable, and timm / torchvision by name
without the package or, offline, without its weights."""

from __future__ import annotations

import types

import numpy as np
import pytest

from tests.fixtures.images import bars_dataset
from textransfer.data import load
from textransfer.encoders import create_encoder
from textransfer.heads.base import create_head
from textransfer.strategies.base import create_strategy


@pytest.fixture(scope="module")
def cnn_model(tmp_path_factory):
    data = bars_dataset(8)
    enc = create_encoder("cnn", channels=[4, 8], dim=8, image_size=16)
    clf = create_strategy("frozen").fit(enc, create_head("logreg"), data)
    path = tmp_path_factory.mktemp("m") / "model"
    clf.save(path)
    return path


def test_predict_paths_name_the_bad_file(cnn_model, tmp_path):
    from textransfer.classifier import load as load_model

    clf = load_model(cnn_model)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(ValueError, match=r"input 1: cannot read image .*cut.png.*re-save"):
        clf.predict([np.zeros((8, 8), np.uint8), str(truncated)])
    with pytest.raises(FileNotFoundError, match=r"input 0: image file .*nope.png not found"):
        clf.predict([str(tmp_path / "nope.png")])
    with pytest.raises(FileNotFoundError, match="not found"):
        clf.predict([tmp_path / "nope"])  # a Path is always meant as a file
    with pytest.raises(ValueError, match=r"is a folder.*images:"):
        clf.predict([str(tmp_path)])
    with pytest.raises(TypeError, match="modality 'image'.*text encoder"):
        clf.predict(["a sentence about a film"])


def test_cli_predict_unreadable_image_is_a_one_line_error(cnn_model, tmp_path, capsys):
    from textransfer.cli import main

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["predict", str(cnn_model), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: input 0: cannot read image") and "bad.jpg" in err
    assert "Traceback" not in err


def test_text_model_given_an_image_file_names_the_modality(toy_movies, tmp_path):
    from PIL import Image

    clf = create_strategy("frozen").fit(create_encoder("tfidf"), create_head("logreg"), toy_movies)
    path = tmp_path / "digit.png"
    Image.new("L", (8, 8)).save(path)
    with pytest.raises(TypeError, match=r"image file .*digit.png.*modality 'text'"):
        clf.predict([str(path)])
    assert len(clf.predict(["a film called digit.png"])) == 1  # a text that merely ends so


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.write_bytes(b"garbage, not a zip archive"),
        lambda p: np.savez(p, images=np.array([np.zeros((2, 2)), np.zeros((3, 3))], dtype=object)),
    ],
    ids=["corrupt", "object-array"],
)
def test_unreadable_npz_names_the_file(tmp_path, write):
    path = tmp_path / "set.npz"
    write(path)
    with pytest.raises(ValueError, match=r"set.npz: cannot read it as a NumPy .npz file.*np.savez"):
        load(str(path))


def test_class_folder_of_unreadable_files_is_an_error(image_folder):
    for good in (image_folder / "circle").iterdir():
        good.write_bytes(good.read_bytes()[:30])
    with pytest.raises(ValueError, match=r"no readable image in class folder\(s\) \['circle'\]"):
        load(f"images:{image_folder}")


@pytest.mark.parametrize("package", ["timm", "torchvision"])
def test_hub_encoder_without_its_package_says_what_to_install(package, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, package, None)  # import fails, as uninstalled
    with pytest.raises(ImportError, match=r"textransfer\[vision-hub\]"):
        create_encoder(package, model="resnet18").encode([np.zeros((8, 8), np.uint8)])


@pytest.mark.parametrize("package", ["timm", "torchvision"])
def test_hub_encoder_offline_without_weights_says_what_to_do(package, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("could not reach the download server")

    fake = types.SimpleNamespace(
        create_model=offline, models=types.SimpleNamespace(get_model=offline)
    )
    monkeypatch.setitem(__import__("sys").modules, package, fake)
    with pytest.raises(
        FileNotFoundError, match=r"pretrained weights for 'resnet18'.*efficientnet-lite0"
    ):
        create_encoder(package, model="resnet18").encode([np.zeros((8, 8), np.uint8)])
