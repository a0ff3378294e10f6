"""``hf:NAME`` sources: Hugging Face datasets, loaded with ``datasets.load_dataset``.

Offline, ``load_dataset`` retries for about 40 s before failing; here an offline machine gets a
clear error at once, saying how to bring the data over as a file. With ``HF_HUB_OFFLINE=1`` (or
``HF_DATASETS_OFFLINE=1``) a copy already in the local cache still loads.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from textransfer._optional import require
from textransfer.data.files import RawTable, check_columns

if TYPE_CHECKING:
    from textransfer.data.sources import DataSource

__all__ = ["read_hf"]

_TRUE = {"1", "true", "yes", "on"}


def _offline_env() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _hub_reachable() -> bool:
    # resources.py owns the (cached, once per process) probe of huggingface.co:443.
    from textransfer.resources import network_available

    return network_available()


def _offline_error(src: DataSource, name: str, reason: str) -> ConnectionError:
    stem = name.rstrip("/").split("/")[-1]
    cfg = f", {src.hf_config!r}" if src.hf_config else ""
    out = f"{stem}-{src.split}.parquet"
    return ConnectionError(
        f"cannot load Hugging Face dataset {name!r} (split {src.split!r}): {reason}. Fix: on a "
        f"machine with internet run `datasets.load_dataset({name!r}{cfg}, split={src.split!r})"
        f".to_parquet({out!r})`, copy {out} here and set `source: {out}` (keep text_column / "
        "label_column as in the dataset; ClassLabel ids are stored as ints, map them with "
        "`label_map:`); or unset HF_HUB_OFFLINE/HF_DATASETS_OFFLINE when online"
    )


def read_hf(src: DataSource) -> RawTable:
    """Loads ``src.source`` (``hf:NAME``) split ``src.split`` into a RawTable.

    ``ClassLabel`` label columns are mapped from ids to their names; ids of -1 (HF's "no label")
    read as missing labels.
    """
    name = src.source[3:].strip()
    where = f"hf:{name}"
    env_offline = _offline_env()
    if not env_offline and not _hub_reachable():
        raise _offline_error(src, name, "huggingface.co cannot be reached (no network)")
    datasets = require("datasets", extra="hf", feature=f"the data source {where!r}")
    try:
        ds = datasets.load_dataset(name, src.hf_config, split=src.split)
    except Exception as exc:  # datasets raises many types; all mean "could not get it"
        if env_offline:
            raise _offline_error(
                src, name, f"offline mode is set and it is not in the local cache ({exc})"
            ) from None
        raise ValueError(
            f"{where}: load_dataset({name!r}, {src.hf_config!r}, split={src.split!r}) failed: "
            f"{type(exc).__name__}: {exc}. Fix: check the dataset name, `hf_config:` (the subset) "
            "and `split:` on huggingface.co/datasets"
        ) from None
    columns = list(ds.column_names)
    check_columns(where, columns, src)
    texts = list(ds[src.text_column])
    labels: list[Any] | None = None
    if src.label_column is not None:
        labels = list(ds[src.label_column])
        labels = class_label_names(ds, src.label_column, labels)
    ids: list[Any] = list(range(1, len(texts) + 1))
    for key in ("id", "idx"):
        if key in columns:
            own = list(ds[key])
            if len(set(map(str, own))) == len(own):
                ids = own
            break
    return RawTable(where, columns, texts, labels, ids)


def class_label_names(ds: Any, column: str, labels: list[Any]) -> list[Any]:
    """``labels`` of a ``datasets.Dataset`` column with its ``ClassLabel`` ids turned into their
    names (-1, the library's "no label", and out-of-range ids become None); other columns as
    they are."""
    import datasets

    feature = ds.features.get(column)
    if not isinstance(feature, datasets.ClassLabel):
        return labels
    names = feature.names
    return [names[i] if i is not None and 0 <= i < len(names) else None for i in labels]
