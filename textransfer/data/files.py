"""Reading CSV / TSV / JSONL / Parquet files into a :class:`RawTable`, with errors that name the
file, the column or row at fault, and the fix (never a bare pandas traceback).

pandas is imported inside the readers so that ``import textransfer.data`` stays cheap.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textransfer.data.sources import DataSource

__all__ = ["RawTable", "read_file", "check_columns", "delimited_rows", "ragged_row_error"]

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass
class RawTable:
    """Columns of a source before validation: one entry per data row, in file order.

    Attributes:
        where: how messages name the source (the file path, ``hf:imdb``, ...).
        columns: the columns found, for "column not found" messages.
        texts: raw text values (may hold None/NaN/empty strings).
        labels: raw label values, or None for unlabeled data.
        ids: one id per row.
        lines: the 1-based line of the file each row starts on, when it is known exactly.
    """

    where: str
    columns: list[str]
    texts: Sequence[Any]
    labels: Sequence[Any] | None
    ids: Sequence[Any]
    lines: Sequence[int] | None = None

    def row_note(self, i: int) -> str:
        """How messages name row ``i`` (0-based): ``row 3 (line 4 of the file)``."""
        if self.lines is not None:
            return f"row {i + 1} (line {self.lines[i]} of the file)"
        return f"row {i + 1}"


def check_columns(where: str, columns: Sequence[str], src: DataSource) -> None:
    """Raises a ValueError naming a missing text/label column and listing the columns found."""
    wanted = [("text_column", src.text_column)]
    if src.label_column is not None:
        wanted.append(("label_column", src.label_column))
    for key, col in wanted:
        if col not in columns:
            extra = " or `label_column: null` for unlabeled data" if key == "label_column" else ""
            raise ValueError(
                f"{where}: column {col!r} not found; columns are {list(columns)}. "
                f"Fix: set `{key}:` to one of them{extra}"
            )


def suffix_format(path: Path) -> str | None:
    """The format a file's suffix names (``.gz`` looked through); None for an unknown one."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return _SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "")


def _format_of(src: DataSource, path: Path) -> str:
    if src.format != "auto":
        return src.format
    fmt = suffix_format(path)
    if fmt is None:
        raise ValueError(
            f"{path}: cannot tell the format from the suffix {''.join(path.suffixes) or '(none)'!r}: "
            f"set `format:` to csv, tsv, jsonl or parquet, or rename the file to one of "
            f"{', '.join(sorted(_SUFFIX_FORMATS))}"
        )
    return fmt


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(
                f"{path}: not a valid gzip file ({exc}); decompress it or fix the name"
            ) from None
    return raw


def _decode(path: Path, raw: bytes, encoding: str) -> str:
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start : exc.start + 1].hex()
        raise ValueError(
            f"{path}: byte 0x{bad} at byte offset {exc.start} (line {line}) is not valid {encoding}. "
            "Fix: if the file is in another encoding, set `encoding: latin-1` (or cp1252) in the "
            "data config; or re-save the file as UTF-8"
        ) from None
    # A UTF-8 byte-order mark would otherwise become part of the first column's name.
    return text.removeprefix("\ufeff")


def delimited_rows(lines: Iterable[str], sep: str, where: str) -> Iterator[tuple[int, list[str]]]:
    """Parses CSV/TSV lines with the csv module, yielding ``(line, fields)`` per non-blank row.

    ``line`` is the 1-based line of the file the row starts on (a quoted field may span lines),
    so messages can point at the exact line. ``lines`` should come from a file opened with
    ``newline=""`` (or ``io.StringIO(text, newline="")``) so quoted line breaks survive.
    ``where`` names the file in errors.
    """
    # The csv module refuses fields over 128 KiB by default; a long review is not an error.
    if csv.field_size_limit() < 2**30:
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # strict: a quote never closed must not swallow the rest of the file into one cell.
    reader = csv.reader(lines, delimiter=sep, strict=True)
    last = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValueError(
                f"{where}: cannot parse the row starting on line {last + 1} ({exc}). Fix: check "
                "its quotes (a field that opens a quote must close it, and a quote inside a field "
                'is doubled: "")'
            ) from None
        first, last = last + 1, reader.line_num
        if row:  # blank lines are skipped (as pandas does)
            yield first, row


def ragged_row_error(
    where: str, line: int, n_fields: int, n_header: int, sep: str, extra_fix: str = ""
) -> ValueError:
    """The one message for a row with more fields than the header (never silently re-aligned)."""
    fmt = "TSV" if sep == "\t" else "CSV"
    return ValueError(
        f"{where}: cannot parse as {fmt}: line {line} has {n_fields} fields but the header has "
        f"{n_header}. Fix: quote fields that contain the separator {sep!r} or line breaks, or "
        f"remove the extra separators{extra_fix}"
    )


def _first_ragged_row(
    text: str, sep: str, where: str, empty_extras: bool
) -> tuple[int, int, int] | None:
    """``(line, fields, header fields)`` of the first row with more fields than the header.

    Rows whose extra fields are all empty (a trailing separator) lose nothing when cut to the
    header's width; they count only with ``empty_extras`` and only when no row has data there.
    """
    rows = delimited_rows(io.StringIO(text, newline=""), sep, where)
    header = next(rows, None)
    if header is None:
        return None
    width = len(header[1])
    trailing = None
    for line, row in rows:
        if len(row) > width:
            if any(row[width:]):
                return line, len(row), width
            trailing = trailing or (line, len(row), width)
    return trailing if empty_extras else None


def read_file(src: DataSource) -> RawTable:
    """Reads ``src.source`` as a CSV/TSV/JSONL/Parquet file (checked, not yet validated per row)."""
    path = Path(src.source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"data file {src.source!r} does not exist (resolved to {path.resolve()}; current "
            f"directory {os.getcwd()}). Fix: check the path (relative paths are resolved from the "
            "current directory), or use a packaged dataset name (see textransfer.data.list_datasets())"
        )
    if path.is_dir():
        raise ValueError(f"{path} is a directory: point `source:` at a data file inside it")
    fmt = _format_of(src, path)
    if fmt == "parquet":
        table = _read_parquet(path, src)
    else:
        raw = _read_bytes(path)
        if not raw.strip():
            raise ValueError(
                f"{path}: the file is empty. Fix: point `source:` at a file with data rows"
            )
        text = _decode(path, raw, src.encoding)
        table = (
            _read_jsonl(path, text, src)
            if fmt == "jsonl"
            else _read_delimited(path, text, fmt, src)
        )
    if not table.texts:
        raise ValueError(f"{path}: the file has no data rows (only a header?). Fix: add rows")
    return table


def _ids(columns: Sequence[str], values: dict[str, list[Any]], n: int) -> list[Any]:
    # The source's own ids when it has an `id` column with one unique value per row.
    if "id" in columns:
        ids = values["id"]
        if len(set(map(str, ids))) == n and not any(v is None for v in ids):
            return [v.item() if hasattr(v, "item") else v for v in ids]
    return list(range(1, n + 1))


def _table_from_frame(path: Path, df: Any, src: DataSource, lines: list[int] | None) -> RawTable:
    columns = [str(c) for c in df.columns]
    check_columns(str(path), columns, src)
    texts = df[src.text_column].tolist()
    labels = df[src.label_column].tolist() if src.label_column is not None else None
    ids_source = {"id": df["id"].tolist()} if "id" in columns else {}
    return RawTable(str(path), columns, texts, labels, _ids(columns, ids_source, len(df)), lines)


def _read_delimited(path: Path, text: str, fmt: str, src: DataSource) -> RawTable:
    import pandas as pd

    sep = src.delimiter or ("," if fmt == "csv" else "\t")
    other = "tsv" if fmt == "csv" else "csv"
    other_fix = "" if src.delimiter is not None else f", or set `format: {other}` if the file uses the other separator"
    # The header names no column with `sep` but holds another separator: a parse error or a
    # missing column then says that first (a semicolon CSV reads as one column of commas).
    other_sep = None if src.delimiter is not None else _header_separator(text, sep, fmt, path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            df = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                # Texts stay strings ("1.50" must not become 1.5); only empty fields count as
                # missing, so a review that reads "NA" or "null" is kept as text.
                dtype={src.text_column: str},
                keep_default_na=False,
                na_values=[""],
                # Never take a column as the index: a first data row with one extra separator
                # would otherwise shift every column by one (texts read from the label column).
                index_col=False,
            )
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{path}: the file is empty. Fix: point `source:` at a file with data rows"
        ) from None
    except pd.errors.ParserError as exc:
        if other_sep is not None:
            raise ValueError(other_sep) from None
        ragged = _first_ragged_row(text, sep, str(path), empty_extras=True)
        if ragged is not None:
            raise ragged_row_error(str(path), *ragged, sep, other_fix) from None
        raise ValueError(
            f"{path}: cannot parse as {fmt.upper()} ({exc}). Fix: quote fields that contain the "
            f"separator {sep!r} or line breaks{other_fix}"
        ) from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # With index_col=False pandas only warns, and drops the extra fields, when the first
        # data row is longer than the header: a row with data there is as ragged as any other.
        ragged = _first_ragged_row(text, sep, str(path), empty_extras=False)
        if ragged is not None:
            raise ValueError(other_sep) if other_sep is not None else ragged_row_error(str(path), *ragged, sep, other_fix)
    # Row r sits on line r + 1 (after the header) unless quoted fields span lines or blank lines
    # were skipped; only then are line numbers exact enough to print.
    n_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    lines = list(range(2, len(df) + 2)) if n_lines == len(df) + 1 else None
    if other_sep is not None and src.text_column not in df.columns:
        raise ValueError(other_sep)
    return _table_from_frame(path, df, src, lines)


# Separators files use besides the format's own, in the order they are looked for.
_OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars", ",": "commas"}


def _header_separator(text: str, sep: str, fmt: str, path: Path) -> str | None:
    """The error for a file whose header line has no ``sep`` but another separator (the fix:
    ``delimiter:``, or ``format:`` for the other of csv/tsv); None when it has ``sep`` or none."""
    found = other_separator(header := _first_line(text), sep)
    if found is None:
        return None
    other = "tsv" if fmt == "csv" else "csv"
    fix = f"`format: {other}`" if found[0] == {"tsv": "\t", "csv": ","}[other] else f"`delimiter: {found[0]!r}`"
    return separator_message(str(path), header, sep, found[1], fmt.upper(), f"set {fix} in the data config")


def separator_message(where: str, header: str, sep: str, found: str, expects: str, fix: str) -> str:
    """The one wording of "this file is separated by something else" (training data and
    ``predict`` / ``evaluate`` inputs give different fixes)."""
    return f"{where}: the header line {header[:80]!r} is separated by {found}, not by {sep!r} as {expects} expects. Fix: {fix}"


def _first_line(text: str) -> str:
    """The first non-blank line of ``text`` (without copying the rest of it)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        if line.strip() or end < 0:
            return line.rstrip("\r")
        start = end + 1
    return ""


def check_delimiter(value: str | None, setting: str = "delimiter") -> str | None:
    """``value`` when it is one separator character (None: the format's own), else a ValueError."""
    if value is not None and (len(value) != 1 or value in "\"\r\n " or value.isalnum()):
        raise ValueError(
            f"{setting} must be one separator character such as ';', '|' or a tab, got {value!r}"
        )
    return value


def other_separator(header: str, sep: str) -> tuple[str, str] | None:
    """``(separator, its name)`` when the header line has no ``sep`` but another separator."""
    if sep in header:
        return None
    return next(((c, name) for c, name in _OTHER_SEPARATORS.items() if c != sep and c in header), None)


def _read_jsonl(path: Path, text: str, src: DataSource) -> RawTable:
    records: list[dict[str, Any]] = []
    numbered: list[int] = []  # the line of each record (JSON Lines)
    lines: list[int] | None = numbered
    if text.lstrip().startswith("["):  # a .json file holding one array of records
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        records, lines = list(loaded), None
    else:
        # split("\n"), not splitlines(): U+2028 and friends may legally sit inside JSON strings.
        for lineno, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}). "
                    "Fix: write one JSON object per line (JSON Lines), e.g. "
                    '{"text": "...", "label": "..."}'
                ) from None
            numbered.append(lineno)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            where = f"line {lines[i]}" if lines else f"record {i + 1}"
            raise ValueError(
                f"{path}: {where} is a JSON {type(rec).__name__}, not an object. Fix: write one "
                'object per row, e.g. {"text": "...", "label": "..."}'
            )
    columns = list(dict.fromkeys(k for rec in records for k in rec))
    if not records:
        raise ValueError(f"{path}: the file has no JSON records. Fix: add rows")
    check_columns(str(path), columns, src)
    # A key missing from a row reads as None and is handled like an empty field.
    values = {c: [rec.get(c) for rec in records] for c in columns}
    labels = values[src.label_column] if src.label_column is not None else None
    return RawTable(
        str(path),
        columns,
        values[src.text_column],
        labels,
        _ids(columns, values, len(records)),
        lines,
    )


def _read_parquet(path: Path, src: DataSource) -> RawTable:
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a bad file; all mean the same
        raise ValueError(
            f"{path}: cannot read as Parquet ({type(exc).__name__}: {exc}). Fix: check that the "
            "file is a complete Parquet file, or set `format:` to the file's real format"
        ) from None
    return _table_from_frame(path, df, src, lines=None)
