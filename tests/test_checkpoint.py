"""Epoch checkpoints: resuming an interrupted run reproduces the uninterrupted one exactly;
partial, corrupt or mismatched checkpoints are reported clearly."""

from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import textransfer  # noqa: E402
import textransfer.training.loop as loop  # noqa: E402
from tests import test_finetune as _ft  # noqa: E402

make_ft_encoder = _ft.make_ft_encoder
word_bert_dir = _ft.word_bert_dir  # the session fixture, shared with test_finetune.py
from textransfer.strategies.base import FitContext  # noqa: E402
from textransfer.training import TrainingArgs  # noqa: E402
from textransfer.training.checkpoint import CheckpointError  # noqa: E402


class Interrupted(Exception):
    pass


def _fit(bert_dir, data, ckpt_dir, resume=False, **training):
    # Gradual unfreezing + a validation split: the resumed run must restore the freezing stage,
    # the optimizer/scheduler, the RNG (dropout) and the early-stopping state.
    strategy = textransfer.create_strategy("finetune", gradual_unfreezing=True, layer_lr_decay=0.8, val_fraction=0.25)
    args = {"epochs": 4, "lr": 3e-3, "batch_size": 8, "warmup_ratio": 0.2, "patience": None, "seed": 7, **training}
    context = FitContext(training=TrainingArgs(**args), checkpoint_dir=ckpt_dir, resume=resume)
    enc, head = make_ft_encoder("transformer", bert_dir), textransfer.create_head("linear")
    result = strategy.fit_with_context(enc, head, data, context=context)
    return result.classifier, result.info


def _interrupt_after(epoch: int):
    def stop(done: int, row: dict) -> None:
        if done == epoch:
            raise Interrupted(f"simulated crash after epoch {done}")

    return stop


def _interrupted_run(monkeypatch, bert_dir, data, ckpt_dir, after=1):
    with monkeypatch.context() as m:
        m.setattr(loop, "train", functools.partial(loop.train, on_epoch_end=_interrupt_after(after)))
        with pytest.raises(Interrupted):
            _fit(bert_dir, data, ckpt_dir)


def _weights(clf):
    return {**clf.encoder.module.state_dict(), **{f"head.{k}": v for k, v in clf.head.module.state_dict().items()}}


def test_resume_after_interruption_equals_uninterrupted_run(monkeypatch, word_bert_dir, toy_movies, tmp_path):
    full, full_info = _fit(word_bert_dir, toy_movies, tmp_path / "a")

    _interrupted_run(monkeypatch, word_bert_dir, toy_movies, tmp_path / "b")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["epoch-1"]
    resumed, info = _fit(word_bert_dir, toy_movies, tmp_path / "b", resume=True)

    assert info["resumed_from"] == 1
    assert info["history"] == full_info["history"] and info["best_epoch"] == full_info["best_epoch"]
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    assert resumed.predict(toy_movies.texts) == full.predict(toy_movies.texts)


def test_corrupt_partial_and_mismatched_checkpoints_are_reported(monkeypatch, word_bert_dir, toy_movies, tmp_path):
    root = tmp_path / "ck"
    _interrupted_run(monkeypatch, word_bert_dir, toy_movies, root, after=2)
    assert [p.name for p in root.iterdir()] == ["epoch-2"]  # keep_checkpoints=1 pruned epoch-1

    with pytest.raises(CheckpointError, match="other settings.*differs in: lr"):
        _fit(word_bert_dir, toy_movies, root, resume=True, lr=1e-3)

    weights = root / "epoch-2" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"epoch-2 is corrupt: model.safetensors fails its sha256 check; delete"):
        _fit(word_bert_dir, toy_movies, root, resume=True)

    weights.write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match="model.safetensors has 100 bytes, expected"):
        _fit(word_bert_dir, toy_movies, root, resume=True)

    (root / "epoch-2" / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="is partial: manifest.json is missing"):
        _fit(word_bert_dir, toy_movies, root, resume=True)


def test_a_crash_mid_save_leaves_the_previous_checkpoint(monkeypatch, word_bert_dir, toy_movies, tmp_path):
    root = tmp_path / "ck"
    _interrupted_run(monkeypatch, word_bert_dir, toy_movies, root, after=1)
    # What a kill -9 while writing epoch 2 leaves behind: a .partial folder without a manifest.
    partial = root / ".epoch-2.partial"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    _, info = _fit(word_bert_dir, toy_movies, root, resume=True)
    assert info["resumed_from"] == 1 and len(info["history"]) == 4
    assert sorted(p.name for p in root.iterdir()) == ["epoch-4"]


def test_fresh_run_without_resume_discards_old_checkpoints(monkeypatch, word_bert_dir, toy_movies, tmp_path):
    root = tmp_path / "ck"
    _interrupted_run(monkeypatch, word_bert_dir, toy_movies, root, after=1)
    _, info = _fit(word_bert_dir, toy_movies, root, epochs=2)
    assert info["resumed_from"] is None and len(info["history"]) == 2
