"""End-to-end cross-domain runs on the toy two-domain corpus, and the bad-input errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from textransfer.config import ConfigError
from textransfer.data.labeled import LabeledTexts
from textransfer.experiments.crossdomain.config import load_crossdomain_config
from textransfer.experiments.crossdomain.run import load_domains, run_crossdomain


def write_domain(path: Path, data: LabeledTexts, labels: bool = True, rename: dict[str, str] | None = None) -> str:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"] if labels else ["text"])
        for text, lab in zip(data.texts, data.labels or [], strict=True):
            w.writerow([text, (rename or {}).get(str(lab), lab)] if labels else [text])
    return str(path)


@pytest.fixture
def toy_config(tmp_path: Path, toy_movies: LabeledTexts, toy_products: LabeledTexts) -> dict[str, Any]:
    return {
        "name": "toy_xd",
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
        "seeds": [0, 1],
        "domains": {
            "movies": write_domain(tmp_path / "movies.csv", toy_movies),
            "products": write_domain(tmp_path / "products.csv", toy_products),
        },
        "sources": ["movies"],
        "targets": ["products"],
        "encoders": {"tfidf": {"name": "tfidf", "min_df": 1}},
        "strategies": {
            "frozen": {"name": "frozen", "head": "logreg"},
            "coral": {"name": "coral", "head": "logreg", "seeds": [0]},
        },
        "evaluation": {"n_boot": 100},
    }


def test_end_to_end_writes_every_output(toy_config: dict[str, Any], tmp_path: Path, toy_products: LabeledTexts) -> None:
    from textransfer.cli import main

    # Also an unlabeled target (adaptation runs; scoring says what is missing).
    toy_config["domains"]["shop"] = {"source": write_domain(tmp_path / "shop.csv", toy_products, labels=False),
                                     "label_column": None}
    toy_config["targets"] += ["shop"]
    toy_config["strategies"]["coral"]["oracle"] = False
    path = tmp_path / "xd.yaml"
    import yaml

    path.write_text(yaml.safe_dump(toy_config))
    assert main(["crossdomain", str(path), "--set", "evaluation.ece_bins=10"]) == 0
    run_dir = Path(toy_config["output_dir"]) / "toy_xd"
    for name in ("report.md", "metrics.json", "config.resolved.yaml", "plots/accuracy.png", "plots/a_distance_vs_gap.png"):
        assert (run_dir / name).is_file(), name
    assert len(list((run_dir / "plots").glob("confusion_*.png"))) == 4
    assert len(list((run_dir / "plots").glob("reliability_*.png"))) == 4
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = {(r["setup"], r["target"]): r for r in metrics["rows"]}
    row = rows[("tfidf+frozen", "products")]
    for key in ("in_domain", "cross_domain", "oracle", "target_only"):
        assert {"mean", "std", "ci95"} <= set(row[key]["accuracy"]), key
        assert row[key]["ece"]["mean"] >= 0 and row[key]["confusion_matrix"]
    assert row["transfer_gap"] == pytest.approx(row["oracle"]["accuracy"]["mean"] - row["cross_domain"]["accuracy"]["mean"])
    assert row["negative_transfer"]["flag"] in (True, False) and row["a_distance"]["mean"] > 0
    assert row["seeds"] == [0, 1] and rows[("tfidf+coral", "products")]["seeds"] == [0]
    coral = rows[("tfidf+coral", "products")]
    assert "adaptation_gain" in coral and "oracle" not in coral and "transfer_gap" not in coral
    assert "no labels" in rows[("tfidf+frozen", "shop")]["cross_domain"]["missing"]
    report = (run_dir / "report.md").read_text()
    assert "## Does adaptation help?" in report and "tfidf+coral" in report
    assert "shop" in report and "no labels" in report


def test_same_domain_is_reported_in_domain(toy_config: dict[str, Any]) -> None:
    toy_config["targets"] = ["movies"]
    toy_config["evaluation"].update(plots=False, n_boot=0)
    result = run_crossdomain(load_crossdomain_config(toy_config))
    row = result.metrics["rows"][0]
    assert row["same_domain"] and row["transfer_gap"] == 0 and row["a_distance"] is None
    assert row["cross_domain"]["accuracy"] == row["in_domain"]["accuracy"]
    assert "movies → movies (in-domain)" in (result.run_dir / "report.md").read_text()


def test_saved_models_predict_and_a_distance_is_limited_to_the_named_encoders(
    toy_config: dict[str, Any], toy_products: LabeledTexts
) -> None:
    import numpy as np

    import textransfer

    toy_config["encoders"]["tfidf-small"] = {"name": "tfidf", "min_df": 1, "max_features": 50}
    toy_config["evaluation"].update(plots=False, n_boot=0, a_distance_encoders=["tfidf"])
    toy_config["save_models"] = True
    result = run_crossdomain(load_crossdomain_config(toy_config))
    assert {r["encoder"] for r in result.metrics["a_distance"]} == {"tfidf"}
    models = result.run_dir / "models"
    saved = sorted(p.relative_to(models).as_posix() for p in models.glob("*/*"))
    assert saved == [f"{e}+{s}/movies_to_products" for e in ("tfidf", "tfidf-small") for s in ("coral", "frozen")]
    clf = textransfer.load(models / "tfidf+frozen" / "movies_to_products")
    # Its outputs on the held-out source validation rows travel with it, for later estimates.
    assert clf.calibration is not None and clf.calibration["source"].endswith(
        "rows of movies's train split held out of training (source_val_size 0.1, seed 0)")
    n_val = len(clf.calibration["labels"])
    estimate = textransfer.estimate_target_accuracy(clf, source_val=None, target=(toy_products.texts, None),
                                                    min_rows=n_val)  # the toy source keeps few rows back
    assert estimate["n_source_val"] == n_val and 0.0 <= estimate["estimate"] <= 1.0
    seed0 = next(r for r in result.metrics["rows"] if r["setup"] == "tfidf+frozen")
    acc = float(np.mean(np.array(clf.predict(toy_products.texts)) == np.array(toy_products.labels)))
    assert acc > 0.5 and seed0["cross_domain"]["accuracy"]["mean"] > 0.5
    with pytest.raises(ConfigError, match="a_distance_encoders: unknown encoder"):
        load_crossdomain_config({**toy_config, "evaluation": {"a_distance_encoders": ["glove"]}})


def test_pipeline_main(toy_config: dict[str, Any], tmp_path: Path) -> None:
    import yaml

    from pipelines.cross_domain import main

    toy_config["strategies"].pop("coral")
    toy_config["evaluation"].update(plots=False, n_boot=0)
    path = tmp_path / "xd.yaml"
    path.write_text(yaml.safe_dump(toy_config))
    assert main(["--config", str(path), "--set", "seeds=[3]"]) == 0
    metrics = json.loads((Path(toy_config["output_dir"]) / "toy_xd" / "metrics.json").read_text())
    assert metrics["seeds"] == [3]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bogus": 1}, "unknown key 'bogus'"),
        ({"targets": ["nowhere"]}, "unknown domain(s) ['nowhere']"),
        ({"strategies": {"f": {"name": "frozen", "head": "logreg", "encoders": ["bert"]}}}, "unknown encoder(s) ['bert']"),
        ({"strategies": {"f": {"name": "frozen", "head": "logreg", "seeds": [7]}}}, "not among the top-level seeds"),
        ({"strategies": {"f": {"name": "coral", "head": "logreg", "regg": 1}}}, "regg"),
        ({"encoders": {"x": {"name": "nosuch"}}}, "nosuch"),
        ({"test_size": 1.5}, "strictly between 0 and 1"),
    ],
)
def test_config_errors(toy_config: dict[str, Any], change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as exc:
        load_crossdomain_config({**toy_config, **change})
    assert message in str(exc.value)


def test_label_sets_must_agree_or_be_mapped(toy_config: dict[str, Any], tmp_path: Path, toy_products: LabeledTexts) -> None:
    rename = {"positive": "good", "negative": "bad"}
    toy_config["domains"]["products"] = write_domain(tmp_path / "p2.csv", toy_products, rename=rename)
    with pytest.raises(ValueError, match="label_map"):
        load_domains(load_crossdomain_config(toy_config))
    toy_config["domains"]["products"] = {"source": str(tmp_path / "p2.csv"), "label_map": {"good": "positive", "bad": "negative"}}
    data, label_map = load_domains(load_crossdomain_config(toy_config))
    assert label_map.labels == ["negative", "positive"] and set(data["products"].labels or []) == set(label_map.labels)


def test_domain_too_small(toy_config: dict[str, Any], tmp_path: Path, toy_products: LabeledTexts) -> None:
    toy_config["domains"]["products"] = write_domain(tmp_path / "tiny.csv", toy_products.subset([0, 1, 2]))
    with pytest.raises(ValueError, match="domain 'products' is too small"):
        run_crossdomain(load_crossdomain_config(toy_config))


def test_unlabeled_source_is_an_error(toy_config: dict[str, Any], tmp_path: Path, toy_movies: LabeledTexts) -> None:
    toy_config["domains"]["movies"] = {"source": write_domain(tmp_path / "m.csv", toy_movies, labels=False), "label_column": None}
    with pytest.raises(ValueError, match="source domain 'movies' has no labels"):
        load_domains(load_crossdomain_config(toy_config))


def test_feature_store_fills_the_cache_with_the_right_rows(tmp_path: Path, tiny_bert_dir: Path, toy_movies: LabeledTexts) -> None:
    import numpy as np

    from textransfer.encoders import create_encoder
    from textransfer.encoders.cache import FeatureCache
    from textransfer.experiments._kernel import FeatureStore

    enc = create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
    cache = FeatureCache(tmp_path / "cache")
    part = toy_movies.subset([5, 1, 7])
    impostor = LabeledTexts(["not a movie row"] * 3, None, "movies", ids=part.ids)  # same ids, other texts
    FeatureStore(cache, batch_size=8).warm(enc, toy_movies, part, impostor)
    np.testing.assert_allclose(cache.get(FeatureCache.key(enc, part)), enc.encode(part.texts), atol=1e-5)
    assert cache.get(FeatureCache.key(enc, impostor)) is None


def test_target_only_baseline_uses_head_training_not_the_adaptations(toy_config: dict[str, Any]) -> None:
    from textransfer.experiments.crossdomain.run import CrossDomainRun

    toy_config["training"] = {"batch_size": 8}
    toy_config["strategies"] = {
        "lin": {"name": "frozen", "head": "linear", "training": {"epochs": 20}},
        "dann": {"name": "dann", "head": "linear", "training": {"lr": 3e-5, "epochs": 1}, "baseline": "lin"},
    }
    exp = CrossDomainRun(load_crossdomain_config(toy_config))
    by_name = {s.name: s for s in exp.config.setups()}
    assert exp.frozen_baseline(by_name["tfidf+dann"]).training == {"batch_size": 8, "epochs": 20}
    assert exp.frozen_baseline(by_name["tfidf+lin"]).training == {"batch_size": 8, "epochs": 20}


def test_no_model_is_trained_twice_in_a_seed(
    toy_config: dict[str, Any], tmp_path: Path, toy_products: LabeledTexts, tiny_bert_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A source-only fit (frozen, finetune) is trained for the first target and scored on the
    # others; self_train over finetune starts from the finetune twin's model of the seed. Both
    # give exactly what training again gives.
    import numpy as np

    import textransfer.experiments.crossdomain.run as xd
    from textransfer.strategies.finetune import FinetuneStrategy

    toy_config["domains"]["shop"] = write_domain(tmp_path / "shop.csv", toy_products)
    toy_config["targets"] = ["products", "shop"]
    toy_config["encoders"] = {"tfidf": {"name": "tfidf", "min_df": 1},
                              "bert": {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16}}
    training = {"epochs": 1, "batch_size": 16}
    toy_config["strategies"] = {
        "frozen": {"name": "frozen", "head": "logreg", "encoders": ["tfidf"]},
        "finetune": {"name": "finetune", "head": "linear", "encoders": ["bert"], "oracle": False,
                     "max_train_rows": 60, "training": training},
        "self_train": {"name": "self_train", "base": "finetune", "head": "linear", "encoders": ["bert"],
                       "oracle": False, "rounds": 1, "max_train_rows": 60, "min_confidence": 0.0,
                       "training": training, "baseline": "finetune"},
        "coral": {"name": "coral", "head": "logreg", "encoders": ["tfidf"], "oracle": False},
    }
    toy_config["evaluation"] = {"n_boot": 0, "plots": False, "target_only": False, "oracle": False}
    fits: list[tuple[str, str]] = []
    finetunes: list[int] = []
    real_fit, real_finetune = xd.fit_setup, FinetuneStrategy.fit_with_context

    def counting_fit(setup: Any, train: LabeledTexts, **kwargs: Any) -> Any:
        fits.append((setup.name, kwargs["target_unlabeled"].domain))
        return real_fit(setup, train, **kwargs)

    def counting_finetune(self: Any, *args: Any, **kwargs: Any) -> Any:
        finetunes.append(kwargs["context"].training.seed)
        return real_finetune(self, *args, **kwargs)

    monkeypatch.setattr(xd, "fit_setup", counting_fit)
    monkeypatch.setattr(FinetuneStrategy, "fit_with_context", counting_finetune)
    both = run_crossdomain(load_crossdomain_config(toy_config))
    per_seed = [("tfidf+frozen", "products"), ("bert+finetune", "products")] + [
        (s, t) for s in ("bert+self_train", "tfidf+coral") for t in ("products", "shop")]
    assert sorted(fits) == sorted(per_seed * 2)
    assert sorted(finetunes) == [0, 1]  # the twin, once per seed: self_train's round 0 is its copy
    records = {(r["setup"], r["target"], r["seed"]): r for row in both.metrics["rows"] for r in row["per_seed"]}
    assert len(records) == 16  # 4 setups x 2 targets x 2 seeds
    for setup in ("tfidf+frozen", "bert+finetune"):
        assert "shared_fit" not in records[(setup, "products", 0)]["fit"]
        assert "trained once for movies_to_products (seed 1)" in records[(setup, "shop", 1)]["fit"]["shared_fit"]
    st = records[("bert+self_train", "shop", 1)]["fit"]
    assert st["started_from_base_model"] and "bert+finetune's model of this seed" in st["base_model"]
    assert st["base_fit_seconds"] == records[("bert+finetune", "products", 1)]["fit"]["fit_seconds"]
    assert "shared_fit" not in records[("tfidf+coral", "shop", 0)]["fit"]
    report = (both.run_dir / "report.md").read_text()
    assert "of the source-only model it starts from (its twin's, copied: not trained again)" in report
    assert "seed(s) [0, 1]: the model trained for an earlier target of the run, scored here too" in report
    # The same target alone, without the twin: every model is trained for it.
    fits.clear()
    finetunes.clear()
    toy_config["targets"], toy_config["name"] = ["shop"], "toy_xd_shop"
    twin = toy_config["strategies"].pop("finetune")
    toy_config["strategies"]["self_train"].pop("baseline")
    alone = run_crossdomain(load_crossdomain_config(toy_config))
    assert sorted(finetunes) == [0, 1]  # self_train's own round 0
    assert "base_model" not in alone.metrics["rows"][1]["per_seed"][0]["fit"]
    toy_config["strategies"] = {"self_train": toy_config["strategies"]["self_train"], "finetune": twin}
    toy_config["name"] = "toy_xd_twin_last"
    fits.clear()
    twin_last = run_crossdomain(load_crossdomain_config(toy_config))  # the twin still trains first
    assert fits == [("bert+finetune", "shop"), ("bert+self_train", "shop")] * 2
    assert [r["setup"] for r in twin_last.metrics["rows"]] == ["bert+self_train", "bert+finetune"]
    for key in [("bert+finetune", "movies", "shop", "cross_domain"), ("bert+self_train", "movies", "shop", "cross_domain")]:
        for a, b in zip(both.scores[key], twin_last.scores[key], strict=True):
            np.testing.assert_allclose(a.proba, b.proba, rtol=0, atol=1e-6)
    for setup in ("tfidf+frozen", "bert+self_train", "tfidf+coral"):
        key = (setup, "movies", "shop", "cross_domain")
        for a, b in zip(both.scores[key], alone.scores[key], strict=True):
            np.testing.assert_allclose(a.proba, b.proba, rtol=0, atol=1e-6)


def test_self_train_over_dapt_starts_from_the_dapt_row_of_its_own_target(
    toy_config: dict[str, Any], tmp_path: Path, toy_products: LabeledTexts, tiny_bert_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A dapt model reads its target's texts, so it is handed over per pair: self_train on
    # movies -> shop starts from dapt's movies -> shop model, never from the products one.
    from textransfer.strategies.mlm import DAPTStrategy

    toy_config["domains"]["shop"] = write_domain(tmp_path / "shop.csv", toy_products.subset(range(40)))
    toy_config["targets"], toy_config["seeds"] = ["products", "shop"], [0]
    toy_config["encoders"] = {"bert": {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16}}
    dapt = {"head": "linear", "oracle": False, "max_train_rows": 60, "mlm_steps": 2, "mlm_batch_size": 8,
            "max_target_rows": 30, "training": {"epochs": 1, "batch_size": 16}}
    toy_config["strategies"] = {
        "self_train": {"name": "self_train", "base": "dapt", "rounds": 1, "min_confidence": 0.0, **dapt},
        "dapt": {"name": "dapt", **dapt},
    }
    toy_config["evaluation"] = {"n_boot": 0, "plots": False, "target_only": False, "oracle": False}
    dapt_fits: list[str] = []
    real = DAPTStrategy.fit_with_context

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        dapt_fits.append(f"{len(kwargs['target_unlabeled'])} target texts")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DAPTStrategy, "fit_with_context", counting)
    result = run_crossdomain(load_crossdomain_config(toy_config))
    assert len(dapt_fits) == 2  # dapt for each target; self_train trained no MLM phase of its own
    records = {(r["setup"], r["target"]): r["fit"] for row in result.metrics["rows"] for r in row["per_seed"]}
    for target in ("products", "shop"):
        st = records[("bert+self_train", target)]
        assert st["started_from_base_model"]
        assert f"bert+dapt's model of this seed (movies_to_{target})" in st["base_model"]
        assert st["base_fit_seconds"] == records[("bert+dapt", target)]["fit_seconds"]
    # The report keeps the config's order though the twin ran first.
    assert [r["setup"] for r in result.metrics["rows"]][:2] == ["bert+self_train", "bert+self_train"]


def test_an_adaptation_is_not_run_on_a_pair_whose_target_is_its_source(toy_config: dict[str, Any]) -> None:
    toy_config["targets"] = ["movies", "products"]
    toy_config["evaluation"].update(plots=False, n_boot=0)
    result = run_crossdomain(load_crossdomain_config(toy_config))
    pairs = {(r["setup"], r["target"]) for r in result.metrics["rows"]}
    # The source-only row keeps its in-domain row; CORAL runs on the cross-domain pair only.
    assert pairs == {("tfidf+frozen", "movies"), ("tfidf+frozen", "products"), ("tfidf+coral", "products")}
    assert not any(k[:3] == ("tfidf+coral", "movies", "movies") for k in result.scores)
    note = "`tfidf+coral` is not run on movies → movies: the target is its own source"
    assert any(n.startswith(note) for n in result.metrics["notes"])
    assert note in (result.run_dir / "report.md").read_text()


def test_a_strategy_that_cannot_train_a_setup_fails_before_any_row_runs(
    toy_config: dict[str, Any], tmp_path: Path, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dapt over TF-IDF, listed after rows that would train: the run stops at once, naming the
    setup, writes no run folder and loads no transformer weights for the check."""
    from textransfer.encoders.transformer import TransformerEncoder
    from textransfer.strategies import CapabilityError

    loaded: list[str] = []
    real_module = TransformerEncoder.module.fget  # type: ignore[attr-defined]

    def counting(self: TransformerEncoder) -> Any:
        loaded.append(self.name)
        return real_module(self)

    monkeypatch.setattr(TransformerEncoder, "module", property(counting))
    toy_config["encoders"]["bert"] = {"name": "transformer", "model": str(tiny_bert_dir), "max_length": 16}
    toy_config["strategies"]["finetune"] = {"name": "finetune", "head": "linear", "encoders": ["bert"], "seeds": [0],
                                            "training": {"epochs": 1}}
    toy_config["strategies"]["dapt"] = {"name": "dapt", "head": "linear", "encoders": ["tfidf"]}
    with pytest.raises(CapabilityError, match=r"setup tfidf\+dapt: dapt trains the encoder .* encoder 'tfidf' cannot"):
        run_crossdomain(load_crossdomain_config(toy_config))
    assert not (tmp_path / "runs").exists()
    assert loaded == []


def test_a_target_too_small_for_the_a_distance_gets_a_note_not_a_crash(
    toy_config: dict[str, Any], tmp_path: Path, toy_products: LabeledTexts
) -> None:
    """14 labeled target rows leave a 3-row test split: the A-distance needs 4 per domain. The run
    finishes and the report says why that pair has none (it used to stop with an error after
    training)."""
    labels = list(toy_products.labels or [])
    rows = [i for lab in sorted(set(labels)) for i in [j for j, x in enumerate(labels) if x == lab][:7]]
    toy_config["domains"]["products"] = write_domain(tmp_path / "small.csv", toy_products.subset(rows))
    toy_config["seeds"] = [0]
    toy_config["strategies"] = {"frozen": {"name": "frozen", "head": "logreg"}}
    result = run_crossdomain(load_crossdomain_config(toy_config))
    report = (result.run_dir / "report.md").read_text(encoding="utf-8")
    assert "No proxy A-distance for movies → products: products's test split has 3 row(s); it needs at least 4" in report
    assert re.search(r"\bnan\b", report, re.IGNORECASE) is None
    metrics = json.loads((result.run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["a_distance"] == []
