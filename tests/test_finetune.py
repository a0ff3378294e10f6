"""The finetune strategy: learns, saves/loads exactly, rejects what it cannot train."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import textransfer  # noqa: E402
from textransfer.config import ConfigError  # noqa: E402
from textransfer.experiments.train.config import load_config  # noqa: E402
from textransfer.strategies import CapabilityError  # noqa: E402
from textransfer.training import TrainingArgs  # noqa: E402


@pytest.fixture(scope="session")
def word_bert_dir(tiny_bert_dir):
    """The tiny BERT, checked to tokenise the toy words (an all-[UNK] tokenizer learns nothing)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    assert tok.unk_token_id not in tok("good film")["input_ids"]
    return tiny_bert_dir


@pytest.fixture(scope="session")
def word_sentence_dir(word_bert_dir, tmp_path_factory):
    """sentence-transformers folder around :func:`word_bert_dir` (mean pooling)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    d = tmp_path_factory.mktemp("word_sentence")
    word = Transformer(str(word_bert_dir), max_seq_length=32)
    dim = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pool = Pooling(dim(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pool], device="cpu").save(str(d))
    return d


def trainable_text_encoders() -> list[str]:
    """The registered text encoders whose class has the TrainableEncoder methods: from the
    registry, so a new trainable text encoder is tested here (or fails make_ft_encoder loudly)."""
    from textransfer.encoders.base import ENCODERS

    names = []
    for name in textransfer.list_encoders():
        cls = ENCODERS.get(name)
        if isinstance(cls, type) and getattr(cls, "modality", "text") == "text" and all(
            callable(getattr(cls, m, None)) for m in ("collate", "forward", "layer_groups")
        ):
            names.append(name)
    return names


TRAINABLE_TEXT = trainable_text_encoders()


def make_ft_encoder(name, bert_dir, sentence_dir=None):
    if name == "sentence":
        return textransfer.create_encoder("sentence", model=str(sentence_dir))
    if name == "transformer":
        return textransfer.create_encoder("transformer", model=str(bert_dir), max_length=32)
    raise AssertionError(f"trainable encoder {name!r} has no tiny test instance here: add one to make_ft_encoder")


def test_the_trainable_text_encoders_come_from_the_registry() -> None:
    assert {"transformer", "sentence"} <= set(TRAINABLE_TEXT)
    assert not {"tfidf", "static"} & set(TRAINABLE_TEXT)


def _strategy(epochs=12, **kw):
    s = textransfer.create_strategy("finetune", val_fraction=0.0, **kw)
    s.training = TrainingArgs(epochs=epochs, lr=2e-3, batch_size=8, patience=None, warmup_ratio=0.1)
    return s


def _accuracy(clf, data) -> float:
    return float(np.mean(np.array(clf.predict(data.texts)) == np.array(data.labels)))


@pytest.mark.parametrize("encoder", TRAINABLE_TEXT)
def test_tiny_bert_overfits_the_toy_corpus(word_bert_dir, word_sentence_dir, toy_movies, encoder):
    enc = make_ft_encoder(encoder, word_bert_dir, word_sentence_dir)
    before = [p.detach().clone() for p in enc.module.parameters()]
    clf = _strategy().fit(enc, textransfer.create_head("linear"), toy_movies)
    assert _accuracy(clf, toy_movies) == 1.0
    assert enc.weights_modified
    moved = sum(not torch.equal(a, b) for a, b in zip(before, enc.module.parameters(), strict=True))
    assert moved > len(before) // 2  # the encoder itself was trained, not just the head


@pytest.mark.parametrize("encoder", TRAINABLE_TEXT)
def test_predictions_match_the_trained_module_and_survive_save_load(
    word_bert_dir, word_sentence_dir, toy_movies, toy_products, tmp_path, encoder
):
    strategy = _strategy(epochs=3, freeze_bottom=1)
    enc, head = make_ft_encoder(encoder, word_bert_dir, word_sentence_dir), textransfer.create_head("mlp", hidden=16)
    clf = strategy.fit(enc, head, toy_movies)
    texts = toy_products.texts + ["", "good"]  # other lengths and an empty text
    proba = clf.predict_proba(texts, batch_size=5)

    # Classifier.predict goes through encode() (pooled features) + head: same as the module.
    from textransfer.training.model import EncoderWithHead

    module = EncoderWithHead(enc, head.module).eval()
    with torch.no_grad():
        logits = module(**enc.collate(texts))["logits"]
    np.testing.assert_allclose(proba, torch.softmax(logits, -1).numpy(), atol=1e-5)

    clf.save(tmp_path / "model")
    assert list((tmp_path / "model" / "encoder").rglob("model.safetensors"))
    loaded = textransfer.load(tmp_path / "model")
    assert loaded.encoder.weights_modified and loaded.strategy["name"] == "finetune"
    assert loaded.strategy["kwargs"]["freeze_bottom"] == 1
    np.testing.assert_allclose(loaded.predict_proba(texts, batch_size=7), proba, atol=1e-6)
    assert loaded.predict(texts) == clf.predict(texts)


def test_untrainable_encoder_is_rejected_naming_the_trainable_ones(make_encoder, toy_movies):
    with pytest.raises(CapabilityError, match=r"'tfidf' cannot.*Trainable encoders: .*sentence, .*transformer"):
        _strategy().fit(make_encoder("tfidf"), textransfer.create_head("linear"), toy_movies)


def test_array_head_is_rejected(make_encoder, toy_movies):
    with pytest.raises(CapabilityError, match="'logreg' is not a torch module.*linear or mlp"):
        _strategy().fit(make_encoder("transformer"), textransfer.create_head("logreg"), toy_movies)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer_lr_decay": 0.0}, "layer_lr_decay must be in"),
        ({"head_lr": -1.0}, "head_lr must be > 0"),
        ({"val_fraction": 1.0}, "val_fraction must be in"),
        ({"freeze_bottom": -2}, "freeze_bottom must be an integer"),
        ({"max_train_rows": 1}, "max_train_rows must be >= 2"),
    ],
)
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        textransfer.create_strategy("finetune", **kwargs)


def test_max_train_rows_trains_on_a_stratified_seeded_subsample(word_bert_dir, toy_movies, monkeypatch):
    from textransfer.data import splits

    seen = []
    real = splits.stratified_subsample
    monkeypatch.setattr(splits, "stratified_subsample", lambda d, n, seed: seen.append((n, seed)) or real(d, n, seed=seed))
    s = _strategy(epochs=1, max_train_rows=20)
    s.fit(make_ft_encoder("transformer", word_bert_dir), textransfer.create_head("linear"), toy_movies)
    assert seen == [(20, s.training.seed)] and s.last_fit_info["train_rows"] == 20
    assert s.config()["max_train_rows"] == 20
    everything = _strategy(epochs=1, max_train_rows=10 * len(toy_movies))
    everything.fit(make_ft_encoder("transformer", word_bert_dir), textransfer.create_head("linear"), toy_movies)
    assert everything.last_fit_info["train_rows"] == len(toy_movies)


def test_config_keys_are_checked_early():
    base = {"name": "x", "data": {"train": "movies"}, "encoder": {"name": "transformer"}}
    ok = load_config({**base, "strategy": {"name": "finetune", "head": "linear", "freeze_bottom": 3,
                                           "gradual_unfreezing": True, "layer_lr_decay": 0.9, "head_lr": 1e-3},
                      "training": {"lr": 5e-5, "mixed_precision": "bf16", "keep_checkpoints": 2}})
    assert ok.strategy.params()["freeze_bottom"] == 3
    with pytest.raises(ConfigError, match="unknown key 'freeze_botom'.*Did you mean 'freeze_bottom'"):
        load_config({**base, "strategy": {"name": "finetune", "freeze_botom": 3}})


def test_run_and_resume_through_the_cli(word_bert_dir, toy_movies, toy_products, tmp_path):
    import yaml

    from textransfer.cli import main

    for data, name in ((toy_movies, "movies.csv"), (toy_products, "products.csv")):
        rows = ["text,label", *(f'"{t}",{y}' for t, y in zip(data.texts, data.labels, strict=True))]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    config = {
        "name": "ft", "output_dir": str(tmp_path / "runs"), "cache_dir": None,
        "data": {"train": str(tmp_path / "movies.csv"), "test_size": 0.25,
                 "eval": {"products": str(tmp_path / "products.csv")}},
        "encoder": {"name": "transformer", "model": str(word_bert_dir), "max_length": 16},
        "strategy": {"name": "finetune", "head": "linear", "val_fraction": 0.0},
        # Kept after the run (deleted by default), so that the finished run can be resumed below.
        "training": {"epochs": 2, "lr": 2e-3, "batch_size": 8, "keep_checkpoints_after_run": True},
    }
    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["-q", "run", str(path)]) == 0
    run_dir = tmp_path / "runs" / "ft"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch-2"]
    first = textransfer.load(run_dir / "model").predict_proba(toy_products.texts)
    # Resuming a finished run restores its final state without training again.
    assert main(["-q", "run", str(path), "--resume"]) == 0
    np.testing.assert_allclose(textransfer.load(run_dir / "model").predict_proba(toy_products.texts), first, atol=1e-6)


def test_pretokenised_batches_equal_per_batch_tokenisation(word_bert_dir, toy_movies):
    """The training loader tokenises once and pads cached ids: the same tensors as ``collate``,
    grouped by exact token counts."""
    from textransfer.training.batching import TokenCollator, input_loader

    enc = make_ft_encoder("transformer", word_bert_dir)
    texts = list(toy_movies.texts) + ["a much longer sentence " * 20]  # truncated at max_length
    labels = np.arange(len(texts)) % 2
    loader = input_loader(enc, texts, labels, batch_size=8, shuffle=True, seed=3)
    assert isinstance(loader.collate_fn, TokenCollator)
    tokens = [len(x) for x in enc.tokenize_all(texts)["input_ids"]]
    assert list(loader.batch_sampler.lengths) == tokens and max(tokens) == enc.max_length
    seen = []
    for indices, batch in zip(loader.batch_sampler, loader, strict=True):
        expected = enc.collate([texts[i] for i in indices])
        assert set(batch) == {*expected, "labels"}
        for key, value in expected.items():
            assert torch.equal(batch[key], value), key
        assert batch["labels"].tolist() == labels[indices].tolist()
        seen += indices
    assert sorted(seen) == list(range(len(texts)))


def test_length_grouping_is_seeded_per_epoch_and_pads_little():
    from textransfer.training.batching import LengthGroupedBatchSampler

    lengths = np.random.default_rng(0).integers(1, 60, size=1200)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=32, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1200))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 1.05 * lengths.sum()  # 1200 rows < 50 batches: sorted as a whole
    sampler.set_epoch(1)
    assert list(sampler) != batches  # a new order each epoch, the same one for the same epoch
    sampler.set_epoch(0)
    assert list(sampler) == batches
    with pytest.raises(ValueError, match="mega_batch_mult"):
        LengthGroupedBatchSampler(lengths, batch_size=32, mega_batch_mult=0)


def test_trainable_members_are_found_without_loading_weights(tiny_bert_dir):
    """The capability check looks members up on the class (a lazy ``module`` property is not
    evaluated) and on the instance (an encoder that sets ``module`` in ``__init__`` passes)."""
    from textransfer.strategies.finetune import missing_trainable_members

    enc = textransfer.create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
    assert missing_trainable_members(enc) == []
    assert enc._module is None  # nothing loaded

    class OwnEncoder:
        name = "own"

        def __init__(self) -> None:
            self.module = object()

        def collate(self, items): ...

        def forward(self, batch): ...

    assert missing_trainable_members(OwnEncoder()) == ["layer_groups"]
    assert missing_trainable_members(textransfer.create_encoder("tfidf")) == ["module", "collate", "forward", "layer_groups"]
