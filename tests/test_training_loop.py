"""The one training loop on a tiny module."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from textransfer.training import TrainingArgs, TrainingError, train  # noqa: E402
from textransfer.training.loop import param_groups  # noqa: E402


class Tiny(torch.nn.Module):
    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.frozen = torch.nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.out = torch.nn.Linear(4, 2)
        self.scale = scale

    def forward(self, features, labels):
        logits = self.out(self.frozen(features)) * self.scale
        return {"logits": logits, "loss": torch.nn.functional.cross_entropy(logits, labels)}


def _loader(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    rows = [{"features": x[i], "labels": y[i]} for i in range(n)]
    return DataLoader(rows, batch_size=16, collate_fn=lambda b: {k: torch.stack([r[k] for r in b]) for k in b[0]})


def test_trains_only_trainable_parameters_and_learns():
    m = Tiny()
    frozen_before = m.frozen.weight.clone()
    res = train(m, _loader(256), _loader(seed=1), TrainingArgs(epochs=20, lr=0.1, weight_decay=0.0, patience=None))
    assert torch.equal(m.frozen.weight, frozen_before)
    assert res.history[-1]["val_accuracy"] >= 0.8
    assert all(p.requires_grad for g in param_groups(m, 1e-3, 0.01) for p in g["params"])


def test_no_decay_for_biases():
    groups = param_groups(Tiny(), 1e-3, 0.5)
    decays = {tuple(p.shape): g["weight_decay"] for g in groups for p in g["params"]}
    assert decays[(2, 4)] == 0.5 and decays[(2,)] == 0.0


def test_nan_loss_stops_with_message():
    with pytest.raises(TrainingError, match="loss became nan"):
        train(Tiny(scale=float("nan")), _loader(), None, TrainingArgs(epochs=1))


def test_early_stopping_restores_best_weights():
    m = Tiny()
    res = train(m, _loader(), _loader(seed=1), TrainingArgs(epochs=50, lr=0.5, patience=2))
    assert res.best_epoch is not None
    best = max(h["val_accuracy"] for h in res.history)
    # The restored weights give the best validation accuracy seen.
    x = torch.cat([b["features"] for b in _loader(seed=1)])
    y = torch.cat([b["labels"] for b in _loader(seed=1)])
    acc = float((m(x, y)["logits"].argmax(-1) == y).float().mean())
    assert np.isclose(acc, best)


def test_seeded_runs_are_repeatable():
    a, b = Tiny(), Tiny()
    b.load_state_dict(a.state_dict())
    train(a, _loader(), None, TrainingArgs(epochs=3, seed=3))
    train(b, _loader(), None, TrainingArgs(epochs=3, seed=3))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(("warmup", "total"), [(0, 10), (3, 10), (10, 10), (1, 1)])
def test_warmup_schedule_matches_transformers(warmup: int, total: int) -> None:
    """The loop's own torch schedule gives the learning rates transformers' linear schedule gives."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from textransfer.training.loop import linear_warmup_schedule

    def rates(make) -> list[float]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        sched = make(opt, warmup, total)
        out = []
        for _ in range(total + 2):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    assert rates(linear_warmup_schedule) == pytest.approx(rates(get_linear_schedule_with_warmup), abs=1e-12)


def test_the_loop_does_not_import_transformers() -> None:
    """A core install (no transformers) can train a head: the loop imports transformers nowhere."""
    import ast
    from pathlib import Path

    import textransfer.training.loop as loop

    tree = ast.parse(Path(loop.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.split(".")[0] == "transformers"}
