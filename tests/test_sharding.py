"""Streamed and multi-process encoding give exactly the single-process, in-memory results:
features streamed to disk, prediction over a file in small chunks, and (under ``torchrun`` with
two CPU processes) sharded encoding, sharded frozen training and sharded ``predict --input``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.fixtures.models import TOY_TEXTS
from tests.fixtures.torchrun import run_torchrun
from textransfer.classifier import Classifier
from textransfer.distributed import sharded
from textransfer.encoders.cache import encode_streamed, write_npy_stream
from textransfer.encoders.sharded import encode_sharded, encode_streamed_sharded
from textransfer.encoders.static import StaticEncoder
from textransfer.prediction import predict_file

TEXTS = [*TOY_TEXTS, "zzz unknown", "", "good , bad"]  # 23: odd, so two shards differ in size


class LazyTexts:
    """A sequence that builds its slices on demand (no list of all texts in memory)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, s: slice) -> list[str]:
        return [TEXTS[i % len(TEXTS)] for i in range(*s.indices(self.n))]


@pytest.fixture
def glove_clf(tiny_glove_file, toy_movies) -> Classifier:
    import textransfer

    strategy = textransfer.create_strategy("frozen")
    return strategy.fit(StaticEncoder(str(tiny_glove_file)), textransfer.create_head("logreg"), toy_movies)


def test_single_process_sharding_is_a_pass_through(tiny_glove_file, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    enc = StaticEncoder(str(tiny_glove_file))
    fn = enc.encode
    assert sharded(fn) is fn
    np.testing.assert_array_equal(encode_sharded(enc, TEXTS, batch_size=4), enc.encode(TEXTS))


@pytest.mark.parametrize("chunk_size", [1, 5, 10_000])
def test_streamed_lazy_inputs_equal_in_memory(tiny_glove_file, tmp_path, chunk_size):
    enc = StaticEncoder(str(tiny_glove_file))
    lazy = LazyTexts(57)
    streamed = encode_streamed_sharded(enc, lazy, tmp_path / "f.npy", chunk_size=chunk_size)
    assert isinstance(streamed, np.memmap) and streamed.shape == (57, enc.dim)
    np.testing.assert_array_equal(streamed, enc.encode(lazy[0:57]))
    assert [p.name for p in tmp_path.iterdir()] == ["f.npy"]


def test_streamed_empty_input_and_bad_chunk_size(tiny_glove_file, tmp_path):
    enc = StaticEncoder(str(tiny_glove_file))
    assert encode_streamed(enc, [], tmp_path / "empty.npy").shape == (0, enc.dim)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        encode_streamed(enc, TEXTS, tmp_path / "x.npy", chunk_size=0)


def test_stream_writer_rejects_rows_that_do_not_fit_and_leaves_no_file(tmp_path):
    dst = tmp_path / "f.npy"
    with pytest.raises(ValueError, match="3 rows, 4 announced"):
        write_npy_stream(dst, [np.ones((3, 2))], (4, 2))
    with pytest.raises(ValueError, match="does not fit"):
        write_npy_stream(dst, [np.ones((3, 5))], (3, 2))
    with pytest.raises(ValueError, match="more than the 2 rows"):
        write_npy_stream(dst, [np.ones((3, 2))], (2, 2))
    assert not list(tmp_path.iterdir())


def test_predict_file_in_small_chunks_equals_in_memory(glove_clf, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    assert predict_file(glove_clf, src, tmp_path / "chunked.csv", chunk_size=4) == len(TEXTS)
    rows = list(csv.DictReader((tmp_path / "chunked.csv").open(encoding="utf-8")))
    proba = glove_clf.predict_proba(TEXTS)
    assert [r["text"] for r in rows] == TEXTS
    assert [r["label"] for r in rows] == glove_clf.predict(TEXTS)
    for j, lab in enumerate(glove_clf.labels):
        np.testing.assert_allclose([float(r[f"proba_{lab}"]) for r in rows], proba[:, j], atol=1e-6)
    assert predict_file(glove_clf, src, tmp_path / "whole.csv") == len(TEXTS)
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()


SCRIPT = """
import json, sys
import numpy as np
import textransfer
from textransfer.cli import main
from textransfer.encoders.static import StaticEncoder
from textransfer.prediction import predict_file
from textransfer.distributed import _state, end_processes
from textransfer.encoders.sharded import encode_sharded, encode_streamed_sharded
from tests.conftest import make_toy
from tests.test_sharding import TEXTS

glove, model_dir, out = sys.argv[1:]
state = _state()
rank = state.process_index
enc = StaticEncoder(glove)
np.save(f"{out}/enc{rank}.npy", encode_sharded(enc, TEXTS, batch_size=4))
np.save(f"{out}/one{rank}.npy", encode_sharded(enc, TEXTS[:1]))  # one shard is empty
np.save(f"{out}/none{rank}.npy", encode_sharded(enc, []))
np.save(f"{out}/streamed{rank}.npy", encode_streamed_sharded(enc, TEXTS, f"{out}/streamed.npy", chunk_size=5))
toy = make_toy("movies", ["film", "movie", "plot", "actor"], seed=1)
clf = textransfer.create_strategy("frozen").fit(StaticEncoder(glove), textransfer.create_head("logreg"), toy)
np.save(f"{out}/proba{rank}.npy", clf.predict_proba(TEXTS))
assert main(["-q", "predict", model_dir, "--input", f"{out}/in.txt", "--output", f"{out}/cli.csv"]) == 0
predict_file(clf, f"{out}/in.txt", f"{out}/chunked.csv", chunk_size=5)
# A file per rank: the two processes share one stdout, where their lines can interleave.
with open(f"{out}/result{rank}.json", "w") as fh:
    json.dump({"rank": rank, "processes": state.num_processes, "type": str(state.distributed_type)}, fh)
end_processes()
"""


@pytest.mark.slow
def test_two_processes_shard_and_gather_in_input_order(tiny_glove_file, glove_clf, toy_movies, tmp_path):
    (tmp_path / "run.py").write_text(SCRIPT)
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    glove_clf.save(tmp_path / "model")
    proc = run_torchrun([tmp_path / "run.py", tiny_glove_file, tmp_path / "model", tmp_path])
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads((tmp_path / f"result{rank}.json").read_text()) for rank in (0, 1)]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["processes"] == 2 and "MULTI_CPU" in r["type"] for r in results)
    assert proc.stdout.count("predictions written to") == 1  # the CLI reports once, not per process

    enc = StaticEncoder(str(tiny_glove_file))
    expected = {"enc": enc.encode(TEXTS), "one": enc.encode(TEXTS[:1]), "none": enc.encode([]),
                "streamed": enc.encode(TEXTS), "proba": glove_clf.predict_proba(TEXTS)}
    for name, want in expected.items():
        for rank in (0, 1):
            got = np.load(tmp_path / f"{name}{rank}.npy")
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 if name == "proba" else 0, err_msg=f"{name} on rank {rank}")
    predict_file(glove_clf, tmp_path / "in.txt", tmp_path / "single.csv")
    single = (tmp_path / "single.csv").read_bytes()
    assert (tmp_path / "cli.csv").read_bytes() == single
    assert (tmp_path / "chunked.csv").read_bytes() == single
    assert not list(tmp_path.glob("*.tmp"))
