"""bench/label_free_estimators.py: it records the very probabilities a cross-domain run computed
its label-free estimates from, and scores every estimator on them."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.test_verdicts import trust_config  # noqa: F401  (the fixture)
from textransfer.evaluation.label_free import METHODS, label_free_estimates

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _bench_script(name: str) -> Any:
    """The bench script ``bench/<name>.py`` as a module (bench/ on sys.path meanwhile)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture
def bench() -> Any:
    yield from _bench_script("label_free_estimators")


def test_recorded_arrays_reproduce_the_report_and_are_scored(
    bench: Any,
    trust_config: dict[str, Any],  # noqa: F811  (pytest passes the fixture imported above)
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The toy run of the trust tests, without its target-only curves.
    config = {**trust_config, "kind": "crossdomain", "name": "lf", "evaluation": {"n_boot": 50, "target_only": False}}
    path = tmp_path / "lf.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    assert bench.main([str(path), "--out", str(out), "--rows"]) == 0

    # One file per labeled cross-domain row and seed: the unlabeled `shop` target has no truth.
    files = sorted(p.name for p in (out / "arrays").glob("*.npz"))
    assert files == [f"tfidf+{s}__movies__products__{seed}.npz" for s in ("coral", "frozen") for seed in (0, 1)]
    metrics = json.loads((out / "run" / "lf" / "metrics.json").read_text())
    row = next(r for r in metrics["rows"] if r["setup"] == "tfidf+frozen" and r["target"] == "products")
    per_seed = []
    for seed in (0, 1):
        a = np.load(out / "arrays" / f"tfidf+frozen__movies__products__{seed}.npz", allow_pickle=False)
        assert len(a["target_labels"]) == row["label_free"]["n_target"] == len(a["target_probs"])
        per_seed.append(label_free_estimates(a["source_val_probs"], a["source_val_labels"], a["target_probs"]))
        true = np.mean(a["target_probs"].argmax(axis=1) == a["target_labels"])
        assert true == pytest.approx(row["per_seed"][seed]["cross_domain"]["accuracy"])
    for m in METHODS:  # the arrays give the run's own estimates
        assert np.mean([e["estimates"][m] for e in per_seed]) == pytest.approx(row["label_free"]["estimates"][m]["mean"])

    table = capsys.readouterr().out
    assert "| estimator | all (2 rows) |" in table and "| cot |" in table and "| no_shift |" in table
    rows = json.loads((out / "estimates.json").read_text())
    assert len(rows) == 4 and {r["pair"] for r in rows} == {"movies->products"}
    # Scoring again from the recorded arrays alone gives the same rows.
    again = tmp_path / "again"
    assert bench.main(["--from", str(out), "--out", str(again), "--group", f"toy={out}"]) == 0
    assert json.loads((again / "estimates.json").read_text()) == rows
    assert "| estimator | all (2 rows) | toy (2 rows) |" in capsys.readouterr().out
    assert bench.main(["--from", str(out), "--skip", "movies->products"]) == 0
    assert "| estimator | all (0 rows) |" in capsys.readouterr().out


@pytest.fixture
def alternatives() -> Any:
    yield from _bench_script("label_free_alternatives")


def _shifted(n: int, positive: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated two-class probabilities of a 1-d problem (x ~ N(+-1, 1), classes 50/50 at
    training) on rows whose positive share is ``positive``: pure label shift."""
    y = (rng.random(n) < positive).astype(np.int64)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    p1 = 1.0 / (1.0 + np.exp(-2.0 * x))
    return np.stack([1 - p1, p1], axis=1), y


def test_alternatives_score_recorded_arrays(alternatives: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    arrays = tmp_path / "rec" / "arrays"
    arrays.mkdir(parents=True)
    src_probs, src_y = _shifted(2000, 0.5, rng)
    tgt_probs, tgt_y = _shifted(2000, 0.85, rng)
    for seed in (0, 1):
        for setup, noise in (("tfidf+frozen", 0.8), ("glove+frozen", 0.5), ("minilm-sentence+frozen", 0.0)):
            def noisy(p: np.ndarray, noise: float = noise) -> np.ndarray:
                q = np.clip(p[:, 1] + rng.normal(0, noise * 0.3, len(p)), 0.01, 0.99)
                return np.stack([1 - q, q], axis=1)
            np.savez(arrays / f"{setup}__a__b__{seed}.npz", source_val_probs=noisy(src_probs), source_val_labels=src_y,
                     target_probs=noisy(tgt_probs), target_labels=tgt_y)
    # Pure label shift with calibrated posteriors: the case EM prior correction is made for.
    em, bbse = alternatives.label_shift({"source_val_probs": src_probs, "source_val_labels": src_y,
                                         "target_probs": tgt_probs, "target_labels": tgt_y})
    assert em > 0.02 and bbse > 0.02
    # Two models' disagreement from their error rates and the correlation of their errors.
    assert alternatives._disagreement(0.2, 0.3, 0.0) == pytest.approx(0.2 + 0.3 - 2 * 0.06)
    assert alternatives._disagreement(0.2, 0.2, 1.0) == pytest.approx(0.0)
    assert alternatives._family("minilm-ft+finetune") == alternatives._family("minilm-sentence+coral") == "minilm"
    assert alternatives.main([str(tmp_path / "rec")]) == 0
    out = capsys.readouterr().out
    assert "3 rows (setup and pair, seeds averaged), 2 pair-seed cases" in out
    for name in ("| cot |", "| joint lam=1 |", "| indep-ref |", "| phi-ref margin 0.08 |", "| no_shift |", "| blend |"):
        assert name in out
    assert "EM mean +" in out  # the synthetic target is a pure label shift
    with pytest.raises(SystemExit):
        alternatives.main([str(tmp_path / "rec"), "--skip", "a->b"])  # nothing left: a clear error
