"""Runs never lose a user's data nor answer with garbage: validation before any write, one run
per folder (a lock), outputs renamed into place once complete, interrupted checkpoints kept,
resume refused on other data or settings, cache entries verified, data warnings reported, and
config values (batch sizes, training settings, dotted overrides) checked when the config loads.
Issue 12, items 5, 6, 12, 13, 14, 17, 19, 21 and 22."""

from __future__ import annotations

import csv
import functools
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import textransfer
from tests.conftest import make_toy
from tests.fixtures.data import write_labeled_csv
from textransfer.cli import main
from textransfer.config import ConfigError, RunDirectory, RunDirectoryLocked
from textransfer.encoders.cache import FeatureCache, encode_cached
from textransfer.experiments._kernel import build_components, training_settings
from textransfer.experiments.crossdomain.config import load_crossdomain_config
from textransfer.experiments.crossdomain.run import run_crossdomain
from textransfer.experiments.curve.config import load_curve_config
from textransfer.experiments.curve.run import run_curve
from textransfer.experiments.layers.config import load_layers_config
from textransfer.experiments.layers.run import run_layers
from textransfer.experiments.train.config import load_config
from textransfer.experiments.train.run import run
from textransfer.training.checkpoint import CheckpointError

OUTPUTS = ("config.resolved.yaml", "metrics.json", "report.md")


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in OUTPUTS}


@pytest.fixture
def frozen_cfg(tmp_path, toy_movies, toy_products) -> dict[str, Any]:
    """A frozen tfidf + logreg run on two tiny CSV files."""
    return {
        "name": "safe",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
        "data": {
            "train": write_labeled_csv(tmp_path / "movies.csv", toy_movies),
            "test_size": 0.25,
            "eval": {"products": write_labeled_csv(tmp_path / "products.csv", toy_products)},
        },
        "encoder": "tfidf",
        "strategy": {"name": "frozen", "head": "logreg"},
    }


# -- item 5: validation first, one run per folder, complete outputs only ---------------------------


def test_a_run_failing_on_its_data_leaves_the_previous_run_as_it_was(frozen_cfg, tmp_path):
    first = run(frozen_cfg)
    before = _snapshot(first.run_dir)
    with pytest.raises((FileNotFoundError, ValueError), match="missing.csv"):
        run(frozen_cfg, [f"data.train={tmp_path / 'missing.csv'}"])
    assert _snapshot(first.run_dir) == before  # the old code rewrote config.resolved.yaml first
    assert not (first.run_dir / ".lock").exists()


def test_outputs_are_renamed_into_place_only_when_all_are_written(frozen_cfg, monkeypatch):
    first = run(frozen_cfg)
    before = _snapshot(first.run_dir)
    import textransfer.experiments.train.run as runner

    def crash(*args, **kwargs):
        raise RuntimeError("disk full while writing report.md")

    monkeypatch.setattr(runner, "write_report", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        run(frozen_cfg)  # a second run (cache hits: another metrics.json) that dies at the end
    assert _snapshot(first.run_dir) == before
    assert sorted(p.name for p in first.run_dir.iterdir()) == sorted([*OUTPUTS, "model", "plots"])


def _kinds(tmp_path: Path, tiny_bert_dir: Path) -> dict[str, tuple[Any, Any, dict[str, Any], str]]:
    """Per run kind: (config loader, runner, tiny config, the key of a data source)."""
    movies = write_labeled_csv(tmp_path / "m.csv", make_toy("movies", ["film", "plot"], n=32, seed=1))
    products = write_labeled_csv(tmp_path / "p.csv", make_toy("products", ["phone", "battery"], n=40, seed=2))
    common = {"output_dir": str(tmp_path / "runs"), "seeds": [0], "test_size": 0.25}
    frozen = {"name": "frozen", "head": "logreg"}
    return {
        "run": (
            load_config,
            run,
            {"name": "k_run", "output_dir": common["output_dir"], "cache_dir": None,
             "data": {"train": movies, "test_size": 0.25}, "encoder": "tfidf", "strategy": frozen},
            "data.train",
        ),
        "crossdomain": (
            load_crossdomain_config,
            run_crossdomain,
            {"name": "k_xd", **common, "cache_dir": None, "domains": {"movies": movies, "products": products},
             "sources": ["movies"], "targets": ["products"], "encoders": {"tfidf": "tfidf"},
             "strategies": {"frozen": frozen}, "evaluation": {"n_boot": 0, "plots": False}},
            "domains.products",
        ),
        "curve": (
            load_curve_config,
            run_curve,
            {"name": "k_curve", **common, "cache_dir": None, "target": products, "budgets": [8, "all"],
             "baseline": "tfidf", "setups": {"tfidf": {"encoder": "tfidf", "strategy": frozen, "transfer": False}}},
            "target",
        ),
        "layers": (
            load_layers_config,
            run_layers,
            {"name": "k_layers", **common, "target": products, "budget": 16,
             "encoder": {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16},
             "strategy": {"name": "finetune", "head": "linear", "val_fraction": 0.0},
             "training": {"epochs": 1, "batch_size": 8, "patience": None}, "ks": [0]},
            "target",
        ),
    }


@pytest.mark.parametrize("kind", ["run", "crossdomain", "curve", "layers"])
def test_every_run_kind_checks_its_data_before_creating_the_folder(kind, tmp_path, tiny_bert_dir):
    _, runner_fn, cfg, data_key = _kinds(tmp_path, tiny_bert_dir)[kind]
    with pytest.raises((FileNotFoundError, ValueError), match="nope.csv"):
        runner_fn(cfg, [f"{data_key}={tmp_path / 'nope.csv'}"])
    assert not (tmp_path / "runs").exists()  # the old code created it and wrote the config first


@pytest.mark.parametrize("kind", ["run", "crossdomain", "curve", "layers"])
def test_a_second_run_on_a_busy_folder_names_the_process_holding_it(kind, tmp_path, tiny_bert_dir):
    loader, runner_fn, cfg, _ = _kinds(tmp_path, tiny_bert_dir)[kind]
    with RunDirectory(loader(cfg)) as held:
        with pytest.raises(RunDirectoryLocked, match=rf"{held.path} is in use by process {os.getpid()} on "):
            runner_fn(cfg)
        assert [p.name for p in held.path.iterdir()] == [".lock"]  # the refused run wrote nothing
    assert not held.path.exists()  # released, and the folder it created (empty) removed


def test_a_lock_left_by_a_dead_process_is_taken_over_and_released(frozen_cfg, tmp_path):
    run_dir = tmp_path / "runs" / "safe"
    run_dir.mkdir(parents=True)
    (run_dir / ".lock").write_text(json.dumps({"pid": 4_000_000, "host": "gone", "started": "yesterday"}))
    run(frozen_cfg)
    assert (run_dir / "metrics.json").is_file() and not (run_dir / ".lock").exists()
    run(frozen_cfg)  # and the next run finds it free


def _as_rank_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as rank 1 of a launch, for the question "may I write?" only: a real launch
    (WORLD_SIZE > 1) would also shard the encoding across processes that do not exist here."""
    import textransfer.config
    import textransfer.distributed
    import textransfer.experiments._kernel
    import textransfer.experiments.crossdomain.run
    import textransfer.experiments.train.run

    monkeypatch.setenv("RANK", "1")
    for module in (textransfer.distributed, textransfer.config, textransfer.experiments._kernel,
                   textransfer.experiments.train.run, textransfer.experiments.crossdomain.run):
        monkeypatch.setattr(module, "is_main_process", lambda: False)


def test_only_rank_0_of_a_multi_process_launch_writes(frozen_cfg, tmp_path, monkeypatch):
    _as_rank_1(monkeypatch)
    result = run(frozen_cfg)
    assert result.metrics["safe"]["eval"]["test"]["accuracy"] > 0.9
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kind", ["crossdomain", "curve", "layers"])
def test_no_kind_writes_from_a_process_other_than_rank_0(kind, tmp_path, tiny_bert_dir, monkeypatch):
    _, runner_fn, cfg, _ = _kinds(tmp_path, tiny_bert_dir)[kind]
    movies = cfg["domains"]["movies"] if kind == "crossdomain" else write_labeled_csv(
        tmp_path / "src.csv", make_toy("movies", ["film", "plot"], n=32, seed=1))
    # Each kind with the option that saves models mid-run: models, source models, base networks.
    cfg = {**cfg, **{"crossdomain": {"save_models": True},
                     "curve": {"source": movies, "setups": {**cfg.get("setups", {}), "two": {
                         "encoder": "tfidf", "source": {"strategy": {"name": "frozen", "head": "logreg"}},
                         "strategy": {"name": "frozen", "head": "logreg"}}}},
                     "layers": {"base": "source", "source": movies}}[kind]}
    _as_rank_1(monkeypatch)
    result = runner_fn(cfg)
    assert result.metrics["name"] == cfg["name"]
    assert not (tmp_path / "runs").exists()


# -- items 6 and 14: checkpoints of an interrupted fine-tuning run --------------------------------


class Interrupted(Exception):
    pass


def _ft_config(tmp_path: Path, tiny_bert_dir: Path, toy_movies) -> dict[str, Any]:
    return {
        "name": "ft",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": None,
        "data": {"train": write_labeled_csv(tmp_path / "movies.csv", toy_movies), "test_size": 0.25},
        "encoder": {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16},
        "strategy": {"name": "finetune", "head": "linear", "val_fraction": 0.0},
        # These tests resume finished runs too: keep their checkpoints (a finished run deletes
        # them by default).
        "training": {"epochs": 2, "lr": 2e-3, "batch_size": 8, "patience": None, "keep_checkpoints_after_run": True},
    }


def _interrupted_run(cfg: dict[str, Any], monkeypatch) -> Path:
    """Runs ``cfg`` until its first epoch checkpoint is written, then crashes."""
    import textransfer.training.loop as loop

    def stop(epoch: int, row: dict) -> None:
        raise Interrupted(f"killed after epoch {epoch}")

    with monkeypatch.context() as m:
        m.setattr(loop, "train", functools.partial(loop.train, on_epoch_end=stop))
        with pytest.raises(Interrupted):
            run(cfg)
    ck = Path(cfg["output_dir"]) / cfg["name"] / "checkpoints"
    assert (ck / "epoch-1").is_dir()
    return ck


def test_a_rerun_keeps_interrupted_checkpoints_until_told_resume_or_fresh(
    tmp_path, tiny_bert_dir, toy_movies, monkeypatch, capsys
):
    cfg = _ft_config(tmp_path, tiny_bert_dir, toy_movies)
    ck = _interrupted_run(cfg, monkeypatch)
    with pytest.raises(CheckpointError, match=r"interrupted run \(epoch-1: epoch 1 of 2 done\).*--resume.*--fresh"):
        run(cfg)
    assert (ck / "epoch-1").is_dir()  # the old code deleted it with one INFO line

    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["-q", "run", str(path)]) == 2
    assert "--resume" in capsys.readouterr().err and (ck / "epoch-1").is_dir()
    assert main(["-q", "run", str(path), "--resume", "--fresh"]) == 2
    assert "exclude each other" in capsys.readouterr().err

    assert main(["-q", "run", str(path), "--fresh"]) == 0
    assert sorted(p.name for p in ck.iterdir()) == ["epoch-2"]
    assert main(["-q", "run", str(path)]) == 0  # a finished run's checkpoints: no question asked


def _flipped(path: Path, data) -> str:
    flip = {"positive": "negative", "negative": "positive"}
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([t, flip[y]] for t, y in zip(data.texts, data.labels, strict=True))
    return str(path)


def test_resume_refuses_checkpoints_of_other_data_or_settings(tmp_path, tiny_bert_dir, toy_movies, monkeypatch):
    cfg = _ft_config(tmp_path, tiny_bert_dir, toy_movies)
    ck = _interrupted_run(cfg, monkeypatch)
    changes = [
        (f"data.train={_flipped(tmp_path / 'flipped.csv', toy_movies)}", r"other data \(train\)"),
        ("encoder.max_length=12", r"other encoder settings \(max_length\)"),
        ("strategy.head=mlp", r"other strategy settings \(head\)"),
        ("training.lr=0.001", r"other training settings \(lr\)"),
        ("seed=3", r"other data \(train\) and training settings \(seed\)"),
    ]
    for override, message in changes:
        with pytest.raises(CheckpointError, match=message + r".*--fresh"):
            run(cfg, [override], resume=True)
        assert sorted(p.name for p in ck.iterdir()) == ["epoch-1"]
    result = run(cfg, resume=True)  # the same config resumes
    assert result.metrics["ft"]["eval"]["test"]["n"] == 12
    assert sorted(p.name for p in ck.iterdir()) == ["epoch-2"]

    state = ck / "epoch-2" / "trainer_state.json"  # as an older textransfer wrote it
    state.write_text(json.dumps({k: v for k, v in json.loads(state.read_text()).items() if k != "fingerprints"}))
    with pytest.raises(CheckpointError, match="does not record the data and settings.*--fresh"):
        run(cfg, resume=True)


# -- item 12 (config part) and 21: batch sizes and training settings checked at load --------------

_RUN = {"name": "t", "data": {"train": "movies"}, "encoder": "tfidf"}
_XD = {"name": "x", "domains": {"movies": "movies", "products": "products"}, "sources": ["movies"],
       "targets": ["products"], "encoders": {"tfidf": "tfidf"}, "strategies": {"frozen": "frozen"}}
_CURVE = {"name": "c", "target": "products", "baseline": "tfidf", "setups": {"tfidf": {"encoder": "tfidf"}}}
_LAYERS = {"name": "l", "target": "products", "encoder": {"name": "transformer", "model": "tiny"}}
_LOADERS = {"run": (load_config, _RUN), "crossdomain": (load_crossdomain_config, _XD),
            "curve": (load_curve_config, _CURVE), "layers": (load_layers_config, _LAYERS)}


@pytest.mark.parametrize("kind", sorted(_LOADERS))
@pytest.mark.parametrize("value", ["0", "-1"])
def test_batch_size_below_1_is_a_config_error(kind, value):
    loader, base = _LOADERS[kind]
    with pytest.raises(ConfigError, match="batch_size: Input should be greater than 0"):
        loader(base, [f"batch_size={value}"])


@pytest.mark.parametrize(
    ("kind", "override", "message"),
    [
        ("run", "training.lr=abc", r"training\.lr: input should be a valid number.*\(got 'abc'\)"),
        ("run", "training.epochs=0", r"training\.epochs must be >= 1, got 0"),
        ("run", "training.epochs=2.5", r"training\.epochs: input should be a valid integer"),
        ("run", "training.batch_size=-1", r"training\.batch_size must be >= 1"),
        ("run", "training.patience=0", r"training\.patience must be >= 1"),
        ("run", "training.mixed_precision=fp8", r"training\.mixed_precision: input should be 'no', 'bf16', 'fp16' or 'auto'"),
        ("run", "training.lr=.nan", r"training\.lr must be > 0, got nan"),
        ("crossdomain", "strategies.frozen.training.lr=abc", r"setup tfidf\+frozen\.training\.lr: input should be a valid number"),
        ("curve", "setups.tfidf.training.epochs=x", r"setups\.tfidf\.training\.epochs: input should be a valid integer"),
        ("layers", "training.warmup_ratio=2", r"training\.warmup_ratio must be in \[0, 1\)"),
    ],
)
def test_training_values_are_checked_when_the_config_loads(kind, override, message):
    loader, base = _LOADERS[kind]
    with pytest.raises(ConfigError, match=message):
        loader(base, [override])


def test_training_values_of_a_setup_are_named_with_the_setup_and_converted():
    with pytest.raises(ConfigError, match=r"setups\[b\]\.training\.lr: input should be a valid number"):
        load_config({**_RUN, "setups": [{"name": "a"}, {"name": "b", "training": {"lr": "abc"}}]})
    cfg = load_config({**_RUN, "strategy": {"name": "frozen", "head": "mlp"}, "training": {"epochs": "3", "lr": "1e-3"}})
    build_components(cfg.resolved_setups()[0])  # builds
    training = training_settings(cfg.resolved_setups()[0], 0)  # what fit_setup gives the strategy
    assert training.epochs == 3 and training.lr == 1e-3


# -- item 22: dotted overrides into one-word data sources --------------------------------------


@pytest.mark.parametrize(
    ("kind", "override", "get"),
    [
        ("run", "data.train.limit=100", lambda c: c.data.train),
        ("crossdomain", "domains.products.limit=100", lambda c: c.domains["products"]),
        ("curve", "target.limit=100", lambda c: c.target),
        ("layers", "target.limit=100", lambda c: c.target),
    ],
)
def test_a_dotted_override_extends_a_one_word_data_source(kind, override, get):
    loader, base = _LOADERS[kind]
    source = get(loader(base, [override]))
    assert source.limit == 100 and source.source in ("movies", "products")


def test_a_dotted_override_still_extends_a_one_word_component():
    cfg = load_config({**_RUN, "data": {"train": "movies", "eval": {"p": "products"}}},
                      ["encoder.max_features=5", "data.eval.p.limit=7"])
    assert cfg.encoder.name == "tfidf" and cfg.encoder.params() == {"max_features": 5}
    assert cfg.data.eval["p"].source == "products" and cfg.data.eval["p"].limit == 7


# -- item 13: the feature cache verifies what it reads ------------------------------------------


def _truncate(path: Path, cache: FeatureCache, key: str, feats: np.ndarray) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_byte(path: Path, cache: FeatureCache, key: str, feats: np.ndarray) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x40  # the top byte of the last float: 0.0 becomes 2.0
    path.write_bytes(bytes(raw))


def _wrong_dim(path: Path, cache: FeatureCache, key: str, feats: np.ndarray) -> None:
    cache.put(key, np.zeros((feats.shape[0], feats.shape[1] + 3), np.float32))  # a consistent entry


def _wrong_rows(path: Path, cache: FeatureCache, key: str, feats: np.ndarray) -> None:
    cache.put(key, feats[:-1])


def _no_sidecar(path: Path, cache: FeatureCache, key: str, feats: np.ndarray) -> None:
    Path(str(path).removesuffix(".npy") + ".meta.json").unlink()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncate, "bytes"),
        (_flip_byte, "checksum mismatch"),
        (_wrong_dim, "dimension"),
        (_wrong_rows, "rows, the data has"),
        (_no_sidecar, "no checksum sidecar"),
    ],
)
def test_a_damaged_cache_entry_is_reported_and_recomputed(damage, reason, tmp_path, toy_movies, caplog):
    enc = textransfer.create_encoder("tfidf").fit(toy_movies.texts)
    expected = enc.encode(toy_movies.texts)
    cache = FeatureCache(tmp_path)
    encode_cached(enc, toy_movies, cache)
    key = FeatureCache.key(enc, toy_movies)
    damage(tmp_path / f"{key}.npy", cache, key, expected)
    with caplog.at_level(logging.WARNING, logger="textransfer.cache"):
        feats = encode_cached(enc, toy_movies, cache)
    np.testing.assert_allclose(feats, expected, atol=1e-6)
    assert cache.rejected == 1 and cache.misses == 2 and reason in caplog.text
    np.testing.assert_allclose(encode_cached(enc, toy_movies, cache), expected, atol=1e-6)
    assert cache.hits == 1  # the recomputed entry replaced the damaged one


def test_a_run_never_trains_on_replaced_cached_features(frozen_cfg, tmp_path, caplog):
    first = run(frozen_cfg).metrics["safe"]
    rng = np.random.default_rng(0)
    for path in (tmp_path / "cache").glob("*.npy"):  # same shape and size, other contents
        shape = np.load(path).shape
        np.save(path, rng.normal(size=shape).astype(np.float32))
    with caplog.at_level(logging.WARNING, logger="textransfer.cache"):
        second = run(frozen_cfg).metrics["safe"]
    assert second["feature_cache"] == {"hits": 0, "misses": 3}
    assert caplog.text.count("checksum mismatch") == 3
    for split in ("test", "products"):
        assert second["eval"][split]["accuracy"] == first["eval"][split]["accuracy"]


# -- item 17: data warnings in the log and in report.md ------------------------------------------


def _duplicated_csv(path: Path) -> str:
    base = make_toy("dupes", ["film"], n=20, seed=3)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([t, y] for t, y in zip(base.texts * 10, base.labels * 10, strict=True))
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("duplicates", r"(\d+) of 50 test rows have a text that also appears in the training data"),
        ("no_test", r"no in-domain test split \(data.test_size is 0 and there is no data.test\): the model is "
                    r"scored only on products"),
        ("no_test_no_eval", r"no in-domain test split .*: nothing is scored"),
        ("limit", r"data.train: limit 1000 is above the 48 usable rows of '.*movies.csv', so all 48 are used"),
    ],
)
def test_data_problems_are_warned_and_reported(case, message, frozen_cfg, tmp_path, caplog):
    overrides = {
        "duplicates": [f"data.train={_duplicated_csv(tmp_path / 'dupes.csv')}", "data.eval={}"],
        "no_test": ["data.test_size=0"],
        "no_test_no_eval": ["data.test_size=0", "data.eval={}"],
        "limit": ["data.train.limit=1000"],
    }[case]
    with caplog.at_level(logging.WARNING, logger="textransfer.experiments.train"):
        result = run(frozen_cfg, overrides)
    found = re.search(message, caplog.text)
    assert found, caplog.text
    if case == "duplicates":
        assert int(found.group(1)) >= 40
    report = (result.run_dir / "report.md").read_text()
    assert "## Warnings" in report and re.search(message, report)
    notes = json.loads((result.run_dir / "metrics.json").read_text())["notes"]
    assert any(re.search(message, n) for n in notes)


# -- item 19: output and cache folders that cannot be folders ---------------------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("output_dir_is_a_file", r"output_dir: \S*taken is a file, not a folder: give output_dir a folder path"),
        ("output_dir_below_a_file", r"output_dir: cannot create the folder \S*taken/runs: \S*taken is a file"),
        ("run_folder_is_a_file", r"output_dir: \S*runs/safe is a file, not a folder"),
        ("cache_dir_is_a_file", r"cache_dir: \S*taken is a file, not a folder.*set cache_dir: null"),
        ("no_permission", r"output_dir: cannot create the folder \S*runs/safe: permission denied"),
    ],
)
def test_unusable_output_or_cache_folders_are_one_clear_error(case, message, frozen_cfg, tmp_path, monkeypatch, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a user's file")
    cfg = dict(frozen_cfg)
    if case == "output_dir_is_a_file":
        cfg["output_dir"] = str(taken)
    elif case == "output_dir_below_a_file":
        cfg["output_dir"] = str(taken / "runs")
    elif case == "run_folder_is_a_file":
        (tmp_path / "runs").mkdir()
        (tmp_path / "runs" / "safe").write_text("a user's file")
    elif case == "cache_dir_is_a_file":
        cfg["cache_dir"] = str(taken)
    else:
        real_mkdir = Path.mkdir

        def denied(self, *args, **kwargs):
            if "runs" in self.parts:
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", denied)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["-q", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert taken.read_text() == "a user's file"
    if case in ("cache_dir_is_a_file", "no_permission"):
        assert not (tmp_path / "runs").exists()


def test_a_run_with_a_validation_split_saves_its_outputs_for_label_free_estimates(frozen_cfg):
    """With data.val_size the saved model carries its outputs on those rows; without, it does not."""
    import textransfer

    clf = textransfer.load(run(frozen_cfg, ["data.val_size=0.25"]).run_dir / "model")
    assert clf.calibration is not None
    assert clf.calibration["source"] == f"{len(clf.calibration['labels'])} validation rows of movies (data.val_size 0.25)"
    assert textransfer.load(run(frozen_cfg, ["name=plain"]).run_dir / "model").calibration is None
