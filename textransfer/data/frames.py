"""In-memory tables: a pandas ``DataFrame`` or a Hugging Face ``datasets.Dataset`` read into a
:class:`RawTable`, so that they go through the same row checks as files (see ``sources._finish``).

Neither pandas nor datasets is imported here: an object can only be a DataFrame if pandas is
already imported (``sys.modules``), so recognising one costs nothing.

Example:
    >>> import pandas as pd  # doctest: +SKIP
    >>> from textransfer.data import load
    >>> data = load(pd.DataFrame({"review": ["good", "bad"], "stars": [5, 1]}),
    ...             text_column="review", label_column="stars")  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from textransfer.data.files import RawTable, _ids

if TYPE_CHECKING:
    from textransfer.data.sources import DataSource

__all__ = ["FRAME_OPTIONS", "TableKind", "read_table", "table_kind"]

TableKind = Literal["DataFrame", "Dataset", "DatasetDict"]

# The DataSource fields that mean something for a table already in memory; the others (format,
# encoding, hf_config, neutral_band) read files or the hub and are refused, not ignored.
FRAME_OPTIONS = frozenset(
    {
        "text_column",
        "label_column",
        "on_invalid",
        "limit",
        "sample_seed",
        "domain",
        "label_map",
        "keep_labels",
    }
)


def table_kind(obj: Any) -> TableKind | None:
    """``"DataFrame"``, ``"Dataset"`` or ``"DatasetDict"`` for those objects, else None."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        return "DataFrame"
    ds = sys.modules.get("datasets")
    if ds is not None:
        if isinstance(obj, ds.Dataset):
            return "Dataset"
        if isinstance(obj, ds.DatasetDict):
            return "DatasetDict"
    return None


@dataclass
class FrameTable(RawTable):
    """A RawTable whose rows are named by position and index label (``row 3 (index 2)``)."""

    index: Sequence[Any] | None = None

    def row_note(self, i: int) -> str:
        if self.index is None:
            return super().row_note(i)
        return f"row {i + 1} (index {self.index[i]!r})"


def pick_split(data: Any, split: str | None) -> Any:
    """The ``split`` of a DatasetDict; without one, an error listing the splits it holds."""
    splits = list(data)
    if split is None:
        first = splits[0] if splits else "train"
        raise ValueError(
            f"a DatasetDict holds several splits ({', '.join(map(repr, splits)) or 'none'}); "
            f"textransfer reads one at a time. Fix: pass one split, e.g. load_dataset(data[{first!r}]) "
            f"or load_dataset(data, split={first!r})"
        )
    if split not in data:
        raise ValueError(
            f"the DatasetDict has no split {split!r}; its splits are {splits}. Fix: pass one of them"
        )
    return data[split]


def _check_columns(where: str, columns: list[str], src: DataSource) -> None:
    # Worded for Python callers (the keyword arguments), unlike files.check_columns (config keys).
    wanted = [("text_column", src.text_column)]
    if src.label_column is not None:
        wanted.append(("label_column", src.label_column))
    for key, col in wanted:
        if col not in columns:
            unlabeled = ", or label_column=None for unlabeled data" if key == "label_column" else ""
            # Suggest a column the other option does not already name.
            others = [c for c in columns if c not in (src.text_column, src.label_column)]
            example = (others or columns or ["NAME"])[0]
            raise ValueError(
                f"{where}: column {col!r} not found; columns are {columns}. Fix: name the "
                f"column, e.g. load_dataset(data, {key}={example!r}){unlabeled}"
            )
        if columns.count(col) > 1:
            raise ValueError(
                f"{where}: {columns.count(col)} columns are named {col!r}. Fix: rename them so "
                "that the name is unique (DataFrame.rename or .loc[:, ~df.columns.duplicated()])"
            )


def _read_dataframe(df: Any, src: DataSource) -> FrameTable:
    where = "DataFrame"
    columns = [str(c) for c in df.columns]
    _check_columns(where, columns, src)
    # Column labels may be non-strings (ints); messages and options use their string form.
    by_name = {str(c): c for c in df.columns}

    def column(name: str) -> list[Any]:
        return df[by_name[name]].tolist()

    texts = column(src.text_column)
    labels = column(src.label_column) if src.label_column is not None else None
    own_ids = {"id": column("id")} if "id" in by_name and columns.count("id") == 1 else {}
    ids = _ids(list(own_ids), own_ids, len(texts))
    return FrameTable(where, columns, texts, labels, ids, index=df.index.tolist())


def _read_dataset(ds: Any, src: DataSource) -> FrameTable:
    from textransfer.data.hf import class_label_names

    where = "Dataset"
    columns = list(ds.column_names)
    _check_columns(where, columns, src)
    texts = list(ds[src.text_column])
    labels: list[Any] | None = None
    if src.label_column is not None:
        labels = class_label_names(ds, src.label_column, list(ds[src.label_column]))
    own_ids = {"id": list(ds["id"])} if "id" in columns else {}
    ids = _ids(list(own_ids), own_ids, len(texts))
    return FrameTable(where, columns, texts, labels, ids, index=list(range(len(texts))))


def read_table(data: Any, src: DataSource, split: str | None = None) -> FrameTable:
    """Reads a DataFrame / Dataset (or one ``split`` of a DatasetDict) into a table.

    Args:
        data: the in-memory table.
        src: its reading options (columns; the rest is applied by ``sources._finish``).
        split: the split of a DatasetDict (required for one, refused for anything else).

    Raises:
        ValueError: a missing or duplicated column (listing the columns found), no rows, or a
            DatasetDict without a split.
    """
    kind = table_kind(data)
    if kind == "DatasetDict":
        data, kind = pick_split(data, split), "Dataset"
    elif split is not None:
        raise TypeError(f"split={split!r} picks a split of a DatasetDict; a {kind} has none")
    table = _read_dataframe(data, src) if kind == "DataFrame" else _read_dataset(data, src)
    if not table.texts:
        raise ValueError(f"{table.where}: it has no rows. Fix: pass a table with data rows")
    return table
