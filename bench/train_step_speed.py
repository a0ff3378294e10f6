"""Fine-tuning step speed on the CPU: what each option buys, alone and combined.

One training step of the packaged all-MiniLM-L6-v2 (mean pooling, dropout, a linear layer,
cross-entropy; AdamW, clipping at 1.0) on the same length-grouped, dynamically padded batches of
movie sentences, under each option against the baseline (eager PyTorch, for-loop AdamW, fp32,
``loss.item()`` every step), all in one run: every repeat runs every case once, in rotated order,
from the same initial weights and dropout seed; medians of the repeats are reported, and each
case's ratio is the median of its per-repeat ratios to that repeat's baseline. Each case
also reports its mean loss over the timed steps minus the baseline's (same batches, same start),
so an option that changes the numbers shows. ``torch.compile`` is timed after its compilation
(warm-up steps over several batch shapes); its compile seconds are printed apart, with the
number of steps it needs to pay them back.

Run (a few minutes on 2 cores; ``--compile`` adds a few more)::

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python bench/train_step_speed.py --steps 8 --repeats 3
    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python bench/train_step_speed.py --steps 8 --repeats 3 --compile
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from _common import machine, median, table


@dataclass(frozen=True)
class Case:
    """One combination of options (the baseline is ``Case()``)."""

    optimizer: str = "for-loop"  # AdamW implementation: for-loop | foreach | fused
    attention: str = "sdpa"  # attn_implementation of the encoder: sdpa | eager
    sync_every_step: bool = True  # loss.item() each step (the loop's NaN check)
    autocast_bf16: bool = False  # CPU autocast to bf16
    compile: str = ""  # torch.compile of the model (forward + backward): "" | "whole" | "regional"
    threads: int = 0  # torch.set_num_threads (0: the run's --threads)
    flush_denormal: bool = False  # torch.set_flush_denormal(True)
    pad_multiple: int = 1  # pad every batch to a multiple of this many tokens
    grouped: bool = True  # length-grouped batches (False: random batches, as Trainer's default)


def _model(path: str, attention: str, n_labels: int) -> Any:
    import torch
    from transformers import AutoModel

    class MeanPoolClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = AutoModel.from_pretrained(path, attn_implementation=attention)
            self.drop = torch.nn.Dropout(0.1)
            self.out = torch.nn.Linear(self.body.config.hidden_size, n_labels)

        def forward(self, input_ids: Any, attention_mask: Any, labels: Any, token_type_ids: Any = None) -> Any:
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            logits = self.out(self.drop(pooled))
            return torch.nn.functional.cross_entropy(logits.float(), labels)

    return MeanPoolClassifier()


def _batches(encoder: Any, texts: list[str], labels: np.ndarray, batch_size: int, n: int, grouped: bool,
             pad_multiple: int, seed: int) -> list[dict[str, Any]]:
    """The first ``n`` training batches of an epoch (length-grouped as the loop draws them)."""
    import torch

    from textransfer.training.batching import LengthGroupedBatchSampler, TokenCollator

    columns = encoder.tokenize_all(texts)
    lengths = [len(x) for x in columns["input_ids"]]
    collate = TokenCollator(encoder.collate_ids, columns, labels)
    if grouped:
        order = list(LengthGroupedBatchSampler(lengths, batch_size, shuffle=True, seed=seed))
    else:
        perm = np.random.default_rng(seed).permutation(len(texts))
        order = [perm[i : i + batch_size].tolist() for i in range(0, len(perm), batch_size)]
    out = []
    for idx in order[:n]:
        batch = collate(idx)
        if pad_multiple > 1:
            t = batch["input_ids"].shape[1]
            extra = -t % pad_multiple
            batch = {k: torch.nn.functional.pad(v, (0, extra)) if v.ndim == 2 else v for k, v in batch.items()}
        out.append(batch)
    return out


def _optimizer(model: Any, kind: str) -> Any:
    import torch

    flags = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, **flags)


class Runner:
    """Builds a case's model and optimizer from the shared initial weights and times its steps."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        from textransfer.data import load
        from textransfer.encoders import create_encoder
        from textransfer.resources import resolve_model

        self.args = args
        self.path = str(resolve_model(args.model))
        data = load({"source": "movies", "neutral_band": 0.5})
        self.labels_all = sorted(set(data.labels))
        self.texts = list(data.texts)
        self.y = np.array([self.labels_all.index(v) for v in data.labels], dtype=np.int64)
        self.encoder = create_encoder("transformer", model=args.model, max_length=args.max_length)
        torch.manual_seed(args.seed)
        self.init = {a: _model(self.path, a, len(self.labels_all)) for a in ("sdpa", "eager")}
        self.init["eager"].load_state_dict(self.init["sdpa"].state_dict())
        self.default_threads = torch.get_num_threads()
        self.base_threads = args.threads or self.default_threads
        self.compile_seconds: dict[str, list[float]] = {}

    def batches(self, case: Case) -> list[dict[str, Any]]:
        a = self.args
        return _batches(self.encoder, self.texts, self.y, a.batch_size, a.warmup + a.steps, case.grouped,
                        case.pad_multiple, a.seed)

    def run(self, name: str, case: Case) -> tuple[float, float]:
        """Samples/s over the timed steps and their mean loss."""
        import torch

        a = self.args
        batches = self.batches(case)
        torch.set_num_threads(case.threads or self.base_threads)
        torch.set_flush_denormal(case.flush_denormal)
        try:
            model = copy.deepcopy(self.init[case.attention]).train()
            optimizer = _optimizer(model, case.optimizer)
            forward: Callable[..., Any] = model
            if case.compile == "whole":
                forward = torch.compile(model)
            elif case.compile == "regional":  # each transformer layer compiled once, reused 6 times
                from accelerate.utils import compile_regions

                forward = compile_regions(model)
            params = [p for p in model.parameters() if p.requires_grad]
            torch.manual_seed(a.seed)  # the same dropout masks in every case

            def step(batch: dict[str, Any]) -> Any:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=case.autocast_bf16):
                    loss = forward(**batch)
                if case.sync_every_step and not np.isfinite(loss.item()):
                    raise RuntimeError("loss is not finite")
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad()
                return loss.detach()

            t0 = time.perf_counter()
            for batch in batches[: a.warmup]:
                step(batch)
            warm = time.perf_counter() - t0
            self.compile_seconds.setdefault(name, []).append(warm)
            losses, samples = [], 0
            t0 = time.perf_counter()
            for batch in batches[a.warmup :]:
                losses.append(step(batch))
                samples += len(batch["labels"])
            seconds = time.perf_counter() - t0
            mean_loss = float(torch.stack(losses).mean())  # one host sync at the end
        finally:
            torch.set_num_threads(self.default_threads)
            torch.set_flush_denormal(False)
        return samples / seconds, mean_loss


def _cases(with_compile: bool, with_bf16: bool, base_threads: int, cores: int) -> dict[str, Case]:
    base = Case()
    other_threads = 1 if base_threads > 1 else cores
    cases = {
        "baseline (eager, for-loop AdamW, fp32, sdpa)": base,
        "foreach AdamW": replace(base, optimizer="foreach"),
        "fused AdamW": replace(base, optimizer="fused"),
        "eager attention (not sdpa)": replace(base, attention="eager"),
        "no per-step loss.item()": replace(base, sync_every_step=False),
        "flush denormals": replace(base, flush_denormal=True),
        f"{other_threads} thread(s) instead of {base_threads}": replace(base, threads=other_threads),
        "pad to multiple of 8": replace(base, pad_multiple=8),
        "random batches (no length grouping)": replace(base, grouped=False),
    }
    if with_bf16:
        cases["bf16 autocast"] = replace(base, autocast_bf16=True)
    best = replace(base, optimizer="fused", sync_every_step=False)
    cases["fused AdamW + no per-step sync"] = best
    if with_bf16:  # what textransfer's loop runs at mixed_precision: bf16
        cases["bf16 autocast + fused AdamW + no per-step sync"] = replace(best, autocast_bf16=True)
        cases["bf16 autocast + fused AdamW + no per-step sync + eager attention"] = replace(
            best, autocast_bf16=True, attention="eager")
    if with_compile:
        cases["torch.compile (whole model)"] = replace(base, compile="whole")
        cases["torch.compile (regional: per layer)"] = replace(base, compile="regional")
        cases["torch.compile regional + fused AdamW"] = replace(base, compile="regional", optimizer="fused")
    return cases


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8, help="timed steps per case and repeat")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    p.add_argument("--repeats", type=int, default=3, help="rounds over all cases, rotated order (median)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--compile", action="store_true", help="add torch.compile cases (minutes of compiling)")
    p.add_argument("--no-bf16", action="store_true", help="leave out the bf16 autocast case")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads of every case (0: torch's default); one case tries the other count")
    p.add_argument("--only", nargs="*", default=None, help="case names to run besides the baseline (substrings)")
    args = p.parse_args(argv)
    # A fresh inductor cache: the compile seconds reported are a cold compile's, as a user's first run.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")

    from textransfer.precision import detect_capabilities, resolve_mixed_precision

    print(f"CPU: {detect_capabilities().describe()}; mixed_precision auto -> {resolve_mixed_precision('auto')}")
    print(f"machine: {machine()}")
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} (5 min {load_before[1]:.2f})")
    runner = Runner(args)
    cases = _cases(args.compile, not args.no_bf16, runner.base_threads, os.cpu_count() or 1)
    if args.only:
        first = next(iter(cases))
        cases = {n: c for n, c in cases.items() if n == first or any(s in n for s in args.only)}
    names = list(cases)
    speed: dict[str, list[float]] = {n: [] for n in names}
    loss: dict[str, float] = {}
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            sps, mean_loss = runner.run(name, cases[name])
            speed[name].append(sps)
            loss[name] = mean_loss
            print(f"repeat {r + 1}: {name}: {sps:.1f} samples/s, mean loss {mean_loss:.4f}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    base_name = names[0]
    base = median(speed[base_name])
    base_warm = median(runner.compile_seconds[base_name])
    base_step = args.batch_size / base
    rows = []
    for name in names:
        sps = median(speed[name])
        warm = median(runner.compile_seconds[name])
        note = ""
        if cases[name].compile:  # compiled once, in the first repeat; later repeats reuse the code
            warm = max(runner.compile_seconds[name])
            extra = warm - base_warm
            saved = base_step - args.batch_size / sps
            pays = f"pays after {extra / saved:.0f} steps" if saved > 0 else "never pays"
            note = f"compile + {args.warmup} warm-up steps {warm:.0f} s ({extra:.0f} s over eager): {pays}"
        # Each repeat's ratio to the baseline of the same repeat, then the median: on a shared machine
        # the load drifts between repeats far more than within one.
        ratio = median([x / b for x, b in zip(speed[name], speed[base_name], strict=True)])
        rows.append([name, f"{sps:.1f}", f"{ratio:.2f}", f"{loss[name] - loss[base_name]:+.4f}", note])
    print(f"\n## Fine-tuning step speed, MiniLM-L6, batch {args.batch_size}, max_length {args.max_length}, "
          f"{args.steps} timed steps x {args.repeats} repeats (medians)\n")
    print(table(["option", "samples/s (median)", "x baseline (median of per-repeat ratios)", "loss - baseline",
                 "note"], rows))
    print("\nCompiled cases share torch's compile caches within the run: a later compiled case may reuse "
          "code an earlier one built (its compile seconds are then too low).")
    print(f"\nload average after: {load_after[0]:.2f} (5 min {load_after[1]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
