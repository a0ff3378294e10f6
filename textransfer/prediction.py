"""Batch prediction over files: read inputs in chunks, write labels and probabilities.

Trust rules (DESIGN.md section 7): the output is written to a temporary file beside it and
renamed over it only when complete, so a failed run leaves an existing output exactly as it was;
input = output is refused before anything is opened; an input column is never overwritten; bad
input gets one message naming the file, the line (or row) and the fix. Memory stays flat: rows
are read, predicted and written one chunk at a time.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

from textransfer._progress import progress
from textransfer.classifier import Classifier, truncated_inputs
from textransfer.data.files import (
    check_delimiter,
    delimited_rows,
    other_separator,
    ragged_row_error,
    separator_message,
)
from textransfer.data.sources import only_numbers
from textransfer.encoders.base import check_batch_size
from textransfer.encoders.cache import check_chunk_size

__all__ = [
    "InputChunk",
    "PredictionReport",
    "check_paths",
    "prediction_columns",
    "predict_file",
    "predict_file_with_report",
    "read_chunks",
]

logger = logging.getLogger("textransfer.prediction")

SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".txt")
_SHOWN_ROWS = 5  # how many row numbers a warning spells out
_JSONL_EXAMPLE = '{"text": "..."}'


@dataclass
class PredictionReport:
    """What :func:`predict_file_with_report` did.

    Attributes:
        output: the file written.
        rows: rows predicted and written.
        empty_texts: rows whose text was empty or only spaces (scored as such).
        empty_rows: how the first few of them are named (``row 3 (line 4)``).
        truncated: texts longer than the encoder's token limit (the model read their beginning).
        token_limit: that limit; None for an encoder without one (TF-IDF, word vectors, images).
    """

    output: Path
    rows: int = 0
    empty_texts: int = 0
    empty_rows: list[str] = field(default_factory=list)
    truncated: int = 0
    token_limit: int | None = None

    def truncated_note(self) -> str:
        """``12 texts longer than the encoder's 128 tokens (read up to there)``; "" for none."""
        if not self.truncated:
            return ""
        plural = "s" if self.truncated > 1 else ""
        return f"{self.truncated} text{plural} longer than the encoder's {self.token_limit} tokens (read up to there)"

    def empty_note(self) -> str:
        """``3 empty texts at row 2 (line 3), row 5 (line 6), ...``; "" when there were none."""
        if not self.empty_texts:
            return ""
        more = ", ..." if self.empty_texts > len(self.empty_rows) else ""
        plural = "s" if self.empty_texts > 1 else ""
        return f"{self.empty_texts} empty text{plural} at {', '.join(self.empty_rows)}{more}"


@dataclass
class InputChunk:
    """Rows of an input file, each a list of cells in ``columns`` order (the same in every chunk).

    Attributes:
        columns: the file's columns (``[text_column]`` for ``.txt``).
        rows: the cells; CSV/TSV/TXT cells are strings, a cell missing at the end of a short
            CSV row or a JSON key missing from a record is None.
        lines: the 1-based line each row starts on; None when unknown (Parquet).
    """

    columns: list[str]
    rows: list[list[Any]]
    lines: Sequence[int] | None

    def column(self, name: str) -> list[Any]:
        """The cells of column ``name``, one per row."""
        at = self.columns.index(name)
        return [row[at] for row in self.rows]


# -- paths ----------------------------------------------------------------------------------------


def _exists(path: Path) -> bool:
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True  # PermissionError propagates: check_paths reports it


def check_paths(input_path: str | Path, output_path: str | Path) -> tuple[Path, Path]:
    """Checks an input and an output path before anything is opened.

    Returns:
        The input path and the file to replace (the output, or the file it links to).

    Raises:
        FileNotFoundError: the input does not exist.
        ValueError: input = output (in any spelling), a folder where a file is expected, a
            parent folder that is a file, an unsupported input suffix, an output named other than
            ``.csv`` (or without a suffix), a read-only output.
    """
    src, dst = Path(input_path).expanduser(), Path(output_path).expanduser()
    try:
        return _check_paths(src, dst)
    except PermissionError as exc:  # a folder on the way that may not be searched
        raise ValueError(
            f"cannot reach {exc.filename or src}: permission denied. Fix: use paths you have "
            "access to"
        ) from None


def _check_paths(src: Path, dst: Path) -> tuple[Path, Path]:
    if not _exists(src):
        raise FileNotFoundError(f"input file not found: {src} (cwd: {Path.cwd()})")
    if src.is_dir():
        raise ValueError(f"input {src} is a folder: pass a file inside it ({', '.join(SUFFIXES)})")
    if src.suffix.lower() not in SUFFIXES:
        raise ValueError(
            f"{src}: unsupported input format {src.suffix or '(no suffix)'!r}; use .csv, .tsv, .jsonl, .parquet "
            "or .txt (one text per line), or rename the file to its real format"
        )
    # Writing through a link replaces the file it names, not the link.
    target = dst.resolve() if dst.is_symlink() else dst
    if target.is_dir():
        raise ValueError(
            f"output {dst} is a folder: pass a file name, e.g. {dst / 'predictions.csv'}"
        )
    if src.resolve() == target.resolve() or (_exists(target) and os.path.samefile(src, target)):
        raise ValueError(
            f"input and output are the same file ({src}): writing the predictions would replace the "
            f"inputs. Fix: write them to another file, e.g. {src.with_name(src.stem + '.predictions.csv')}"
        )
    if dst.suffix.lower() not in ("", ".csv"):
        raise ValueError(
            f"output {dst}: predictions are written as CSV, which a {dst.suffix} name would hide "
            f"from whatever reads it next. Fix: name the output .csv, e.g. {dst.with_suffix('.csv')}"
        )
    folder = target.parent
    while not os.path.exists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(
            f"cannot write {dst}: {folder} is a file, not a folder. Fix: choose another output path"
        )
    if target.exists() and not os.access(target, os.W_OK):
        raise ValueError(
            f"output {dst} exists and is read-only: it is left alone. Fix: choose another output "
            "file, or make it writable (chmod u+w) to replace it"
        )
    return src, target


def prediction_columns(labels: Sequence[Any], prediction_column: str = "label") -> list[str]:
    """The columns predictions add: ``prediction_column``, then one probability per label.

    Probabilities are ``proba_<label>`` with the default ``label``, else
    ``<prediction_column>_proba_<label>``, so one name moves all of them clear of the inputs.
    """
    if not isinstance(prediction_column, str) or not prediction_column.strip():
        raise ValueError(
            f"prediction_column must be a non-empty column name, got {prediction_column!r}"
        )
    prefix = "proba_" if prediction_column == "label" else f"{prediction_column}_proba_"
    names = [prediction_column, *(f"{prefix}{lab}" for lab in labels)]
    if len(set(names)) != len(names):
        raise ValueError(f"the model's labels {list(labels)} give duplicate output columns {names}")
    return names


@contextmanager
def _atomic_output(target: Path) -> Iterator[IO[str]]:
    """A text file that becomes ``target`` only when the block completes; else nothing changes."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Mode 0o666 & ~umask, as open() creates files; O_EXCL: never another file's name.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise ValueError(
            f"cannot write {target} ({exc.strerror or exc}). Fix: choose an output in a folder you "
            "can write to"
        ) from None
    try:
        with open(fd, "w", newline="", encoding="utf-8") as f:
            yield f
        if target.exists():
            shutil.copymode(target, tmp)  # the replaced file keeps its permissions
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise ValueError(
                f"cannot write {target} ({exc.strerror or exc}). Fix: choose an output you can write"
            ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- reading --------------------------------------------------------------------------------------


def _utf8_error(path: Path) -> ValueError:
    """Locates the first byte that is not UTF-8 (line and offset in the file, not in a buffer)."""
    offset = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return ValueError(
                    f"{path}: byte 0x{raw[exc.start : exc.start + 1].hex()} at byte offset "
                    f"{offset + exc.start} (line {lineno}) is not valid UTF-8. Fix: re-save the file "
                    "as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                )
            offset += len(raw)
    return ValueError(f"{path} is not valid UTF-8. Fix: re-save the file as UTF-8")


def read_chunks(
    path: str | Path, text_column: str = "text", chunk_size: int = 10_000, delimiter: str | None = None
) -> Iterator[InputChunk]:
    """Reads a ``.csv``/``.tsv``/``.jsonl``/``.parquet``/``.txt`` file in chunks of at most
    ``chunk_size`` rows (memory stays flat). Errors name the file, the line and the fix: bad
    UTF-8, a broken JSON line, a CSV row with more fields than the header, an empty CSV, a
    file that is not Parquet, and a ``text_column`` whose first rows are all numbers (an id or
    a score column named by mistake). A CSV/TSV, Parquet file or header-only CSV always gives at
    least one chunk (maybe without rows), so its columns are known.

    Args:
        path: the file; its suffix picks the format.
        text_column: the column of texts (the name of the one column of a ``.txt`` file).
        chunk_size: rows per chunk.
        delimiter: the field separator of a ``.csv``/``.tsv`` file that uses another one than
            its suffix says (``;`` for a semicolon CSV); an error for the other formats.
    """
    path = Path(path)
    check_chunk_size(chunk_size)
    check_delimiter(delimiter)
    checked = False
    for chunk in _format_chunks(path, text_column, chunk_size, delimiter):
        if not checked and chunk.rows and text_column in chunk.columns:
            texts = chunk.column(text_column)
            # Missing and non-string cells are the callers' errors (they name the row).
            if all(isinstance(t, str) for t in texts):
                _check_not_numbers(path, texts, text_column, chunk.columns)
            checked = True
        yield chunk


def _format_chunks(path: Path, text_column: str, chunk_size: int, delimiter: str | None = None) -> Iterator[InputChunk]:
    """:func:`read_chunks` without the check of the text column: the reader of each format."""
    suffix = path.suffix.lower()
    if delimiter is not None and suffix not in (".csv", ".tsv"):
        raise ValueError(f"{path}: a delimiter applies to .csv and .tsv files, not {suffix or '(no suffix)'!r}: "
                         "leave it out for this file")
    try:
        if suffix == ".txt":
            yield from _txt_chunks(path, text_column, chunk_size)
        elif suffix in (".csv", ".tsv"):
            yield from _delimited_chunks(
                path, delimiter or ("," if suffix == ".csv" else "\t"), text_column, chunk_size, delimiter is not None
            )
        elif suffix in (".jsonl", ".json"):
            yield from _jsonl_chunks(path, text_column, chunk_size)
        elif suffix == ".parquet":
            yield from _parquet_chunks(path, chunk_size)
        else:
            raise ValueError(
                f"{path}: unsupported input format {suffix or '(no suffix)'!r}; use .csv, .tsv, "
                ".jsonl, .parquet or .txt"
            )
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    except PermissionError:
        raise ValueError(
            f"cannot read {path}: permission denied. Fix: make it readable (chmod u+r) or copy it "
            "somewhere you can read"
        ) from None


def _open_text(path: Path, newline: str | None = None) -> IO[str]:
    # utf-8-sig: a byte-order mark would otherwise become part of the first text or column name.
    return path.open(encoding="utf-8-sig", newline=newline)


def _txt_chunks(path: Path, text_column: str, chunk_size: int) -> Iterator[InputChunk]:
    # One text per line, no header, no quoting; blank lines are (empty) texts too.
    with _open_text(path) as f:
        rows: list[list[Any]] = []
        start = 1
        for line in f:
            rows.append([line.rstrip("\r\n")])
            if len(rows) == chunk_size:
                yield InputChunk([text_column], rows, range(start, start + len(rows)))
                start += len(rows)
                rows = []
        if rows:
            yield InputChunk([text_column], rows, range(start, start + len(rows)))


def _delimited_chunks(
    path: Path, sep: str, text_column: str, chunk_size: int, chosen: bool = False
) -> Iterator[InputChunk]:
    # The csv module, not pandas: no index column is ever inferred, every row keeps its exact
    # line number, and cells stay the strings they are ("NA" is a text, "007" keeps its zeros).
    with _open_text(path, newline="") as f:
        rows_of = delimited_rows(f, sep, str(path))
        header = next(rows_of, None)
        if header is None:
            raise ValueError(
                f"{path}: the file is empty. Fix: write a header line naming the columns (e.g. "
                f"{text_column}) and one row per text"
            )
        columns = header[1]
        found = other_separator(sep.join(columns), sep) if text_column not in columns and not chosen else None
        if found is not None:
            fix = f"pass --delimiter {found[0]!r} (API: delimiter={found[0]!r})"
            if {found[0], sep} == {",", "\t"}:
                fix = f"rename it {'.tsv' if found[0] == chr(9) else '.csv'}, or {fix}"
            raise ValueError(separator_message(str(path), sep.join(columns), sep, found[1], path.suffix.lower(), fix))
        rows: list[list[Any]] = []
        lines: list[int] = []
        width = len(columns)
        for line, row in rows_of:
            if len(row) > width:
                if any(row[width:]):  # data beyond the header: the columns are shifted
                    raise ragged_row_error(str(path), line, len(row), width, sep)
                del row[width:]  # only trailing separators: nothing is lost
            elif len(row) < width:  # cells missing at the end read as missing (None)
                missing: list[Any] = [None] * (width - len(row))  # None in a row of str cells
                row.extend(missing)
            rows.append(row)
            lines.append(line)
            if len(rows) == chunk_size:
                yield InputChunk(columns, rows, lines)
                rows, lines = [], []
        yield InputChunk(columns, rows, lines)  # even when empty: a header-only file has columns


def _json_record(path: Path, line: str, lineno: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}). Fix: write "
            f"one JSON object per line (JSON Lines), e.g. {_JSONL_EXAMPLE}; a .json file holding "
            "one array must be converted to JSON Lines"
        ) from None
    if not isinstance(record, dict):
        raise ValueError(
            f"{path}: line {lineno} is a JSON {type(record).__name__}, not an object. Fix: write "
            f"one object per line, e.g. {_JSONL_EXAMPLE}"
        )
    return record


def _jsonl_chunks(path: Path, text_column: str, chunk_size: int) -> Iterator[InputChunk]:
    columns: list[str] | None = None
    records: list[dict[str, Any]] = []
    lines: list[int] = []

    def chunk() -> InputChunk:
        nonlocal columns
        if columns is None:  # the first chunk's keys are the output's columns
            columns = list(dict.fromkeys(k for rec in records for k in rec))
        else:
            known = set(columns)
            for rec, line in zip(records, lines, strict=True):
                new = [k for k in rec if k not in known]
                if new:
                    raise ValueError(
                        f"{path}: line {line} has the key {new[0]!r}, which none of the first "
                        f"{chunk_size} records has, so the output has no column for it. Fix: give "
                        "every record the same keys (null where there is no value)"
                    )
        # Nested values are written as JSON; the text column is checked as it is.
        rows = [
            [v if c == text_column or not isinstance(v, (dict, list)) else json.dumps(v, ensure_ascii=False)
             for c, v in ((c, rec.get(c)) for c in columns)]
            for rec in records
        ]  # fmt: skip
        return InputChunk(columns, rows, lines)

    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            records.append(_json_record(path, line, lineno))
            lines.append(lineno)
            if len(records) == chunk_size:
                yield chunk()
                records, lines = [], []
    if records:
        yield chunk()


def _parquet_chunks(path: Path, chunk_size: int) -> Iterator[InputChunk]:
    import pyarrow.parquet as pq

    with path.open("rb") as fh:  # opened here: a permission error is reported as one
        try:
            pf = pq.ParquetFile(fh)
            columns = [str(c) for c in pf.schema_arrow.names]
            any_rows = False
            for batch in pf.iter_batches(batch_size=chunk_size):
                cells = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                any_rows = True
                yield InputChunk(columns, [list(row) for row in zip(*cells, strict=True)], None)
        except Exception as exc:  # pyarrow raises several types for a bad file; all mean the same
            raise ValueError(
                f"{path}: cannot read as Parquet ({type(exc).__name__}: {exc}). Fix: check that the "
                "file is a complete Parquet file, or give it the suffix of its real format "
                "(.csv, .tsv, .jsonl, .txt)"
            ) from None
    if not any_rows:
        yield InputChunk(columns, [], None)


# -- predicting -----------------------------------------------------------------------------------


def _row_note(chunk: InputChunk, i: int, offset: int) -> str:
    note = f"row {offset + i + 1}"
    return note if chunk.lines is None else f"{note} (line {chunk.lines[i]})"


def _check_columns(src: Path, columns: list[str], text_column: str, new_columns: list[str]) -> int:
    """The index of the text column; errors for a missing one or an input column in the way."""
    if text_column not in columns:
        raise ValueError(
            f"{src}: no column {text_column!r}; columns found: {', '.join(map(str, columns)) or '(none)'}. "
            "Pass --text-column NAME (API: text_column=NAME)"
        )
    if columns.count(text_column) > 1:
        raise ValueError(
            f"{src}: the header names column {text_column!r} twice. Fix: rename one of them"
        )
    for name in new_columns:
        if name in columns:
            raise ValueError(
                f"{src}: the input already has a column {name!r}, which the predictions would "
                "overwrite. Fix: name the prediction column with --prediction-column NAME (API: "
                "prediction_column=NAME); the probabilities then go to NAME_proba_<label>"
            )
    return columns.index(text_column)


def _texts_of(
    chunk: InputChunk, src: Path, text_at: int, text_column: str, report: PredictionReport
) -> list[str]:
    """The texts of one chunk: missing or non-text cells are errors, empty ones are counted."""
    texts = [row[text_at] for row in chunk.rows]
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            what = "missing" if t is None else f"not text ({t!r:.40})"
            raise ValueError(
                f"{src}: {_row_note(chunk, i, report.rows)}: column {text_column!r} is {what}. "
                "Fix: fill or remove missing texts"
            )
    empty = [i for i, t in enumerate(texts) if not t or t.isspace()]
    if empty:
        room = _SHOWN_ROWS - len(report.empty_rows)
        report.empty_rows += [_row_note(chunk, i, report.rows) for i in empty[:room]]
        report.empty_texts += len(empty)
    return texts


def _check_not_numbers(src: Path, texts: list[str], text_column: str, columns: list[str]) -> None:
    """Refuses the first chunk of a file to predict or evaluate when its text column holds only
    numbers (an id or a score column named by mistake): predictions for "1", "2", "3" would be
    garbage, silently."""
    if not only_numbers(texts):
        return
    shown = ", ".join(repr(t) for t in texts[:3]) + (", ..." if len(texts) > 3 else "")
    others = [str(c) for c in columns if c != text_column]
    hint = f" (the other columns: {', '.join(others)})" if others else ""
    raise ValueError(
        f"{src}: column {text_column!r} holds only numbers ({shown}, {len(texts)} row(s) read): "
        f"that is not a column of texts (an id or a score?). Fix: pass --text-column NAME "
        f"(API: text_column=NAME) naming the column that holds the texts{hint}"
    )


def predict_file_with_report(
    clf: Classifier,
    input_path: str | Path,
    output_path: str | Path,
    text_column: str = "text",
    batch_size: int = 32,
    chunk_size: int = 10_000,
    prediction_column: str = "label",
    delimiter: str | None = None,
) -> PredictionReport:
    """Like :func:`predict_file`, and returns a :class:`PredictionReport` (rows, empty texts)."""
    from textransfer.distributed import is_main_process, sharded, wait_for_everyone

    check_batch_size(batch_size)
    check_chunk_size(chunk_size)
    check_delimiter(delimiter)
    new_columns = prediction_columns(clf.labels, prediction_column)
    src, target = check_paths(input_path, output_path)
    proba_of = sharded(partial(clf.predict_proba, batch_size=batch_size))
    main = is_main_process()  # under torchrun every process predicts; only the main one writes
    report = PredictionReport(output=target)
    bar = progress(desc=f"predicting {src.name}", unit="row")
    with bar, _atomic_output(target) if main else nullcontext() as out:
        # out: a file on the main process only; the output keeps a separator the input was read with
        writer = csv.writer(out, delimiter=delimiter or ",") if out is not None else None
        text_at = -1
        for chunk in read_chunks(src, text_column, chunk_size, delimiter):
            if text_at < 0:
                text_at = _check_columns(src, chunk.columns, text_column, new_columns)
                if writer is not None:
                    writer.writerow([*chunk.columns, *new_columns])
            if not chunk.rows:
                continue
            texts = _texts_of(chunk, src, text_at, text_column, report)
            proba = proba_of(texts)
            cut = truncated_inputs(clf, texts)
            if cut is not None:
                report.truncated, report.token_limit = report.truncated + cut[0], cut[1]
            report.rows += len(texts)
            bar.update(len(texts))
            if writer is None:
                continue
            labels = clf.label_map.decode(proba.argmax(axis=1))
            rounded = proba.round(6).tolist()
            writer.writerows(
                [*row, lab, *p] for row, lab, p in zip(chunk.rows, labels, rounded, strict=True)
            )
            logger.debug("%d rows predicted", report.rows)  # the bar shows it; the CLI says the total
        if writer is not None and text_at < 0:  # empty input: still a header
            writer.writerow([text_column, *new_columns])
    wait_for_everyone()  # the others wait until the main process has written the last chunk
    if main and report.empty_texts:
        logger.warning(
            "%s: %s scored as empty strings; fill or remove them if that is not meant",
            src,
            report.empty_note(),
        )
    return report


def predict_file(
    clf: Classifier,
    input_path: str | Path,
    output_path: str | Path,
    text_column: str = "text",
    batch_size: int = 32,
    chunk_size: int = 10_000,
    prediction_column: str = "label",
    delimiter: str | None = None,
) -> int:
    """Predicts every row of ``input_path`` and writes a CSV with the input columns plus the
    prediction columns. Reads and writes in chunks, so memory stays flat.

    The output is written to a temporary file beside ``output_path`` and renamed over it only
    when complete: a failure leaves an existing file exactly as it was. Input = output is refused.

    Under a multi-process launch (``torchrun --nproc_per_node N``) each chunk is shared out
    across the processes and gathered back in input order; only the main process writes, and
    the output is the same file a single process writes.

    Args:
        clf: the classifier.
        input_path: ``.csv``/``.tsv`` (header line), ``.jsonl`` (one object per line),
            ``.parquet`` or ``.txt`` (one text per line).
        output_path: the CSV to write (replaced atomically if it exists).
        text_column: the column holding the texts.
        batch_size: inputs encoded at once (a positive integer).
        chunk_size: rows read, predicted and written at once.
        prediction_column: the name of the predicted-label column (default ``label``, with
            probabilities in ``proba_<label>``; any other name ``NAME`` puts them in
            ``NAME_proba_<label>``). An input column of the same name is an error, never
            overwritten.
        delimiter: the field separator of a ``.csv``/``.tsv`` input that uses another one
            (``";"``); the output is written with it too.

    Returns:
        The number of rows written. Empty texts are scored and logged as a warning (see
        :func:`predict_file_with_report` for their count).
    """
    return predict_file_with_report(
        clf, input_path, output_path, text_column, batch_size, chunk_size, prediction_column, delimiter
    ).rows
