"""Two processes on one CPU machine (``torchrun --nproc_per_node 2``, gloo): the same fine-tuning
code trains through DDP, evaluates through ``gather_for_metrics`` and writes one checkpoint.

``accelerate launch --cpu --num_processes 2`` starts a single process with accelerate 1.15 here
(see ../shared/RESOURCES.md), so the test uses torchrun, which accelerate picks up the same way (``--standalone``: torchrun
picks its own free port, see tests/fixtures/torchrun.py).
"""

from __future__ import annotations

import json
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests import test_finetune as _ft  # noqa: E402
from tests.fixtures.torchrun import run_torchrun  # noqa: E402

word_bert_dir = _ft.word_bert_dir  # the session fixture, shared with test_finetune.py

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import textransfer
    from accelerate import PartialState
    from accelerate.utils import gather_object
    from textransfer.encoders.transformer import weights_digest
    from tests.conftest import make_toy
    from textransfer.strategies.base import FitContext
    from textransfer.training import TrainingArgs

    bert, out = sys.argv[1], sys.argv[2]
    toy = make_toy("movies", ["film", "movie", "plot", "actor"], n=64, seed=1)
    strategy = textransfer.create_strategy("finetune", gradual_unfreezing=True, val_fraction=0.25)
    context = FitContext(training=TrainingArgs(epochs=12, lr=3e-3, batch_size=8, patience=None, seed=0),
                         checkpoint_dir=out + "/checkpoints")
    enc = textransfer.create_encoder("transformer", model=bert, max_length=16)
    head = textransfer.create_head("linear")
    result = strategy.fit_with_context(enc, head, toy, context=context)
    clf = result.classifier
    state = PartialState()
    # DDP keeps the replicas identical, also while gradual unfreezing changes what trains.
    digests = gather_object([weights_digest(enc.module) + weights_digest(head.module)])
    if state.is_main_process:
        acc = float(np.mean(np.array(clf.predict(toy.texts)) == np.array(toy.labels)))
        hist = result.history
        # A file, not stdout: the other process shares stdout and its output can interleave.
        with open(out + "/result.json", "w") as fh:
            json.dump({"processes": state.num_processes, "type": str(state.distributed_type),
                       "accuracy": acc, "val_accuracy": hist[-1]["val_accuracy"],
                       "replicas_equal": len(set(digests)) == 1, "n_digests": len(digests)}, fh)
    # Leave together and close gloo before exit: a rank that exits while gloo's threads still
    # run can abort ("terminate called without an active exception", SIGABRT).
    state.wait_for_everyone()
    state.destroy_process_group()
    """
)


@pytest.mark.slow
def test_two_process_cpu_run(word_bert_dir, tmp_path):
    script = tmp_path / "ddp_finetune.py"
    script.write_text(SCRIPT)
    proc = run_torchrun([script, word_bert_dir, tmp_path])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["processes"] == 2 and "MULTI_CPU" in result["type"]
    assert result["replicas_equal"] and result["n_digests"] == 2
    assert result["accuracy"] >= 0.9
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch-12"]


@pytest.mark.slow
def test_two_process_run_through_the_cli_writes_outputs_once(word_bert_dir, tmp_path):
    import csv

    import yaml

    from tests.conftest import make_toy

    toy = make_toy("movies", ["film", "movie", "plot", "actor"], n=48, seed=1)
    with (tmp_path / "toy.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(zip(toy.texts, toy.labels, strict=True))
    cfg = {
        "name": "ddp", "output_dir": str(tmp_path / "runs"), "cache_dir": None,
        "data": {"train": str(tmp_path / "toy.csv"), "test_size": 0.25},
        "encoder": {"name": "transformer", "model": str(word_bert_dir), "max_length": 16},
        "strategy": {"name": "finetune", "head": "linear"},
        "training": {"epochs": 8, "lr": 3e-3, "batch_size": 8, "patience": None},
    }
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_torchrun(["-m", "textransfer.cli", "-q", "run", tmp_path / "ddp.yaml"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "ddp"
    metrics = json.loads((run_dir / "metrics.json").read_text())["setups"]["ddp"]
    assert metrics["eval"]["test"]["accuracy"] >= 0.9
    assert (run_dir / "model" / "textransfer.json").exists()
    assert not [p.name for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]  # no temp leftovers
