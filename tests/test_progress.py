"""Progress bars and quiet mode (issue 15, item 2): one helper draws every bar, on a terminal by
default; `-q` silences the dependencies' bars too; a run logs one feature-cache summary and loads
each frozen encoder once."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import textransfer
from tests.fixtures.data import write_labeled_csv
from tests.fixtures.models import TOY_TEXTS
from textransfer import _progress
from textransfer.config import SetupConfig

_DEP_ENV = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY", "TQDM_DISABLE")


@pytest.fixture(autouse=True)
def fresh_progress_state():
    """Every test starts with the defaults and leaves them (quiet mode is process-wide, and
    set_quiet writes os.environ directly, which monkeypatch does not undo for unset keys)."""
    saved = {key: os.environ.pop(key, None) for key in (_progress.ENV, *_DEP_ENV)}
    _progress.set_progress(None)
    _progress._quiet = False
    yield
    for key, value in saved.items():
        os.environ.pop(key, None)
        if value is not None:
            os.environ[key] = value
    _progress.set_progress(None)
    _progress._quiet = False
    if "transformers" in sys.modules:
        from transformers.utils import logging as tf_logging

        tf_logging.enable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import enable_progress_bars

        enable_progress_bars()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_show_on_a_terminal_only_unless_forced(monkeypatch, capsys):
    assert _progress.progress(range(3), desc="x").disable  # captured stderr: not a terminal
    assert list(_progress.progress(range(3), desc="x")) == [0, 1, 2]  # a disabled bar still iterates
    with monkeypatch.context() as m:
        m.setattr(sys, "stderr", _Terminal())
        assert not _progress.progress(range(3), desc="x").disable

    monkeypatch.setenv(_progress.ENV, "1")  # tests and pipes can ask for bars
    list(_progress.progress(range(3), desc="forced bar", total=3))
    assert "forced bar" in capsys.readouterr().err
    assert _progress.progress(range(3), show=False).disable  # a bar's own setting (training.progress)
    _progress.set_progress(False)  # the Python switch beats the environment
    assert _progress.progress(range(3)).disable
    _progress.set_progress(True)
    _progress.set_quiet(True)  # and quiet beats everything
    assert _progress.progress(range(3), show=True).disable
    monkeypatch.setenv(_progress.ENV, "0")
    _progress.set_quiet(False)
    _progress.set_progress(None)
    assert _progress.progress(range(3), show=True).disable


@pytest.mark.parametrize(("name", "total"), [("transformer", "/3 "), ("sentence", "/3 "), ("static", "/10 ")])
def test_encoding_loops_draw_a_bar(make_encoder, monkeypatch, capsys, name, total):
    encoder = make_encoder(name)
    monkeypatch.setenv(_progress.ENV, "1")
    feats = encoder.encode(TOY_TEXTS[:10], batch_size=4)
    err = capsys.readouterr().err
    assert f"encoding ({name})" in err and total in err  # 3 batches of 4 texts; static counts texts
    np = pytest.importorskip("numpy")
    monkeypatch.setenv(_progress.ENV, "0")
    np.testing.assert_array_equal(encoder.encode(TOY_TEXTS[:10], batch_size=4), feats)  # bars change nothing
    assert "encoding" not in capsys.readouterr().err


def test_training_evaluation_and_prediction_draw_bars(toy_movies, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(_progress.ENV, "1")
    strategy = textransfer.create_strategy("frozen", training={"epochs": 2, "batch_size": 8})
    clf = strategy.fit(textransfer.create_encoder("tfidf"), textransfer.create_head("mlp"), toy_movies)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "step" in err

    quiet = textransfer.create_strategy("frozen", training={"epochs": 2, "batch_size": 8, "progress": False})
    quiet.fit(textransfer.create_encoder("tfidf"), textransfer.create_head("mlp"), toy_movies)
    assert "epoch 1/2" not in capsys.readouterr().err

    textransfer.evaluate(clf, (toy_movies.texts, toy_movies.labels), n_boot=10)
    assert "evaluating: " in capsys.readouterr().err

    from textransfer.prediction import predict_file_with_report

    src = write_labeled_csv(tmp_path / "in.csv", toy_movies)
    predict_file_with_report(clf, src, tmp_path / "out.csv", prediction_column="predicted")
    assert "predicting in.csv" in capsys.readouterr().err


def _saved_transformer_model(tiny_bert_dir: Path, data, folder: Path) -> Path:
    encoder = textransfer.create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
    clf = textransfer.create_strategy("frozen").fit(encoder, textransfer.create_head("logreg"), data)
    clf.save(folder)
    return folder


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "textransfer.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, timeout=300)


def test_quiet_silences_the_dependencies_bars_too(tiny_bert_dir, toy_movies, tmp_path):
    model = _saved_transformer_model(tiny_bert_dir, toy_movies, tmp_path / "model")
    # Bars asked for: transformers draws its "Loading weights" bar (stderr is a pipe here).
    loud = _cli("predict", str(model), "a good film", env={_progress.ENV: "1"})
    assert loud.returncode == 0, loud.stderr
    assert "Loading weights" in loud.stderr
    quiet = _cli("-q", "predict", str(model), "a good film", env={_progress.ENV: "1"})
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip().endswith("a good film")
    assert "Loading weights" not in quiet.stderr and "%|" not in quiet.stderr
    assert "INFO" not in quiet.stderr


def test_set_quiet_turns_off_imported_dependencies_bars(monkeypatch):
    pytest.importorskip("transformers")
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as tf_logging

    monkeypatch.setenv(_progress.ENV, "1")
    # Start from bars on: an earlier in-process `cli.main` without a terminal (or with -q)
    # switched them off for the whole process. monkeypatch restores the variables set_quiet writes.
    for key in _progress._QUIET_ENV:
        monkeypatch.delenv(key, raising=False)
    import importlib

    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module, not the class
    monkeypatch.setattr(hub_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", None)  # the env, read at import
    tf_logging.enable_progress_bar()
    enable_progress_bars()
    _progress.set_quiet(False)
    assert tf_logging.is_progress_bar_enabled() and not are_progress_bars_disabled()
    _progress.set_quiet(True)
    assert not tf_logging.is_progress_bar_enabled() and are_progress_bars_disabled()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and os.environ["TQDM_DISABLE"] == "1"


# -- one cache summary, one load per frozen encoder ------------------------------------------------


def _xd_config(tmp_path: Path, movies, products, encoders: dict[str, Any], strategies: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "xd", "output_dir": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache"), "seeds": [0, 1],
        "domains": {"movies": write_labeled_csv(tmp_path / "m.csv", movies),
                    "products": write_labeled_csv(tmp_path / "p.csv", products)},
        "sources": ["movies"], "targets": ["products"], "encoders": encoders, "strategies": strategies,
        "evaluation": {"n_boot": 20, "label_budgets": [8, "all"]},
    }


def test_crossdomain_logs_one_cache_summary_and_a_distance_bar(toy_movies, toy_products, tmp_path, caplog, capsys,
                                                               monkeypatch):
    from textransfer.experiments.crossdomain.run import run_crossdomain

    cfg = _xd_config(tmp_path, toy_movies, toy_products, {"tfidf": {"name": "tfidf", "min_df": 1}},
                     {"frozen": {"name": "frozen", "head": "logreg"}, "coral": {"name": "coral", "head": "logreg"}})
    monkeypatch.setenv(_progress.ENV, "1")
    with caplog.at_level(logging.INFO):
        run_crossdomain(cfg)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [m for m in messages if "read from cache" in m]  # the old code logged one per entry (24 here)
    summaries = [m for m in messages if m.startswith("feature cache (crossdomain xd)")]
    assert len(summaries) == 1 and " hits, " in summaries[0]
    hits = int(summaries[0].split(": ")[1].split(" hits")[0])
    assert hits > 10
    assert "A-distance (tfidf)" in capsys.readouterr().err


def test_crossdomain_loads_a_frozen_encoder_once_and_fine_tuned_ones_per_fit(
    tiny_sentence_dir, toy_movies, toy_products, tmp_path, monkeypatch
):
    import sentence_transformers

    from textransfer.experiments.crossdomain.run import run_crossdomain

    loads: list[str] = []

    class Counting(sentence_transformers.SentenceTransformer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            loads.append(str(args[0]))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Counting)
    cfg = _xd_config(
        tmp_path, toy_movies, toy_products, {"sent": {"name": "sentence", "model": str(tiny_sentence_dir)}},
        {"frozen": {"name": "frozen", "head": "logreg"}, "coral": {"name": "coral", "head": "logreg"},
         "finetune": {"name": "finetune", "head": "linear", "oracle": False, "val_fraction": 0.0,
                      "training": {"epochs": 1, "batch_size": 16}}},
    )
    result = run_crossdomain(cfg)
    # frozen + coral (+ their oracles, the target-only curves and the A-distance), both seeds: one
    # load; fine-tuning: fresh weights for each seed's fit. The old code loaded on every fit.
    assert len(loads) == 1 + 2, loads
    rows = {r["setup"]: r for r in result.metrics["rows"]}
    assert rows["sent+finetune"]["seeds"] == [0, 1] and rows["sent+frozen"]["in_domain"]["accuracy"]["mean"] > 0.5


def test_shared_encoders_are_for_frozen_features_only(tiny_sentence_dir):
    from textransfer.experiments._kernel import SharedEncoders, build_components

    enc = {"name": "sentence", "model": str(tiny_sentence_dir)}

    def setup(strategy: str, encoder: dict[str, Any] = enc, head: str = "logreg") -> SetupConfig:
        return SetupConfig.model_validate({"name": strategy, "encoder": encoder, "strategy": {"name": strategy, "head": head}})

    pool = SharedEncoders()
    frozen = build_components(setup("frozen"), pool)[0]
    assert build_components(setup("coral"), pool)[0] is frozen  # same encoder config, another strategy
    tuned = [build_components(setup("finetune", head="linear"), pool)[0] for _ in range(2)]
    assert frozen not in tuned and tuned[0] is not tuned[1]  # trained: fresh weights every time
    other = build_components(setup("frozen", {**enc, "normalize": True}), pool)[0]
    assert other is not frozen  # another config
    tfidf = [build_components(setup("frozen", {"name": "tfidf"}), pool)[0] for _ in range(2)]
    assert tfidf[0] is not tfidf[1]  # fitted on each fit's data: never shared
    assert build_components(setup("frozen"))[0] is not frozen  # no pool: fresh, as before


def test_cli_quiet_run_prints_no_info_and_no_bars(tmp_path, toy_movies):
    cfg = {"name": "q", "output_dir": str(tmp_path / "runs"), "cache_dir": None,
           "data": {"train": write_labeled_csv(tmp_path / "m.csv", toy_movies), "test_size": 0.25},
           "encoder": "tfidf", "strategy": {"name": "frozen", "head": "mlp"}, "training": {"epochs": 2}}
    path = tmp_path / "q.yaml"
    path.write_text(yaml.safe_dump(cfg))
    loud = _cli("run", str(path), env={_progress.ENV: "1"})
    assert loud.returncode == 0, loud.stderr
    assert "epoch 2/2" in loud.stderr and "INFO" in loud.stderr
    quiet = _cli("-q", "run", str(path), env={_progress.ENV: "1"})
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.strip() == "" or all(line.startswith("WARNING") for line in quiet.stderr.splitlines())
