"""End to end through the CLI: `textransfer run` on a tiny config, then `textransfer predict`."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from textransfer.cli import main


@pytest.fixture
def tiny_run(tmp_path, toy_movies, toy_products):
    for data, name in ((toy_movies, "movies.csv"), (toy_products, "products.jsonl")):
        rows = [{"review": t, "sentiment": lab} for t, lab in zip(data.texts, data.labels, strict=True)]
        path = tmp_path / name
        if name.endswith(".csv"):
            with path.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["review", "sentiment"])
                w.writeheader()
                w.writerows(rows)
        else:
            path.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = {
        "name": "tiny",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
        "data": {
            "train": {"source": str(tmp_path / "movies.csv"), "text_column": "review", "label_column": "sentiment"},
            "test_size": 0.25,
            "eval": {"products": {"source": str(tmp_path / "products.jsonl"), "text_column": "review",
                                  "label_column": "sentiment"}},
        },
        "encoder": "tfidf",
        "strategy": {"name": "frozen", "head": "logreg"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_run_then_predict(tiny_run, tmp_path, capsys):
    assert main(["run", str(tiny_run), "--set", "strategy.head.C=10"]) == 0
    run_dir = tmp_path / "runs" / "tiny"
    for name in ("config.resolved.yaml", "metrics.json", "report.md", "model/textransfer.json"):
        assert (run_dir / name).exists(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())["setups"]["tiny"]
    for split in ("test", "products"):
        ev = metrics["eval"][split]
        assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(ev)
        assert ev["accuracy"] > 0.9
    assert yaml.safe_load((run_dir / "config.resolved.yaml").read_text())["strategy"]["head"]["C"] == 10
    assert "| tiny |" in capsys.readouterr().out

    assert main(["predict", str(run_dir / "model"), "a wonderful phone", "an awful plot"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["positive\ta wonderful phone", "negative\tan awful plot"]

    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,a superb battery\n2,a dreadful screen\n")
    dst = tmp_path / "out.csv"
    assert main(["predict", str(run_dir / "model"), "--input", str(src), "--output", str(dst)]) == 0
    rows = list(csv.DictReader(dst.open()))
    assert [r["label"] for r in rows] == ["positive", "negative"] and [r["id"] for r in rows] == ["1", "2"]
    assert abs(float(rows[0]["proba_negative"]) + float(rows[0]["proba_positive"]) - 1) < 1e-4


def test_second_run_uses_feature_cache(tiny_run, tmp_path):
    assert main(["-q", "run", str(tiny_run)]) == 0
    assert main(["-q", "run", str(tiny_run)]) == 0
    metrics = json.loads((tmp_path / "runs" / "tiny" / "metrics.json").read_text())["setups"]["tiny"]
    assert metrics["feature_cache"] == {"hits": 3, "misses": 0}


def test_user_errors_exit_2_with_message(tiny_run, tmp_path, capsys):
    assert main(["run", str(tiny_run), "--set", "encoder.nme=x"]) == 2
    assert "unknown key 'nme' in section 'encoder'" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope"), "text"]) == 2
    assert "no model directory" in capsys.readouterr().err
    assert main(["run", str(tiny_run), "--set", "data.train.text_column=body"]) == 2
    err = capsys.readouterr().err
    assert "body" in err and "review" in err  # names the missing column and lists those found


@pytest.mark.parametrize("what", ["encoders", "heads", "strategies", "datasets", "resources"])
def test_list(what, capsys):
    assert main(["list", what]) == 0
    assert capsys.readouterr().out.strip()


def test_list_precision_says_what_auto_picks_and_why(capsys, monkeypatch):
    import textransfer.precision as prec

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # the CPU's answer on any machine
    assert main(["list", "precision"]) == 0  # the suite's machine: no bf16 units
    out = capsys.readouterr().out
    assert "precision auto (encoding, prediction): fp32: the CPU has no bf16 units" in out
    assert "training.mixed_precision auto: no" in out and "bf16 probe" not in out
    assert "attention" not in out

    zen4 = prec.Capabilities(cpu="test Zen 4", avx512_bf16=True, cpu_bf16_speedup=2.2)
    monkeypatch.setattr(prec, "detect_capabilities", lambda: zen4)
    assert main(["list", "precision"]) == 0
    out = capsys.readouterr().out
    assert "machine: test Zen 4 (avx512_bf16: yes, amx_bf16: no, bf16 matmul 2.20x fp32" in out
    assert "bf16 probe: 2.20x fp32, recorded in" in out and "precision.json" in out
    assert "precision auto (encoding, prediction): bf16: AVX-512 BF16 without AMX" in out
    assert "training.mixed_precision auto: bf16" in out
    assert "bf16 encoding attention: eager" in out
    amx = prec.Capabilities(cpu="test AMX", avx512_bf16=True, amx_bf16=True)
    monkeypatch.setattr(prec, "detect_capabilities", lambda: amx)
    assert main(["list", "precision"]) == 0
    assert "attention" not in capsys.readouterr().out  # AMX keeps SDPA


def test_list_resources_shows_packaged_models(capsys):
    assert main(["list", "resources"]) == 0
    out = capsys.readouterr().out
    assert "all-MiniLM-L6-v2" in out and "glove-6b-50d" in out
