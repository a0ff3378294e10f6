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


@pytest.fixture
def bench() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("label_free_estimators", BENCH / "label_free_estimators.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


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
