"""One resolver for every data source: packaged corpora, local files and Hugging Face datasets.

A source is described by a :class:`DataSource` (the ``data:`` block of a config, or a bare string)
and read by :func:`load` into :class:`LabeledTexts`. Every loader feeds the same finishing steps:
rows with empty or missing texts/labels are dropped (or rejected), labels are normalised (ints
stay ints, everything else becomes str) and renamed with ``label_map``, and ``limit`` takes a
seeded, stratified subsample.

Example:
    >>> from textransfer.data import load
    >>> movies = load("movies")  # doctest: +SKIP
    >>> len(movies), movies.label_counts()  # doctest: +SKIP
    (10072, {'positive': 4996, 'negative': 5076})
    >>> reviews = load({"source": "reviews.csv", "text_column": "body", "label_column": "stars"})  # doctest: +SKIP
"""

from __future__ import annotations

import codecs
import difflib
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from textransfer._builtins import builtin_loader
from textransfer._registry import Registry, UnknownNameError
from textransfer._seeds import Seed
from textransfer.data.labeled import Label, LabeledTexts
from textransfer.data.packaged import DATASETS
from textransfer.data.splits import stratified_subsample

if TYPE_CHECKING:
    from textransfer.data.files import RawTable

__all__ = ["DataSource", "LoadReport", "load", "load_with_report"]

logger = logging.getLogger("textransfer.data")

FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet", ".pq", ".gz")
_SHOWN_ROWS = 5  # how many dropped row numbers a warning or error spells out
# Label cells spelled like these (any case, surrounding spaces ignored) are missing labels, not a
# class of their own, unless `label_map` names the spelling as a label.
MISSING_LABEL_SPELLINGS = frozenset({"", "nan", "na", "n/a", "null", "none"})
# A label column where at least this many distinct values occur and over half the rows carry a
# value no other row has is an id, title or score column, not classes.
_MANY_LABELS = 20
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

# Readers of the source kinds that a plug-in package provides (``images``: textransfer.vision
# registers it), so that data/ needs no import of the packages that read other modalities.
# Registry[T] holds factories returning T: a reader is a factory of RawTable (called with the source).
READERS: Registry[RawTable] = Registry("data reader", loader=builtin_loader("data reader"))
register_reader = READERS.register


class DataSource(BaseModel):
    """Where a dataset comes from and how to read it (the ``data:`` block of a config).

    Attributes:
        source: a packaged corpus (``movies``, ``products``, ``rt-polarity``, image sets
            ``digits`` / ``digits-28`` / ``mnist-5k``; see ``list_datasets()``), ``hf:NAME`` for a Hugging Face
            dataset, a file path, or images: ``images:DIR`` (one subfolder per class) or a
            ``.npy`` / ``.npz`` file (see ``textransfer.vision.data``).
        text_column: column holding the texts (files and ``hf:``).
        label_column: column holding the labels; None reads unlabeled data. A column where
            at least 20 distinct values occur and over half the rows carry a value no other row
            has (an id, a text, a score) is rejected: that is not a column of classes.
        format: file format; ``auto`` picks it from the suffix (.csv, .tsv, .txt = tab-separated,
            .jsonl/.json = JSON lines, .parquet; a trailing .gz is decompressed).
        split: the split of a Hugging Face dataset.
        hf_config: the configuration (subset) name of a Hugging Face dataset.
        neutral_band: packaged sentiment corpora: drop sentences with abs(score) < band.
        on_invalid: ``drop`` rows with empty/missing texts or labels, or unreadable image
            files (logged with a count), or ``error``.
        limit: keep a seeded, stratified subsample of this many rows.
        sample_seed: the seed of that subsample.
        encoding: text encoding of CSV/TSV/JSONL files.
        delimiter: the field separator of a CSV/TSV file (one character), for files that use
            another one than the format's (``,`` for csv, tab for tsv and .txt), e.g. ``";"``
            for the semicolon CSVs of spreadsheet exports in many locales.
        domain: a short name for reports; defaults to the packaged name or the file stem.
        label_map: renames labels, keys matched against ``str(label)``, e.g.
            ``{"1": "positive", "0": "negative"}``. Labels spelled as missing values (``NaN``,
            ``NA``, ``N/A``, ``null``, ``None``, any case) are dropped as missing labels unless
            a key here names them; a column of non-integer numbers (a score) must map every
            value here, or be turned into classes in the file.
        keep_labels: keep only rows with these labels (after ``label_map``, matched by their
            string form), e.g. ``[0, 1, 2, 3, 4]`` for a task on half of the digits.
    """

    model_config = ConfigDict(extra="forbid")

    source: str
    text_column: str = "text"
    label_column: str | None = "label"
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet"] = "auto"
    split: str = "train"
    hf_config: str | None = None
    neutral_band: float = 0.5
    on_invalid: Literal["drop", "error"] = "drop"
    limit: int | None = None
    sample_seed: Seed = 0
    encoding: str = "utf-8"
    delimiter: str | None = None
    domain: str | None = None
    label_map: dict[str, str] | None = None
    keep_labels: list[str | int] | None = None

    @field_validator("source", "text_column", "split")
    @classmethod
    def _not_blank(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError(f"`{info.field_name}` must not be empty")
        return value.strip() if info.field_name == "source" else value

    @field_validator("neutral_band")
    @classmethod
    def _band(cls, value: float) -> float:
        if not value >= 0:  # also rejects NaN
            raise ValueError(
                f"neutral_band must be >= 0 (sentences with abs(score) < band are dropped), got {value}"
            )
        return value

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(
                f"limit must be a positive number of rows (or null for all), got {value}"
            )
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r}: use a Python codec name such as utf-8, latin-1 or cp1252"
            ) from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        from textransfer.data.files import check_delimiter

        return check_delimiter(value, 'delimiter (a tab: "\\t" in YAML)')

    @field_validator("label_map", mode="before")
    @classmethod
    def _label_map_keys(cls, value: Any) -> Any:
        # YAML reads `1: positive` with an int key; labels are matched by their string form.
        if isinstance(value, dict):
            for item in (*value.keys(), *value.values()):
                _refuse_yaml_boolean(item, "label_map")
            return {str(k): v for k, v in value.items()}
        return value

    @field_validator("keep_labels", mode="before")
    @classmethod
    def _keep_labels_not_booleans(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            for item in value:
                _refuse_yaml_boolean(item, "keep_labels")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DataSource:
        if self.label_column is not None and self.label_column == self.text_column:
            raise ValueError(
                f"text_column and label_column are both {self.text_column!r}: name two different columns"
            )
        if self.delimiter is not None and (self.kind != "file" or self._file_format() in ("jsonl", "parquet")):
            raise ValueError(
                f"delimiter applies to CSV/TSV files; {self.source!r} is not one (remove `delimiter:`)"
            )
        if self.source.startswith("hf:") and not self.source[3:].strip():
            raise ValueError("`source: hf:` needs a dataset name, e.g. hf:imdb")
        return self

    def _file_format(self) -> str | None:
        """The format a file source is read as: ``format``, else its suffix's (None: unknown)."""
        from textransfer.data.files import suffix_format

        return self.format if self.format != "auto" else suffix_format(Path(self.source))

    @classmethod
    def parse(cls, spec: str | dict[str, Any] | DataSource | Path) -> DataSource:
        """Builds a DataSource from a bare source string, a config dict, or a DataSource.

        Example:
            >>> DataSource.parse("movies").source
            'movies'
        """
        if isinstance(spec, DataSource):
            return spec
        if isinstance(spec, (str, Path)):
            return cls(source=str(spec))
        if isinstance(spec, dict):
            return cls.model_validate(spec)
        raise TypeError(
            "a data source is a name/path string, a dict, a DataSource, a pandas DataFrame or a "
            f"datasets.Dataset, got {type(spec).__name__}"
        )

    @property
    def kind(self) -> Literal["hf", "packaged", "file", "images"]:
        """Which loader reads this source."""
        if self.source.startswith("hf:"):
            return "hf"
        if self.source.startswith("images:") or self.source.lower().endswith((".npy", ".npz")):
            return "images"  # read by the reader textransfer.vision registers
        if self.source in DATASETS and not Path(self.source).is_file():
            return "packaged"
        if _looks_like_file(self.source):
            return "file"
        return "packaged"  # the registry raises for unknown names, listing the known ones

    def resolved_domain(self) -> str:
        """``domain``, else the packaged name, the file stem, or the HF dataset name."""
        if self.domain:
            return self.domain
        kind = self.kind
        if kind == "hf":
            return self.source[3:].rstrip("/").split("/")[-1]
        if kind == "images":
            return Path(self.source.removeprefix("images:")).expanduser().resolve().stem or self.source
        if kind == "file":
            name = Path(self.source).name
            while Path(name).suffix.lower() in FILE_SUFFIXES:
                name = Path(name).stem
            return name or self.source
        return self.source


def _looks_like_file(source: str) -> bool:
    path = Path(source).expanduser()
    return (
        path.exists()
        or any(source.lower().endswith(s) for s in FILE_SUFFIXES)
        or "/" in source
        or "\\" in source
        or source.startswith((".", "~"))
    )


@dataclass
class LoadReport:
    """What happened while loading a source.

    Attributes:
        source: the source string.
        rows_read: data rows read before any were dropped.
        dropped: how many rows were dropped for empty or missing texts/labels.
        dropped_rows: their 1-based data row numbers.
        reasons: count per reason (``"empty text"``, ``"missing label"``, ...).
        kept: rows in the returned data (after ``limit``).
    """

    source: str
    rows_read: int = 0
    dropped: int = 0
    dropped_rows: list[int] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    kept: int = 0


def load(spec: str | dict[str, Any] | DataSource | Path | Any, **options: Any) -> LabeledTexts:
    """Loads a dataset: a packaged name, ``hf:NAME``, a file, or a DataFrame / datasets.Dataset.

    Args:
        spec: a source string or a :class:`DataSource` (or its dict form); or a table in memory:
            a pandas ``DataFrame`` or a Hugging Face ``datasets.Dataset`` (a ``DatasetDict`` with
            ``split=``).
        **options: :class:`DataSource` fields, overriding those of ``spec``: ``text_column``
            (default ``"text"``), ``label_column`` (default ``"label"``; None for unlabeled
            data), ``domain``, ``on_invalid``, ``label_map``, ``keep_labels``, ``limit``,
            ``sample_seed``; for files also ``format``, ``encoding`` and ``delimiter``, for
            ``hf:`` sources ``split`` and ``hf_config``.

    Returns:
        The rows as LabeledTexts, in the source's own order; ids are the source's own ``id``
        column where it has one, else 1-based data row numbers. A source may come grouped by
        label (297 of the first 300 packaged movie sentences are positive): take a subset with
        ``limit`` (seeded, stratified) or :func:`~textransfer.data.stratified_subsample`, not a
        slice.

    Raises:
        FileNotFoundError, ValueError, UnknownNameError: with the file, column or row at fault
            and the fix. Dropped rows are logged on the ``textransfer.data`` logger; use
            :func:`load_with_report` to get their count.
        TypeError: an unknown option, or one that does not apply to a table in memory.

    Example:
        >>> data = load({"source": "rt-polarity", "limit": 10})  # doctest: +SKIP
        >>> reviews = load(df, text_column="review", label_column="stars")  # doctest: +SKIP
    """
    return load_with_report(spec, **options)[0]


def load_with_report(
    spec: str | dict[str, Any] | DataSource | Path | Any, **options: Any
) -> tuple[LabeledTexts, LoadReport]:
    """Like :func:`load`, and also returns a :class:`LoadReport` (rows read, dropped, kept)."""
    from textransfer.data.frames import table_kind

    if table_kind(spec) is not None:
        return _load_table(spec, options)
    src = DataSource.parse(spec)
    if options:
        src = _with_options(src.model_dump(exclude_unset=True), options)
    kind = src.kind
    if kind == "hf":
        from textransfer.data.hf import read_hf

        table = read_hf(src)
    elif kind == "file":
        from textransfer.data.files import read_file

        table = read_file(src)
    elif kind == "images":  # `images:DIR` (class subfolders), .npy / .npz
        table = READERS.get(kind)(src)
    else:
        table = _read_packaged(src)
    return _finish(table, src)


def _load_table(data: Any, options: dict[str, Any]) -> tuple[LabeledTexts, LoadReport]:
    """A DataFrame / Dataset / DatasetDict through the same row checks as a file."""
    from textransfer.data.frames import FRAME_OPTIONS, read_table, table_kind

    kind = table_kind(data)
    options = dict(options)
    split = options.pop("split", None)
    _check_option_names(options)
    foreign = sorted(set(options) - FRAME_OPTIONS)
    if foreign:
        raise TypeError(
            f"load_dataset(): {', '.join(foreign)} applies to files or hf: sources, not to a "
            f"{kind} in memory. Fix: leave it out"
        )
    if options.get("domain") is None:  # names the data in reports; LabeledTexts' default
        options["domain"] = "data"
    src = _with_options({"source": kind}, options)
    return _finish(read_table(data, src, split=split), src)


def _check_option_names(options: dict[str, Any]) -> None:
    allowed = [name for name in DataSource.model_fields if name != "source"]
    for key in options:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"load_dataset() got an unexpected keyword argument {key!r}.{hint} "
                f"Options: {', '.join(allowed)}"
            )


def _with_options(base: dict[str, Any], options: dict[str, Any]) -> DataSource:
    """A DataSource from ``base`` with ``options`` over it; one-line errors naming the option."""
    from pydantic import ValidationError

    _check_option_names(options)
    try:
        return DataSource.model_validate({**base, **options})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        msg = err["msg"].removeprefix("Value error, ")
        if err["loc"]:
            key = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"load_dataset({key}={err['input']!r}): {msg}") from None
        raise ValueError(f"load_dataset(): {msg}") from None


def _read_packaged(src: DataSource) -> RawTable:
    from textransfer.data.files import RawTable

    try:
        factory = DATASETS.get(src.source)
    except UnknownNameError as exc:
        raise UnknownNameError(
            f"{exc} — or give a file path (.csv, .tsv, .jsonl, .parquet) or hf:NAME"
        ) from None
    data = factory(src)
    if not isinstance(data, LabeledTexts):
        raise TypeError(
            f"dataset {src.source!r} returned {type(data).__name__}; a registered dataset must "
            "return LabeledTexts"
        )
    labels = data.labels if src.label_column is not None else None
    return RawTable(src.source, ["text", "label"], data.texts, labels, data.ids)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas missing values, without pandas
        return True
    try:
        return bool(value != value)  # numpy NaN scalars
    except (TypeError, ValueError):
        return False


def _row_problem(
    text: Any, label: Any, labeled: bool, named: frozenset[str] = frozenset()
) -> str | None:
    if _is_missing(text):
        return "missing text"
    if isinstance(text, str) and not text.strip():
        return "empty text"
    if labeled:
        if _is_missing(label):
            return "missing label"
        if isinstance(label, str) and not label.strip():
            return "empty label"
        spelled_missing = (
            isinstance(label, str) and label.strip().lower() in MISSING_LABEL_SPELLINGS
        )
        if spelled_missing and label not in named:
            return "missing label"  # "NaN", "N/A", "null": a gap in the data, not a class
    return None


def _as_number(value: Any) -> float | None:
    """The number a label stands for (``0.5``, ``"0.5"``, ``3``), or None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _check_not_a_score(labels: list[Any], src: DataSource, where: str) -> None:
    """Rejects a label column of non-integer numbers (a score) that `label_map` does not map."""
    numbers = [_as_number(v) for v in labels]
    if any(x is None for x in numbers):
        return
    fractional = {str(v) for v, x in zip(labels, numbers, strict=True) if x is not None and not x.is_integer()}
    unmapped = sorted(fractional - set(src.label_map or {}))
    if unmapped:
        raise ValueError(
            f"{where}: label column {src.label_column!r} holds non-integer numbers "
            f"({', '.join(unmapped[:3])}{', ...' if len(unmapped) > 3 else ''}; "
            f"{len(set(map(str, labels)))} distinct values): that is a score, not classes. Fix: "
            "binarise it in the file (e.g. a column `label` = positive where score >= 0.5, else "
            "negative) and point `label_column:` at it, or map every value to a class with "
            "`label_map:`"
        )


def only_numbers(texts: Sequence[Any]) -> bool:
    """Whether ``texts`` is non-empty and every value is a number (``3``, ``"0.5"``, numpy
    scalars): the sign of an id or score column named where a column of texts was meant."""
    values = [t.item() if hasattr(t, "item") and getattr(t, "ndim", 0) == 0 else t for t in texts]
    return bool(values) and all(_as_number(v) is not None for v in values)


def _check_texts_not_numbers(texts: list[Any], src: DataSource, where: str) -> None:
    """Rejects a text column that holds only numbers (an id or a score column named by mistake):
    a model trained on "1", "2", "3" would answer with garbage, silently."""
    if only_numbers(texts):
        shown = ", ".join(repr(str(v)) for v in texts[:3])
        raise ValueError(
            f"{where}: text column {src.text_column!r} holds only numbers ({shown}{', ...' if len(texts) > 3 else ''}): "
            "that is not a column of texts (an id or a score?). Fix: point `text_column:` at the "
            "column that holds the texts"
        )


def _check_cardinality(labels: list[Label], src: DataSource, where: str) -> None:
    """Rejects a label column where most rows carry a value no other row has (see _MANY_LABELS)."""
    counts = Counter(labels)
    singletons = sum(1 for n in counts.values() if n == 1)
    if len(counts) >= _MANY_LABELS and singletons > len(labels) / 2:
        examples = ", ".join(repr(lab) for lab in list(counts)[:3])
        raise ValueError(
            f"{where}: label column {src.label_column!r} has {len(counts)} distinct values in "
            f"{len(labels)} rows and {singletons} rows carry a value no other row has ({examples}, "
            "...): that is not a column of classes (an id, a text or a score?). Fix: point "
            "`label_column:` at the class column, or map the values to a few classes with "
            "`label_map:`"
        )


def _refuse_yaml_boolean(value: Any, field: str) -> None:
    """A label written unquoted as yes/no/on/off/true/false reaches us as a YAML boolean, which
    names no label as written (``yes`` would become ``True``, or 1): refuse it, saying how to quote."""
    if isinstance(value, bool):
        raise ValueError(
            f"{str(value).lower()} is a YAML boolean, not a label: YAML reads unquoted "
            "yes/no/on/off/true/false as true or false. Quote the label as it is written in the "
            f"data, e.g. {field}: " + ("{'yes': positive, 'no': negative}" if field == "label_map" else "['yes', 'no']")
        )


def _normalise_labels(labels: list[Any]) -> list[Label]:
    """Whole numbers stay (Python) ints when every label is numeric; anything else becomes str."""
    values = [v.item() if hasattr(v, "item") else v for v in labels]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and all(isinstance(v, int) or float(v).is_integer() for v in values):
        return [int(v) for v in values]
    return [str(v) for v in values]


def _finish(table: RawTable, src: DataSource) -> tuple[LabeledTexts, LoadReport]:
    labeled = table.labels is not None
    report = LoadReport(source=src.source, rows_read=len(table.texts))
    keep: list[int] = []
    bad: list[tuple[int, str]] = []
    named = frozenset(src.label_map or {})  # missing-value spellings the user maps are labels
    for i, text in enumerate(table.texts):
        problem = _row_problem(text, table.labels[i] if table.labels is not None else None, labeled, named)
        if problem is None:
            keep.append(i)
        else:
            bad.append((i, problem))
    if bad:
        for _, problem in bad:
            report.reasons[problem] = report.reasons.get(problem, 0) + 1
        report.dropped = len(bad)
        report.dropped_rows = [i + 1 for i, _ in bad]
        why = ", ".join(f"{n} {p}" for p, n in report.reasons.items())
        shown = "; ".join(f"{table.row_note(i)}: {p}" for i, p in bad[:_SHOWN_ROWS])
        more = f"; and {len(bad) - _SHOWN_ROWS} more" if len(bad) > _SHOWN_ROWS else ""
        if src.on_invalid == "error":
            raise ValueError(
                f"{table.where}: {len(bad)} of {len(table.texts)} rows are unusable ({why}): "
                f"{shown}{more}. Fix the rows, or set `on_invalid: drop` to skip them"
            )
        logger.warning(
            "%s: dropped %d of %d rows (%s): %s%s. Set `on_invalid: error` to fail instead",
            table.where,
            len(bad),
            len(table.texts),
            why,
            shown,
            more,
        )
    if not keep:
        raise ValueError(
            f"{table.where}: no usable rows ({len(table.texts)} read, all with empty or missing "
            f"text in {src.text_column!r} or label in {src.label_column!r}): check the column names"
        )
    kept = [table.texts[i] for i in keep]
    _check_texts_not_numbers(kept, src, table.where)
    # Images (arrays with ndim >= 2, from image sources) stay as they are; other values -> str.
    texts = [t if isinstance(t, str) or getattr(t, "ndim", 0) >= 2 else str(t) for t in kept]
    labels = None
    if table.labels is not None:  # `labeled`, spelled so that mypy narrows the type
        raw = [v.item() if hasattr(v, "item") else v for v in (table.labels[i] for i in keep)]
        _check_not_a_score(raw, src, table.where)
        labels = _normalise_labels(raw)
        if src.label_map:
            labels = _apply_label_map(labels, src.label_map, table.where)
    data = LabeledTexts(
        texts, labels, domain=src.resolved_domain(), ids=[table.ids[i] for i in keep]
    )
    if src.keep_labels is not None:
        data = _keep_labels(data, src.keep_labels, table.where)
    if data.labels is not None:
        _check_cardinality(data.labels, src, table.where)
    if src.limit is not None:
        data = stratified_subsample(data, src.limit, seed=src.sample_seed)
    report.kept = len(data)
    return data, report


def _keep_labels(data: LabeledTexts, wanted: list[str | int], where: str) -> LabeledTexts:
    if data.labels is None:
        raise ValueError(f"{where}: keep_labels needs labels, but the data is read without a label column")
    found = {str(lab) for lab in data.labels}
    wanted_str = {str(w) for w in wanted}
    missing = sorted(wanted_str - found)
    if missing == sorted(wanted_str):
        raise ValueError(f"{where}: keep_labels {missing} match no label; labels found: {sorted(found)[:20]}")
    if missing:
        logger.warning("%s: keep_labels %s match no label; labels found: %s", where, missing, sorted(found)[:20])
    return data.subset([i for i, lab in enumerate(data.labels) if str(lab) in wanted_str])


def _apply_label_map(labels: list[Label], mapping: dict[str, str], where: str) -> list[Label]:
    seen = {str(lab) for lab in labels}
    unused = [k for k in mapping if k not in seen]
    if unused:
        # A key that matches nothing is almost always a typo or a type mix-up ("1.0" vs "1").
        logger.warning(
            "%s: label_map keys %s match no label; labels found: %s",
            where,
            unused,
            sorted(seen)[:20],
        )
    return [mapping.get(str(lab), lab) for lab in labels]
