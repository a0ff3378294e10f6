"""Data: the in-memory dataset type, label maps, sources and splits.

``load`` reads any source (packaged corpus name, ``hf:NAME``, a CSV/TSV/JSONL/Parquet file, or a
pandas DataFrame / Hugging Face ``datasets.Dataset`` in memory) into :class:`LabeledTexts`;
``stratified_split`` makes deterministic train/test splits.

Example:
    >>> from textransfer.data import load, stratified_split
    >>> movies = load("movies")  # doctest: +SKIP
    >>> train, test = stratified_split(movies, test_size=0.2, seed=0)  # doctest: +SKIP
    >>> reviews = load(df, text_column="review", label_column="stars")  # doctest: +SKIP
"""

from __future__ import annotations

# pandas / pyarrow / datasets are imported inside the loaders, never here.
from textransfer.data.labeled import LabeledTexts, LabelMap
from textransfer.data.packaged import DATASETS, list_datasets, register_dataset
from textransfer.data.sources import DataSource, LoadReport, load, load_with_report
from textransfer.data.splits import stratified_split, stratified_subsample

__all__ = [
    "DATASETS",
    "DataSource",
    "LabelMap",
    "LabeledTexts",
    "LoadReport",
    "list_datasets",
    "load",
    "load_with_report",
    "register_dataset",
    "stratified_split",
    "stratified_subsample",
]
