"""`textransfer curve` end to end on tiny models: every output file, nested saved samples,
zero-shot and source-model points at budget 0, benefits, clamped budgets and bad input."""

from __future__ import annotations

import json

import yaml

from tests.conftest import make_toy
from tests.fixtures.data import write_labeled_csv
from textransfer.cli import main


def _config(tmp_path, tiny_glove_file, tiny_bert_dir):
    bert = {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16}
    fast = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "patience": None}
    return {
        "name": "curve_toy",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": None,
        "seeds": [0, 1],
        "source": write_labeled_csv(
            tmp_path / "movies.csv", make_toy("movies", ["film", "plot"], n=32, seed=1)
        ),
        "target": write_labeled_csv(
            tmp_path / "products.csv", make_toy("products", ["phone", "battery"], n=48, seed=2)
        ),
        "test_size": 0.25,
        "budgets": [0, 4, 8, 100, "all"],
        "baseline": "tfidf",
        "setups": {
            "tfidf": {
                "encoder": "tfidf",
                "strategy": {"name": "frozen", "head": "logreg"},
                "transfer": False,
            },
            "glove": {"encoder": {"name": "static", "vectors": str(tiny_glove_file)}},
            "glove-zero-shot": {
                "encoder": {"name": "static", "vectors": str(tiny_glove_file)},
                "strategy": {
                    "name": "zero_shot",
                    "labels": {"positive": "good great", "negative": "bad awful"},
                },
            },
            "bert-two-step": {
                "encoder": bert,
                "source": {
                    "strategy": {"name": "finetune", "head": "linear", "val_fraction": 0.0},
                    "training": fast,
                },
                "strategy": {"name": "finetune", "head": "linear", "val_fraction": 0.0},
                "training": fast,
                "min_steps": 2,
                "seeds": [0],
            },
        },
    }


def test_curve_run_end_to_end(tiny_glove_file, tiny_bert_dir, tmp_path, capsys):
    cfg = tmp_path / "curve.yaml"
    cfg.write_text(yaml.safe_dump(_config(tmp_path, tiny_glove_file, tiny_bert_dir)))
    assert main(["curve", str(cfg)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "glove" in out and "run directory" in out
    run = tmp_path / "runs" / "curve_toy"
    for f in (
        "report.md",
        "metrics.json",
        "samples.json",
        "config.resolved.yaml",
        "plots/learning_curve.png",
    ):
        assert (run / f).is_file(), f
    assert (run / "source_models" / "bert-two-step" / "seed0" / "textransfer.json").is_file()
    m = json.loads((run / "metrics.json").read_text())
    assert m["target"]["pool"] == 36 and m["budgets"] == [0, 4, 8, 36]
    assert any("100" in n and "clamped" in n for n in m["notes"])
    s = m["setups"]
    assert set(s["tfidf"]["curve"]) == {"4", "8", "36"} and s["tfidf"]["curve"]["4"]["n"] == 2
    assert set(s["glove-zero-shot"]["curve"]) == {"0"}
    assert (
        set(s["bert-two-step"]["curve"]) == {"0", "4", "8", "36"}
        and s["bert-two-step"]["curve"]["4"]["n"] == 1
    )
    assert "benefits" not in s["tfidf"]  # the baseline is not judged against itself
    b = s["glove"]["benefits"]
    assert b["budgets"] == [4, 8, 36] and {
        "start",
        "area",
        "asymptote",
        "matches_baseline_at",
    } <= set(b)
    zs = s["glove-zero-shot"]["benefits"]
    assert zs["budgets"] == [] and (zs["start"]["budget"], zs["start"]["baseline_budget"]) == (0, 4)
    samples = json.loads((run / "samples.json").read_text())
    for seed in ("0", "1"):
        ids = {int(b): set(v) for b, v in samples[seed].items()}
        assert set(ids) == {4, 8, 36} and ids[4] < ids[8] < ids[36]
    assert samples["0"]["4"] != samples["1"]["4"]
    report = (run / "report.md").read_text()
    assert (
        "clamped" in report and "Benefits of transfer" in report and "learning_curve.png" in report
    )


def test_curve_bad_input_is_one_clear_error(tiny_glove_file, tiny_bert_dir, tmp_path, capsys):
    raw = _config(tmp_path, tiny_glove_file, tiny_bert_dir)
    raw["setups"] = {k: raw["setups"][k] for k in ("tfidf", "glove-zero-shot")}
    cfg = tmp_path / "curve.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["curve", str(cfg), "--set", "budgets=[0, 1, 8]"]) == 2
    assert "cannot cover the 2 classes" in capsys.readouterr().err
    assert (
        main(
            [
                "curve",
                str(cfg),
                "--set",
                "setups.glove-zero-shot.strategy.labels={positive: good, neutral: meh}",
            ]
        )
        == 2
    )
    assert "['negative']" in capsys.readouterr().err  # the label without a description is named
    assert main(["curve", str(cfg), "--set", "baseline=nope"]) == 2
    assert "baseline" in capsys.readouterr().err
    assert main(["curve", str(cfg), "--set", "budgets=[8]"]) == 2  # zero-shot needs budget 0
    assert "add 0 to `budgets`" in capsys.readouterr().err


def test_empty_seed_list_skips_a_setup_but_not_the_baseline(
    tiny_glove_file, tiny_bert_dir, tmp_path
):
    import pytest

    from textransfer.config import ConfigError
    from textransfer.experiments.curve.config import load_curve_config

    raw = _config(tmp_path, tiny_glove_file, tiny_bert_dir)
    cfg = load_curve_config(raw, ["setups.bert-two-step.seeds=[]"])
    assert cfg.seeds_of("bert-two-step") == [] and cfg.seeds_of("glove") == [0, 1]
    with pytest.raises(ConfigError, match="baseline cannot be skipped"):
        load_curve_config(raw, ["setups.tfidf.seeds=[]"])
