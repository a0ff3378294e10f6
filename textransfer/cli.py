"""The ``textransfer`` command: run configs, predict, list components. No logic of its own."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

# Errors a user can fix: printed as one message, no traceback (--debug shows it).
_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, KeyError, RuntimeError)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="textransfer", description="Transfer learning for text classification.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="train and evaluate from a YAML config")
    r.add_argument("config", help="YAML config file")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set strategy.head=mlp (repeatable)")
    r.add_argument("--resume", action="store_true",
                   help="continue interrupted fine-tuning from the last epoch checkpoint in the run directory")

    cd = sub.add_parser("crossdomain", help="cross-domain evaluation grid: sources x targets x setups x seeds")
    cd.add_argument("config", help="YAML config (see configs/crossdomain_*.yaml)")
    cd.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set seeds=[0] (repeatable)")

    for name, text in (("curve", "learning curves: target accuracy vs number of labeled target examples"),
                       ("layers", "layer transfer (Yosinski et al. 2014): keep k layer groups, re-initialise the rest")):
        an = sub.add_parser(name, help=text)
        an.add_argument("config", help="YAML config (see configs/curve_*.yaml, configs/*layers*.yaml)")
        an.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set seeds=[0] (repeatable)")

    pr = sub.add_parser("predict", help="predict labels with a saved model")
    pr.add_argument("model_dir", help="model directory (runs/<name>/model)")
    pr.add_argument("texts", nargs="*", help="texts to classify")
    pr.add_argument("--input", help="file of inputs (.csv .tsv .jsonl .parquet .txt)")
    pr.add_argument("--output", help="CSV to write (with --input; default: stdout for texts)")
    pr.add_argument("--text-column", default="text", help="column holding the texts (default: text)")
    pr.add_argument("--batch-size", type=int, default=32)
    pr.add_argument("--proba", action="store_true", help="print class probabilities too")

    ls = sub.add_parser("list", help="list registered components")
    ls.add_argument("what", choices=["encoders", "heads", "strategies", "datasets", "resources"])
    return p


def _cmd_run(args: argparse.Namespace) -> int:
    from textransfer.runner import run, summary_table

    result = run(args.config, args.overrides, resume=args.resume)
    print(summary_table(result.metrics))
    print(f"\nrun directory: {result.run_dir}")
    return 0


def _cmd_crossdomain(args: argparse.Namespace) -> int:
    from textransfer.crossdomain import run_crossdomain
    from textransfer.evaluation.report import summary_table

    result = run_crossdomain(args.config, args.overrides)
    print("\n".join(summary_table(result.metrics["rows"])))
    print(f"\nrun directory: {result.run_dir} (report.md, metrics.json, plots/)")
    return 0


def _cmd_curve(args: argparse.Namespace) -> int:
    from textransfer.analyses.curve import run_curve
    from textransfer.analyses.curve_report import benefit_rows

    result = run_curve(args.config, args.overrides)
    print("\n".join(benefit_rows(result.metrics)))
    print(f"\nrun directory: {result.run_dir} (report.md, metrics.json, samples.json, plots/)")
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    from textransfer.analyses.layers import run_layers

    result = run_layers(args.config, args.overrides)
    for variant, points in result.metrics["variants"].items():
        print(f"{variant}\t" + "  ".join(f"k={k}: {p['mean']:.3f}" for k, p in points.items()))
    print(f"\nrun directory: {result.run_dir} (report.md, metrics.json, samples.json, plots/)")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from textransfer.classifier import load

    if bool(args.texts) == bool(args.input):
        raise ValueError("give either texts or --input FILE (not both, not neither)")
    clf = load(args.model_dir)
    if args.input:
        if not args.output:
            raise ValueError("--input needs --output FILE.csv")
        from textransfer.prediction import predict_file
        from textransfer.training.sharding import is_main_process

        n = predict_file(clf, args.input, args.output, text_column=args.text_column, batch_size=args.batch_size)
        if is_main_process():  # under torchrun every process predicts; one wrote the file
            print(f"{n} predictions written to {args.output}")
        return 0
    proba = clf.predict_proba(args.texts, batch_size=args.batch_size)
    labels = clf.label_map.decode(proba.argmax(axis=1))
    for text, label, row in zip(args.texts, labels, proba, strict=True):
        if args.proba:
            probs = json.dumps({str(lab): round(float(p), 4) for lab, p in zip(clf.labels, row, strict=True)})
            print(f"{label}\t{probs}\t{text}")
        else:
            print(f"{label}\t{text}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "resources":
        from textransfer.resources import list_resources

        for row in list_resources():
            status = "installed" if row["installed"] else (row["install"] or "online only")
            print(f"{row['name']}\t{row['kind']}\t{status}\t{row['description']}")
        return 0
    from textransfer.data import list_datasets
    from textransfer.encoders.base import list_encoders
    from textransfer.heads.base import list_heads
    from textransfer.strategies.base import list_strategies

    names = {"encoders": list_encoders, "heads": list_heads, "strategies": list_strategies,
             "datasets": list_datasets}[args.what]()
    print("\n".join(names))
    return 0


def run_pipeline(command: str, default_config: str | Path, description: str, argv: Sequence[str] | None = None) -> int:
    """``main`` of a ``pipelines/*.py`` script: ``--config`` (default ``default_config``) and
    repeated ``--set KEY=VALUE``, run as ``textransfer COMMAND CONFIG --set ...``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=str(default_config))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    return main([command, args.config, *[a for o in args.overrides for a in ("--set", o)]])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``textransfer`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"run": _cmd_run, "crossdomain": _cmd_crossdomain, "curve": _cmd_curve, "layers": _cmd_layers,
                "predict": _cmd_predict, "list": _cmd_list}
    try:
        return handlers[args.command](args)
    except _USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
