"""The one training loop on a tiny module."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from textransfer.training import TrainingArgs, TrainingError, train  # noqa: E402
from textransfer.training.optim import param_groups  # noqa: E402


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

    from textransfer.training.optim import linear_warmup_schedule

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
    """A core install (no transformers) can train a head: the loop and what it sets up with
    import transformers nowhere."""
    import ast
    from pathlib import Path

    from textransfer.training import _setup, args, loop, optim

    for module in (loop, _setup, optim, args):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in imported if m.split(".")[0] == "transformers"}, module.__name__


# -- speed options: optimizer_kernel, compile (what they select, not how fast they are) ---------


@pytest.mark.parametrize(("settings", "message"), [
    ({"compile": "fast"}, "training.compile"),
    ({"compile": 2}, "training.compile"),
    ({"optimizer_kernel": "adam"}, "training.optimizer_kernel"),
    ({"threads": 0}, "training.threads"),
    ({"threads": "many"}, "training.threads"),
])
def test_unknown_speed_settings_are_refused_at_config_load(settings, message) -> None:
    from textransfer.training.args import training_args

    with pytest.raises(ValueError, match=message):
        training_args(settings)
    with pytest.raises(ValueError, match=message):
        TrainingArgs(**settings)


@pytest.mark.parametrize(("kernel", "flag", "value"), [
    ("auto", "fused", True), ("fused", "fused", True), ("foreach", "foreach", True), ("for-loop", "foreach", False),
])
def test_optimizer_kernel_reaches_adamw(monkeypatch, kernel, flag, value) -> None:
    """The loop builds AdamW with the kernel asked for; ``auto`` picks the fused one on a CPU."""
    import textransfer.training._setup as setup

    built = []
    real = setup.make_optimizer
    monkeypatch.setattr(setup, "make_optimizer", lambda *a, **kw: built.append(real(*a, **kw)) or built[-1])
    train(Tiny(), _loader(), None, TrainingArgs(epochs=1, optimizer_kernel=kernel))
    assert len(built) == 1 and built[0].defaults[flag] is value


def test_optimizer_kernels_give_the_same_weights() -> None:
    results = []
    for kernel in ("fused", "for-loop"):
        m = Tiny()
        torch.manual_seed(0)
        m.load_state_dict(Tiny().state_dict())
        train(m, _loader(), None, TrainingArgs(epochs=2, lr=0.1, seed=1, optimizer_kernel=kernel))
        results.append(m.out.weight.detach().clone())
    assert not torch.equal(results[0], Tiny().out.weight)  # it trained
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)


class _CountingTwin(torch.nn.Module):
    """Stands in for the compiled module: counts the training forwards that go through it."""

    def __init__(self, module):
        super().__init__()
        self.inner, self.calls = module, 0

    def forward(self, **batch):
        self.calls += 1
        return self.inner(**batch)


@pytest.mark.parametrize(("compile_", "min_steps", "compiled"), [
    (False, 1, False), (True, None, True), ("auto", None, False), ("auto", 5, False), ("auto", 4, True),
])
def test_compile_setting_decides_what_the_steps_call(monkeypatch, compile_, min_steps, compiled) -> None:
    """compile: true always trains through the compiled twin; auto only from the device's
    COMPILE_AUTO_MIN_STEPS optimiser steps (here 4 batches x 1 epoch = 4 steps; None: never);
    false never."""
    import textransfer.training._setup as setup

    twins = []
    monkeypatch.setattr(setup, "COMPILE_AUTO_MIN_STEPS", {"cpu": min_steps})
    monkeypatch.setattr(setup, "cxx_compiler", lambda: "g++")
    monkeypatch.setattr(setup, "compiled_twin", lambda module, n: twins.append(_CountingTwin(module)) or twins[-1])
    m = Tiny()
    before = m.out.weight.detach().clone()
    train(m, _loader(), _loader(seed=1), TrainingArgs(epochs=1, compile=compile_))
    assert not torch.equal(m.out.weight, before)
    assert (len(twins) == 1 and twins[0].calls == 4) is compiled  # 4 training batches, not the val ones
    assert len(twins) == (1 if compiled else 0)


def test_compile_without_a_cxx_compiler_names_the_fix(monkeypatch) -> None:
    import textransfer.training._setup as setup

    monkeypatch.setattr(setup, "cxx_compiler", lambda: None)
    with pytest.raises(TrainingError, match="needs a C.. compiler"):
        train(Tiny(), _loader(), None, TrainingArgs(epochs=1, compile=True))
    train(Tiny(), _loader(), None, TrainingArgs(epochs=1, compile="auto"))  # auto falls back to eager


class _Blocks(torch.nn.Module):
    """A transformer-like module: a list of identical blocks (what regional compilation targets)."""

    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(3))
        self.out = torch.nn.Linear(4, 2)

    def forward(self, features, labels):
        for block in self.blocks:
            features = torch.relu(block(features))
        logits = self.out(features)
        return {"logits": logits, "loss": torch.nn.functional.cross_entropy(logits, labels)}


def test_the_compiled_twin_compiles_each_repeated_block_and_shares_the_parameters() -> None:
    from torch._dynamo.eval_frame import OptimizedModule

    from textransfer.training._setup import compiled_twin as _compiled

    m = _Blocks()
    twin = _compiled(m, 1)
    assert all(isinstance(b, OptimizedModule) for b in twin.blocks)
    assert {id(p) for p in twin.parameters()} == {id(p) for p in m.parameters()}
    assert type(m.blocks[0]) is torch.nn.Linear  # the module itself stays eager
    assert isinstance(_compiled(Tiny(), 1), OptimizedModule)  # no repeated blocks: compiled whole


def test_compiled_training_matches_eager_training(monkeypatch) -> None:
    """compile: true trains through dynamo (graphs captured) to the weights eager steps reach.
    Dynamo + AOTAutograd without inductor's C++ build (backend aot_eager), to stay quick."""
    import functools

    from torch._dynamo.utils import counters

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    torch._dynamo.reset()
    counters.clear()
    results = []
    for compile_ in (False, True):
        torch.manual_seed(0)
        m = _Blocks()
        train(m, _loader(), None, TrainingArgs(epochs=2, lr=0.1, seed=1, compile=compile_))
        results.append([p.detach().clone() for p in m.parameters()])
        assert type(m.blocks[0]) is torch.nn.Linear
    assert counters["stats"]["unique_graphs"] >= 1  # the compiled run went through dynamo
    for eager, compiled in zip(*results, strict=True):
        torch.testing.assert_close(eager, compiled, rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()


def test_a_second_fit_may_use_another_mixed_precision() -> None:
    """Accelerate keeps one precision per process; a later fit at another one (a notebook, a
    benchmark that ran Trainer at bf16 first) must not fail with 'restart your runtime'."""
    for precision in ("bf16", "no", "bf16"):
        res = train(Tiny(), _loader(), None, TrainingArgs(epochs=1, mixed_precision=precision))
        assert len(res.history) == 1
        assert res.mixed_precision == precision  # what the fit ran at is recorded


def test_auto_training_precision_is_recorded_as_resolved(monkeypatch) -> None:
    """`mixed_precision: auto` is recorded as what it resolved to, in the result and in the
    history a tracker writes."""
    import textransfer.precision as prec
    from textransfer import tracking

    for caps, expected in ((prec.Capabilities(cpu="t", amx_bf16=True), "bf16"), (prec.Capabilities(cpu="t"), "no")):
        monkeypatch.setattr(prec, "detect_capabilities", lambda caps=caps: caps)
        with tracking.recording(None, "") as record:
            res = train(Tiny(), _loader(), None, TrainingArgs(epochs=1, mixed_precision="auto"))
        assert res.mixed_precision == expected
        assert [fit["mixed_precision"] for fit in record.fits] == [expected]


class _ThreadSpy(Tiny):
    """Records torch's thread count at every forward."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def forward(self, features, labels):
        self.seen.add(torch.get_num_threads())
        return super().forward(features, labels)


@pytest.mark.parametrize(("setting", "busy", "expected"), [(1, None, 1), ("auto", 7.0, 1), ("auto", 0.0, 2)])
def test_threads_apply_during_the_fit_and_are_restored(monkeypatch, setting, busy, expected) -> None:
    """threads: N trains with N threads; auto gives torch the cores other processes leave free
    (here 2 cores, and other work busy on 7 or on none); torch's own setting is back afterwards."""
    import textransfer.training.threads as threads

    monkeypatch.setattr(threads, "_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: busy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        m = _ThreadSpy()
        train(m, _loader(), _loader(seed=1), TrainingArgs(epochs=1, threads=setting))
        assert m.seen == {expected}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_busy_elsewhere_counts_other_processes_not_this_one(monkeypatch, tmp_path) -> None:
    import textransfer.training.threads as threads

    loadavg = tmp_path / "loadavg"
    loadavg.write_text("7.90 6.10 4.00 9/312 4242\n")  # 9 runnable tasks now
    monkeypatch.setattr(threads, "_own_running_threads", lambda: 2)  # 2 of them are ours
    assert threads.busy_elsewhere(samples=3, interval=0.0, loadavg=str(loadavg)) == 7.0
    assert threads.busy_elsewhere(loadavg=str(tmp_path / "missing")) is None
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: None)
    assert threads.auto_threads(2) == 2  # nothing known: torch's setting stays


# -- host syncs: a step's loss is read back a step late ------------------------------------------


def test_no_loss_is_read_back_between_a_forward_and_its_backward(monkeypatch) -> None:
    """On a GPU, reading the loss right after the forward makes the host wait for the device
    before it may launch the backward; the loop reads each loss once the next batch is launched."""
    import accelerate

    events: list[str] = []

    class Logged(Tiny):
        def forward(self, features, labels):
            events.append("forward")
            return super().forward(features, labels)

    real_item, real_backward = torch.Tensor.item, accelerate.Accelerator.backward
    monkeypatch.setattr(torch.Tensor, "item", lambda t: events.append("item") or real_item(t))
    monkeypatch.setattr(accelerate.Accelerator, "backward",
                        lambda self, loss, **kw: events.append("backward") or real_backward(self, loss, **kw))
    res = train(Logged(), _loader(64), None, TrainingArgs(epochs=1, patience=None))
    steps = events[events.index("forward"):]  # (set-up reads a value or two before training)
    assert steps.count("forward") == 4 and steps.count("backward") == 4 and steps.count("item") == 4
    assert all(steps[steps.index("forward", i) + 1] == "backward" for i in range(len(steps)) if steps[i] == "forward")
    assert steps[:5] == ["forward", "backward", "forward", "backward", "item"] and steps[-1] == "item"
    assert math.isfinite(res.history[0]["train_loss"])


def test_trackers_get_each_optimiser_steps_loss_and_lr() -> None:
    """Read back late, each step's loss and learning rate still reach the tracker under its own
    step: the mean over the step's accumulated batches, and the lr after that step."""
    from textransfer import tracking

    class Constant(Tiny):  # batch i's loss is i + 1 (and a gradient to step on)
        calls = 0

        def forward(self, features, labels):
            out = super().forward(features, labels)
            Constant.calls += 1
            return {"logits": out["logits"], "loss": out["loss"] * 0 + Constant.calls + out["loss"] * 1e-9}

    logged: list[tuple[int, float, float]] = []

    class Tracker:
        log_every = 1

        def log(self, values, step):
            if "train/loss" in values:  # (epoch rows come as epoch/...)
                logged.append((step, values["train/loss"], values["train/lr"]))

    with tracking.recording(Tracker()):  # type: ignore[arg-type]
        res = train(Constant(), _loader(128), None,
                    TrainingArgs(epochs=1, lr=0.1, grad_accum=2, warmup_ratio=0.0, patience=None))
    # 8 batches, 2 per step: the losses 1..8 give step means 1.5, 3.5, 5.5, 7.5; lr decays 0.1 -> 0.
    assert [s for s, _, _ in logged] == [1, 2, 3, 4]
    assert [loss for _, loss, _ in logged] == pytest.approx([1.5, 3.5, 5.5, 7.5], abs=1e-6)
    assert [lr for _, _, lr in logged] == pytest.approx([0.075, 0.05, 0.025, 0.0])
    assert res.history[0]["train_loss"] == pytest.approx(4.5, abs=1e-6)


class _AutocastSpy(Tiny):
    """Records whether each forward ran under CPU autocast."""

    def __init__(self):
        super().__init__()
        self.autocast: list[bool] = []

    def forward(self, features, labels):
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return super().forward(features, labels)


def test_a_fit_that_asks_for_no_precision_does_not_inherit_the_last_ones() -> None:
    """After a bf16 fit, a fit with mixed_precision unset trains at full precision (what
    Accelerate does for "unset" in a fresh process), not at the bf16 left in the process."""
    train(Tiny(), _loader(), None, TrainingArgs(epochs=1, mixed_precision="bf16"))
    spy = _AutocastSpy()
    train(spy, _loader(), None, TrainingArgs(epochs=1))
    assert spy.autocast and not any(spy.autocast)


def test_a_module_trained_under_bf16_predicts_at_full_precision_afterwards() -> None:
    """The trained module comes back without Accelerate's autocast wrapper: in memory it
    predicts what the saved model will predict, in fp32."""
    spy = _AutocastSpy()
    train(spy, _loader(), None, TrainingArgs(epochs=1, mixed_precision="bf16"))
    assert all(spy.autocast)  # trained under bf16 autocast
    spy.autocast.clear()
    x = torch.randn(8, 4)
    out = spy(x, torch.zeros(8, dtype=torch.long))["logits"]
    assert spy.autocast == [False]
    torch.testing.assert_close(out, spy.out(spy.frozen(x)) * spy.scale)
