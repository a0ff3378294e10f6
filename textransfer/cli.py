"""The ``textransfer`` command: run configs, predict, list components. No logic of its own."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textransfer.precision import PRECISIONS

# Errors a user can fix (bad input, files, settings, missing extras): one message, exit 2.
# OSError covers permission errors, folders given for files and files given for folders.
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError, KeyError, RuntimeError)


def _is_user_error(exc: BaseException) -> bool:
    # safetensors raises its own SafetensorError (not an OSError) for a truncated or corrupt file.
    return isinstance(exc, _USER_ERRORS) or type(exc).__name__ == "SafetensorError"


def _describe(exc: BaseException) -> str:
    """The one-line message for ``exc``: ours as written; an OSError with its path and a fix."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        fixes = {
            PermissionError: "check the file's permissions, or choose another path",
            IsADirectoryError: "a file was expected here: pass a file path, not a folder",
            NotADirectoryError: "a folder was expected here, or a parent of this path is a file",
            FileExistsError: "move the existing file away, or choose another path",
            FileNotFoundError: "check the path",
        }
        fix = next((text for kind, text in fixes.items() if isinstance(exc, kind)), "check the path")
        return f"{exc.strerror}: {exc.filename} ({fix})"
    if _is_user_error(exc):
        return str(exc) or type(exc).__name__
    return (f"unexpected {type(exc).__name__}: {exc} (this looks like a bug in textransfer; "
            "rerun with --debug for the traceback and report it)")


_PRECISION_HELP = ("run the model's encoder at this precision instead of the one it was saved with "
                   "(transformer and sentence encoders; auto: this machine's best, see `textransfer list precision`)")


def _label_map_arg(value: str) -> dict[str, str]:
    """``--label-map 0=negative,1=positive`` -> ``{"0": "negative", "1": "positive"}``."""
    pairs = [p.strip() for p in value.split(",") if p.strip()]
    bad = [p for p in pairs if p.count("=") != 1 or not all(x.strip() for x in p.split("="))]
    if not pairs or bad:
        raise argparse.ArgumentTypeError(
            f"{(bad or [value])[0]!r} is not FROM=TO: write the renames as 0=negative,1=positive"
        )
    return {k.strip(): v.strip() for k, v in (p.split("=") for p in pairs)}


def _delimiter_arg(value: str) -> str:
    """``--delimiter``: one character; a backslash-t (as a shell passes it) or ``tab`` is a tab."""
    from textransfer.data.files import check_delimiter

    value = "\t" if value in ("\\t", "tab") else value
    try:
        check_delimiter(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="textransfer", description="Transfer learning for text classification.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = p.add_subparsers(dest="command", required=True)

    _add_experiment_parsers(sub)

    tu = sub.add_parser("tune", help="hyperparameter search over the `search:` ranges of a run config")
    tu.add_argument("config", help="YAML run config with a `search:` section and a validation split")
    tu.add_argument("--trials", type=int, required=True, help="number of trials")
    tu.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value before the search, e.g. --set seed=1 (repeatable)")
    tu.add_argument("--metric", choices=["accuracy", "macro_f1"], default="accuracy",
                    help="validation metric to maximise (default: accuracy)")

    pr = sub.add_parser("predict", help="predict labels with a saved model")
    pr.add_argument("model_dir", help="model directory (runs/<name>/model)")
    pr.add_argument("texts", nargs="*", help="texts to classify")
    pr.add_argument("--input", help="file of inputs (.csv .tsv .jsonl .parquet .txt)")
    pr.add_argument("--output", help="CSV to write (with --input; default: stdout for texts)")
    pr.add_argument("--text-column", default="text", help="column holding the texts (default: text)")
    pr.add_argument("--delimiter", metavar="CHAR", type=_delimiter_arg,
                    help="with --input: field separator of a .csv/.tsv that uses another one, e.g. ';' "
                         "(the --output is written with it too)")
    pr.add_argument("--prediction-column", metavar="NAME",
                    help="with --input: name of the predicted-label column (default: label, with "
                         "probabilities in proba_<label>; NAME puts them in NAME_proba_<label>); "
                         "an input column is never overwritten")
    pr.add_argument("--batch-size", type=int, default=32, help="inputs encoded at once (default: 32)")
    pr.add_argument("--proba", action="store_true", help="print class probabilities too")
    pr.add_argument("--trust-remote-code", action="store_true",
                    help="allow Python code shipped in the model folder to run (only for a model you trust)")
    pr.add_argument("--precision", choices=PRECISIONS, help=_PRECISION_HELP)

    ev = sub.add_parser("evaluate", help="score a saved model on a file: accuracy, F1, confusion, calibration when it has labels; "
                        "predictions and (with --source-val) a label-free accuracy estimate when not")
    ev.add_argument("model_dir", help="model directory (runs/<name>/model)")
    ev.add_argument("--input", required=True, help="data file (.csv .tsv .jsonl .parquet .txt), read in chunks")
    ev.add_argument("--text-column", default="text", help="column holding the texts (default: text)")
    ev.add_argument("--label-column", default=None,
                    help="column holding the true labels (default: label if the file has it, else unlabeled)")
    ev.add_argument("--output-dir", help="write report.md, metrics.json and plots here (new, empty, or "
                    "written by evaluate before); default: print the summary only")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--source-val", metavar="FILE",
                    help="labeled source-domain rows the model was not trained on: also estimate the accuracy "
                         "without the input's labels (COT, COTT, DoC, ATC-NE, ATC-MC, AC), the only accuracy "
                         "figure for unlabeled input (default: the source validation rows' outputs saved with "
                         "the model, when it has them)")
    ev.add_argument("--label-map", metavar="FROM=TO,...", type=_label_map_arg,
                    help="rename the file's labels to the model's, e.g. 0=negative,1=positive (labels it "
                         "does not name are kept; applies to --source-val too)")
    ev.add_argument("--delimiter", metavar="CHAR", type=_delimiter_arg,
                    help="field separator of a .csv/.tsv --input (and --source-val) that uses another one, e.g. ';'")
    ev.add_argument("--source-val-text-column", metavar="NAME",
                    help="the --source-val file's text column (default: --text-column)")
    ev.add_argument("--source-val-label-column", metavar="NAME",
                    help="the --source-val file's label column (default: --label-column, else label)")
    ev.add_argument("--trust-remote-code", action="store_true",
                    help="allow Python code shipped in the model folder to run (only for a model you trust)")
    ev.add_argument("--precision", choices=PRECISIONS, help=_PRECISION_HELP)

    sv = sub.add_parser("serve", help="serve a saved model over HTTP: POST /predict, GET /health, GET /metadata")
    sv.add_argument("model_dir", help="model directory (runs/<name>/model) or ONNX export folder")
    sv.add_argument("--host", default="127.0.0.1",
                    help="interface to listen on (default: 127.0.0.1, this machine only; no TLS, no authentication)")
    sv.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000; 0: any free port)")
    sv.add_argument("--max-body-bytes", type=int, default=1 << 20,
                    help="larger request bodies get 413 (default: 1048576, 1 MiB)")
    sv.add_argument("--max-texts", type=int, default=256, help="most texts per request (default: 256)")
    sv.add_argument("--batch-size", type=int, default=32, help="texts encoded at once (default: 32)")
    sv.add_argument("--precision", choices=PRECISIONS, help=_PRECISION_HELP)

    ex = sub.add_parser("export", help="export a saved model (transformer/sentence encoder + head) to ONNX")
    ex.add_argument("model_dir", help="model directory (runs/<name>/model)")
    ex.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default: onnx)")
    ex.add_argument("--output", required=True, help="folder to write (new, empty, or an earlier export)")
    ex.add_argument("--int8", action="store_true", help="quantise the weights to int8 (onnxruntime dynamic quantisation)")
    ex.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")

    ls = sub.add_parser("list", help="list registered components")
    ls.add_argument("what", choices=["encoders", "heads", "strategies", "datasets", "resources", "precision"],
                    help="precision: what `precision: auto` picks on this machine, and why")
    return p


def _add_experiment_parsers(sub: Any) -> None:
    """One subcommand per experiment kind (:data:`textransfer.experiments.EXPERIMENTS`)."""
    from textransfer.experiments import EXPERIMENTS

    for kind in EXPERIMENTS.values():
        parser = sub.add_parser(kind.verb, help=kind.help)
        parser.add_argument("config", help=kind.config_help)
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help=f"override a config value, e.g. --set {kind.set_example} (repeatable)")
        for flags, options in kind.options:
            parser.add_argument(*flags, **options)


def _run_experiment(args: argparse.Namespace) -> int:
    """Runs the experiment kind of subcommand ``args.command`` and prints its summary."""
    from textransfer.experiments import experiment_for_verb

    kind = experiment_for_verb(args.command)
    assert kind is not None
    options = {opts["dest"]: getattr(args, opts["dest"]) for _, opts in kind.options}
    result = kind.run_config(args.config, args.overrides, **options)
    print("\n".join(kind.summary(result)))
    print(f"\nrun directory: {result.run_dir} ({kind.outputs})")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from textransfer.tuning import trials_table, tune

    result = tune(args.config, args.trials, args.overrides, metric=args.metric)
    print(trials_table(result))
    print(f"\nbest: trial {result.best['trial']}, val {result.metric} {result.best['value']:.4f}")
    print(f"tune directory: {result.tune_dir} (trials.csv, best.yaml, report.md, trials/)")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from textransfer.classifier import load
    from textransfer.encoders.base import check_batch_size

    if bool(args.texts) == bool(args.input):
        raise ValueError("give either texts or --input FILE (not both, not neither)")
    check_batch_size(args.batch_size)
    if args.input:
        if not args.output:
            raise ValueError("--input needs --output FILE.csv")
        from textransfer.distributed import is_main_process
        from textransfer.prediction import check_paths, predict_file_with_report

        check_paths(args.input, args.output)  # before loading the model: bad paths fail fast
        clf = load(args.model_dir, trust_remote_code=args.trust_remote_code, precision=args.precision)
        report = predict_file_with_report(clf, args.input, args.output, text_column=args.text_column,
                                          batch_size=args.batch_size,
                                          prediction_column=args.prediction_column or "label",
                                          delimiter=args.delimiter)
        if is_main_process():  # under torchrun every process predicts; one wrote the file
            empty = f"; {report.empty_note()} scored as empty strings" if report.empty_texts else ""
            cut = f"; {report.truncated_note()}" if report.truncated else ""
            print(f"{report.rows} predictions written to {args.output}{empty}{cut}")
        return 0
    if args.prediction_column is not None:
        raise ValueError("--prediction-column names a column of the --output file: use it with --input")
    if args.delimiter is not None:
        raise ValueError("--delimiter is the field separator of an --input file: use it with --input")
    clf = load(args.model_dir, trust_remote_code=args.trust_remote_code, precision=args.precision)
    proba = clf.predict_proba(args.texts, batch_size=args.batch_size)
    labels = clf.label_map.decode(proba.argmax(axis=1))
    for text, label, row in zip(args.texts, labels, proba, strict=True):
        if args.proba:
            probs = json.dumps({str(lab): round(float(p), 4) for lab, p in zip(clf.labels, row, strict=True)})
            print(f"{label}\t{probs}\t{text}")
        else:
            print(f"{label}\t{text}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from textransfer.evaluating import evaluate, summary_lines

    result = evaluate(args.model_dir, args.input, text_column=args.text_column, label_column=args.label_column,
                      output_dir=args.output_dir, batch_size=args.batch_size,
                      trust_remote_code=args.trust_remote_code, source_val=args.source_val,
                      source_val_text_column=args.source_val_text_column,
                      source_val_label_column=args.source_val_label_column, label_map=args.label_map,
                      delimiter=args.delimiter, precision=args.precision)
    print("\n".join(summary_lines(result.metrics)))
    if result.output_dir is not None:
        print(f"\nwritten to {result.output_dir}: " + ", ".join(f.name for f in result.files))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from textransfer.serving import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("textransfer.serving").warning(
            "listening on %s: reachable from other machines, with no TLS and no authentication", args.host)

    def ready(server: object) -> None:
        print(f"serving {args.model_dir} on {server.url} (POST /predict, GET /health, GET /metadata); "  # type: ignore[attr-defined]
              "Ctrl+C to stop", flush=True)

    serve(args.model_dir, args.host, args.port, max_body_bytes=args.max_body_bytes, max_texts=args.max_texts,
          batch_size=args.batch_size, ready=ready, precision=args.precision)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from textransfer.export import EXPORT_META, export_onnx

    out = export_onnx(args.model_dir, args.output, int8=args.int8, opset=args.opset)
    check = json.loads((out / EXPORT_META).read_text())["check"]
    print(f"ONNX export ({'int8' if args.int8 else 'fp32'}) written to {out}: model.onnx, tokenizer, "
          f"textransfer-onnx.json; max probability difference to the torch model "
          f"{check['max_abs_diff']:.1e} on {check['texts']} check texts")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "precision":
        from textransfer.precision import describe_machine

        print("\n".join(describe_machine()))
        return 0
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


def run_pipeline(
    command: str, default_config: str | Path, description: str | None = None, argv: Sequence[str] | None = None
) -> int:
    """``main`` of a ``pipelines/*.py`` script: ``--config`` (default ``default_config``) and
    repeated ``--set KEY=VALUE``, run as ``textransfer COMMAND CONFIG --set ...``; the
    description defaults to the help of the experiment kind behind ``command``."""
    if description is None:
        from textransfer.experiments import experiment_for_verb

        kind = experiment_for_verb(command)
        description = kind.help if kind is not None else command
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=str(default_config))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    return main([command, args.config, *[a for o in args.overrides for a in ("--set", o)]])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``textransfer`` console script; returns the exit code."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "predict" and not any(a.startswith("-") for a in extra):
        # argparse gives a `nargs="*"` positional only the words before the first option:
        # `predict MODEL --proba "great film"` would otherwise reject the texts.
        args.texts = [*args.texts, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from textransfer._progress import set_quiet

    # -q: no progress bars, the dependencies' included; without it, bars only on a terminal.
    set_quiet(args.quiet)
    # Each subcommand NAME is handled by _cmd_NAME in this module; experiment kinds by one handler.
    handler = globals().get(f"_cmd_{args.command}", _run_experiment)
    try:
        return handler(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one message, never a traceback (--debug shows it)
        if args.debug:
            raise
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return 2 if _is_user_error(exc) else 1


if __name__ == "__main__":
    sys.exit(main())
