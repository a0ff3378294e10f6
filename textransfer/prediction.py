"""Batch prediction over files: read inputs in chunks, write labels and probabilities."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from textransfer.classifier import Classifier
from textransfer.encoders.cache import check_chunk_size

logger = logging.getLogger("textransfer.prediction")


def _read_chunks(path: Path, text_column: str, chunk_size: int) -> Iterator[Any]:
    """Yields pandas DataFrames of at most ``chunk_size`` rows with a ``text_column``."""
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"input file not found: {path} (cwd: {Path.cwd()})")
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            # One text per line, no header, no quoting.
            with path.open(encoding="utf-8") as f:
                lines: list[str] = []
                for line in f:
                    lines.append(line.rstrip("\r\n"))
                    if len(lines) == chunk_size:
                        yield pd.DataFrame({text_column: lines})
                        lines = []
                if lines:
                    yield pd.DataFrame({text_column: lines})
            return
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
            return
        if suffix in (".jsonl", ".json"):
            reader = pd.read_json(path, lines=True, chunksize=chunk_size, dtype=False)
        elif suffix in (".csv", ".tsv"):
            reader = pd.read_csv(
                path, sep="\t" if suffix == ".tsv" else ",", chunksize=chunk_size, dtype=str, keep_default_na=False
            )
        else:
            raise ValueError(f"{path}: unsupported input format {suffix!r}; use .csv, .tsv, .jsonl, .parquet or .txt")
        with reader:
            yield from reader
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not valid UTF-8 (byte offset {exc.start}): re-save the file as UTF-8"
        ) from None


def predict_file(
    clf: Classifier,
    input_path: str | Path,
    output_path: str | Path,
    text_column: str = "text",
    batch_size: int = 32,
    chunk_size: int = 10_000,
) -> int:
    """Predicts every row of ``input_path`` and writes a CSV with the input columns plus
    ``label`` and ``proba_<label>`` columns. Reads and writes in chunks, so memory stays flat.

    Under a multi-process launch (``torchrun --nproc_per_node N``) each chunk is shared out
    across the processes and gathered back in input order; only the main process writes, and
    the output is the same file a single process writes.

    Returns:
        The number of rows written.
    """
    from textransfer.training.sharding import is_main_process, sharded, wait_for_everyone

    src, dst = Path(input_path), Path(output_path)
    check_chunk_size(chunk_size)
    proba_of = sharded(partial(clf.predict_proba, batch_size=batch_size))
    main = is_main_process()
    if main:
        dst.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with dst.open("w", newline="", encoding="utf-8") if main else nullcontext() as out:
        writer: Any = None
        for chunk in _read_chunks(src, text_column, chunk_size):
            texts = _chunk_texts(chunk, src, text_column, written)
            proba = proba_of(texts)
            written += len(chunk)
            if not main:
                continue
            chunk = chunk.copy()
            chunk["label"] = clf.label_map.decode(proba.argmax(axis=1)) if len(proba) else []
            for j, lab in enumerate(clf.labels):
                chunk[f"proba_{lab}"] = proba[:, j].round(6)
            if writer is None:
                writer = csv.writer(out)
                writer.writerow(chunk.columns)
            writer.writerows(chunk.itertuples(index=False, name=None))
            logger.info("%d rows predicted", written)
        if main and writer is None:  # empty input: still write a header
            csv.writer(out).writerow([text_column, "label", *[f"proba_{lab}" for lab in clf.labels]])
    wait_for_everyone()  # the others wait until the main process has written the last chunk
    return written


def _chunk_texts(chunk: Any, src: Path, text_column: str, offset: int) -> list[str]:
    """The texts of one input chunk; a clear error for a missing column or a non-text cell."""
    if text_column not in chunk.columns:
        raise ValueError(
            f"{src}: no column {text_column!r}; columns found: {', '.join(map(str, chunk.columns))}. "
            "Pass --text-column NAME"
        )
    texts = chunk[text_column].tolist()
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(
            f"{src}: row {offset + bad[0] + 1} of column {text_column!r} is not text ({texts[bad[0]]!r}); "
            "fill or remove missing texts"
        )
    return texts
