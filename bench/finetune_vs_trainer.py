"""Fine-tuning throughput and accuracy: textransfer's loop vs ``transformers.Trainer``.

The same model (all-MiniLM-L6-v2 body, mean pooling, a linear layer), data (a seeded, stratified
subset of the movie sentences, 80/20 split), batch size, max_length, epochs, lr, seed and
schedule (no warmup, linear decay, AdamW, clipping at 1.0, no weight decay) go through:

1. textransfer: ``FinetuneStrategy`` (length-grouped batches, dynamic padding);
2. ``Trainer`` with its defaults (random batches, ``DataCollatorWithPadding``);
3. ``Trainer`` with length grouping (``group_by_length=True``; ``train_sampling_strategy=
   "group_by_length"`` in transformers 5).

Prints training samples/s (wall time of the training call only), the ratios textransfer/Trainer,
and test accuracy of each. textransfer's timed ``fit`` includes tokenising the training texts
(once, up front: ~0.04 s for 1,200 sentences); the Trainer runs get theirs tokenised before the
clock starts, so the comparison leans, slightly, towards Trainer. Run from the repository root (or after ``pip install -e .``)::

    HF_HUB_OFFLINE=1 PYTHONPATH=. python bench/finetune_vs_trainer.py --subset 1500 --repeats 3
    HF_HUB_OFFLINE=1 PYTHONPATH=. python bench/finetune_vs_trainer.py --subset 0 --epochs 2 --bf16   # GPU, all rows

``--mixed-precision auto`` runs textransfer at ``training.mixed_precision: auto`` (bf16 where it
is faster: CPUs with AMX, AVX-512 BF16 CPUs where the probe measured it faster, GPUs with bf16;
fp32 elsewhere) and adds Trainer rows at fp32 and at ``bf16=True``
(CPU autocast too), so that textransfer is compared with Trainer at its best setting::

    HF_HUB_OFFLINE=1 PYTHONPATH=. python bench/finetune_vs_trainer.py --subset 600 --mixed-precision auto

``--training KEY=VALUE ...`` passes more training settings to textransfer (e.g. ``threads=auto``,
``compile=true``; see ``TrainingArgs``); Trainer runs as before. ``--variant KEY=VALUE ...`` adds a
second textransfer row with those settings to the same run (before/after a setting, one run)::

    HF_HUB_OFFLINE=1 PYTHONPATH=. python bench/finetune_vs_trainer.py --subset 600 --mixed-precision auto --repeats 3 --variant threads=auto
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time

import numpy as np


def _data(subset: int, seed: int):
    from textransfer.data import load
    from textransfer.data.splits import stratified_split

    spec = {"source": "movies", "neutral_band": 0.5, **({"limit": subset} if subset else {})}
    return stratified_split(load(spec), 0.2, seed=seed)


def _training_settings(pairs: list[str]) -> dict[str, object]:
    """``["threads=auto", "compile=true"]`` -> textransfer training settings (YAML values)."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--training {pair!r}: expected KEY=VALUE, e.g. threads=auto")
        out[key] = yaml.safe_load(value)
    return out


class _EpochSpeeds(logging.Handler):
    """Collects the training loop's per-epoch ``samples_per_s`` (its "epoch {...}" log lines)
    while in a ``with`` block: the first epoch carries one-off costs (compiling, warm-up)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.speeds: list[float] = []
        self.logger = logging.getLogger("textransfer.training")

    def emit(self, record: logging.LogRecord) -> None:
        row = record.args if isinstance(record.args, dict) else None
        if record.msg == "epoch %s" and row and "samples_per_s" in row:
            self.speeds.append(float(row["samples_per_s"]))

    def __enter__(self) -> _EpochSpeeds:
        self.level_before = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level_before)


def run_textransfer(args, train, test, extra: list[str] | None = None) -> tuple[float, float]:
    import textransfer
    from textransfer.training import TrainingArgs

    enc = textransfer.create_encoder("transformer", model=args.model, max_length=args.max_length)
    strategy = textransfer.create_strategy("finetune", val_fraction=0.0)
    settings = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": 0.0, "warmup_ratio": 0.0,
        "patience": None, "seed": args.seed, "mixed_precision": args.mixed_precision or ("bf16" if args.bf16 else "no"),
    }
    # A variant may override any of these (e.g. mixed_precision=no beside an auto run).
    strategy.training = TrainingArgs(**{**settings, **_training_settings(args.training if extra is None else extra)})
    _ = enc.module, enc.tokenizer  # load before timing, as the Trainer runs get their model ready-made
    epochs = _EpochSpeeds()
    t0 = time.perf_counter()
    with epochs:
        clf = strategy.fit(enc, textransfer.create_head("linear", dropout=0.1), train)
    seconds = time.perf_counter() - t0
    if args.epochs > 1 or extra:  # what each epoch ran at: steady state vs the first (compiling) epoch
        print(f"  epochs, train samples/s: {', '.join(f'{v:.1f}' for v in epochs.speeds)}", flush=True)
    acc = float(np.mean(np.array(clf.predict(test.texts, batch_size=64)) == np.array(test.labels)))
    return len(train) * args.epochs / seconds, acc


def run_trainer(args, train, test, group_by_length: bool, bf16: bool | None = None) -> tuple[float, float]:
    import torch
    from transformers import (
        AutoModel,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from textransfer.resources import resolve_model

    path = resolve_model(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    labels = sorted(set(train.labels))

    class MeanPoolClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = AutoModel.from_pretrained(path)
            self.drop = torch.nn.Dropout(0.1)
            self.out = torch.nn.Linear(self.body.config.hidden_size, len(labels))

        def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
            types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, **types)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            logits = self.out(self.drop(pooled))
            loss = None if labels is None else torch.nn.functional.cross_entropy(logits.float(), labels)
            return {"loss": loss, "logits": logits}

    def encode(data):
        enc = tok(list(data.texts), truncation=True, max_length=args.max_length)
        types = enc.get("token_type_ids")  # absent for MPNet / RoBERTa tokenizers
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 **({"token_type_ids": types[i]} if types is not None else {}), "labels": labels.index(y)}
                for i, y in enumerate(data.labels)]

    torch.manual_seed(args.seed)
    model = MeanPoolClassifier()
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    grouping = {}
    if group_by_length:
        grouping = ({"group_by_length": True} if "group_by_length" in fields
                    else {"train_sampling_strategy": "group_by_length"})
    use_bf16 = args.bf16 if bf16 is None else bf16
    if use_bf16 and not torch.cuda.is_available() and "use_cpu" in fields:
        grouping["use_cpu"] = True  # Trainer refuses bf16 on a CPU unless told it is one
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=64,
            num_train_epochs=args.epochs, learning_rate=args.lr, seed=args.seed, report_to="none",
            save_strategy="no", logging_strategy="no", disable_tqdm=True,
            bf16=use_bf16, **grouping,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=encode(train),
                          data_collator=DataCollatorWithPadding(tok))
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
        pred = trainer.predict(encode(test))
    acc = float(np.mean(pred.predictions.argmax(-1) == pred.label_ids))
    return len(train) * args.epochs / seconds, acc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subset", type=int, default=1500, help="movie sentences to use (0: all 10,072)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")
    p.add_argument("--mixed-precision", choices=["no", "bf16", "auto"], default=None,
                   help="textransfer's training.mixed_precision; adds Trainer rows at fp32 and bf16=True")
    p.add_argument("--repeats", type=int, default=1, help="runs of each, in rotated order (median)")
    p.add_argument("--training", nargs="*", default=[], metavar="KEY=VALUE",
                   help="more textransfer training settings, e.g. threads=auto compile=true")
    p.add_argument("--variant", nargs="*", default=None, metavar="KEY=VALUE",
                   help="adds a row 'textransfer (KEY=VALUE ...)' with these settings instead, in the same run")
    args = p.parse_args(argv)

    train, test = _data(args.subset, args.seed)
    if args.mixed_precision:
        from textransfer.precision import detect_capabilities, resolve_mixed_precision

        chosen = resolve_mixed_precision(args.mixed_precision)
        print(f"machine: {detect_capabilities().describe()}; textransfer mixed_precision "
              f"{args.mixed_precision} -> {chosen}")
    print(f"train {len(train)} / test {len(test)} sentences, batch {args.batch_size}, "
          f"max_length {args.max_length}, epochs {args.epochs}, bf16 {args.bf16}"
          + (f", textransfer training {' '.join(args.training)}" if args.training else ""))
    runs = {
        "textransfer": lambda: run_textransfer(args, train, test),
        "Trainer (defaults)": lambda: run_trainer(args, train, test, group_by_length=False),
        "Trainer (group_by_length)": lambda: run_trainer(args, train, test, group_by_length=True),
    }
    if args.mixed_precision:  # Trainer at both precisions on the same machine: its best counts
        runs = {
            "textransfer": runs["textransfer"],
            "Trainer (group_by_length, fp32)": lambda: run_trainer(args, train, test, True, bf16=False),
            "Trainer (group_by_length, bf16=True)": lambda: run_trainer(args, train, test, True, bf16=True),
        }
    if args.variant:  # before/after a setting, against the very same Trainer runs
        runs[f"textransfer ({' '.join(args.variant)})"] = lambda: run_textransfer(args, train, test, args.variant)
    # Rotating the order between repeats keeps a machine whose load drifts (shared CPUs) from
    # favouring whichever run comes last; the median of the repeats is reported.
    names = list(runs)
    measured: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            measured[name].append(runs[name]())
            print(f"repeat {r + 1}: {name}: {measured[name][-1][0]:.1f} samples/s", flush=True)
    results = {n: (float(np.median([m[0] for m in ms])), ms[-1][1]) for n, ms in measured.items()}
    ours, our_acc = results["textransfer"]
    print("### Fine-tuning: textransfer's loop vs transformers.Trainer\n")
    print("\n| run | train samples/s | textransfer / this | test accuracy |\n|---|---|---|---|")
    for name, (sps, acc) in results.items():
        print(f"| {name} | {sps:.1f} | {ours / sps:.2f} | {acc:.3f} |")
    peers = {n: r for n, r in results.items() if not n.startswith("textransfer")}
    best_name, (best_sps, best_acc) = max(peers.items(), key=lambda item: item[1][0])
    ratio, gap = ours / best_sps, our_acc - best_acc
    print(f"\n- textransfer / fastest Trainer ({best_name}) {ratio:.2f}x: "
          f"{'MET' if ratio >= 1.5 else 'MISSED'} (goal >= 1.5)")
    print(f"- test accuracy textransfer - that Trainer {gap:+.3f}: "
          f"{'MET' if gap >= -0.01 else 'MISSED'} (goal >= -0.01)")
    for name, (sps, acc) in results.items():
        if name.startswith("textransfer ("):
            print(f"- {name} / fastest Trainer {sps / best_sps:.2f}x (textransfer at defaults {ratio:.2f}x), "
                  f"test accuracy {acc - best_acc:+.3f} vs that Trainer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
