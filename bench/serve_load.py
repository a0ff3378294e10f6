"""Bounded load test of ``textransfer serve``: requests/s and p50/p99 latency, single-text and
batched (32 texts) requests, against a server on 127.0.0.1 only.

The server runs in its own process (``textransfer.serving.serve`` on a free port); client
threads here send keep-alive requests until ``--requests`` per scenario or ``--seconds`` per
scenario, whichever comes first, then the server is stopped. Default model: frozen packaged
all-MiniLM-L6-v2 (mean pooling, L2-normalised) + logistic regression trained on movie sentences
(``--model-dir`` serves any saved model or ONNX export instead; ``--tiny`` uses TF-IDF).

Run (about a minute)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/serve_load.py --seconds 5 --requests 400 --clients 4
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _common import _ROOT, machine, table


def _build_model(out: Path, tiny: bool, train_n: int) -> Path:
    from textransfer.data import load, stratified_subsample
    from textransfer.encoders.base import create_encoder
    from textransfer.heads.base import create_head
    from textransfer.strategies.base import create_strategy

    train = stratified_subsample(load("movies"), train_n, seed=0)
    if tiny:
        encoder = create_encoder("tfidf")
    else:
        encoder = create_encoder("transformer", model="all-MiniLM-L6-v2", max_length=128, normalize=True)
    clf = create_strategy("frozen").fit(encoder, create_head("logreg"), train)
    return clf.save(out / "model")


def _start_server(model_dir: Path, max_texts: int) -> tuple[subprocess.Popen, str]:
    code = (
        "import sys; from textransfer.serving import serve; "
        f"serve({str(model_dir)!r}, '127.0.0.1', 0, max_texts={max_texts}, "
        "ready=lambda s: print(s.url, flush=True))"
    )
    env = {**os.environ, "PYTHONPATH": _ROOT}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.terminate()
        raise RuntimeError(f"the server did not start (got {url!r})")
    return proc, url


def _scenario(url: str, texts: list[str], per_request: int, clients: int, max_requests: int, seconds: float) -> dict:
    """Runs ``clients`` threads sending requests of ``per_request`` texts; bounded by the total
    request count and the wall time."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    issued = [0]
    deadline = time.perf_counter() + seconds

    def client(cid: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        i = cid
        while True:
            with lock:
                if issued[0] >= max_requests or time.perf_counter() >= deadline:
                    break
                issued[0] += 1
            start = (i * per_request) % (len(texts) - per_request)
            body = json.dumps({"texts": texts[start : start + per_request]}).encode()
            t0 = time.perf_counter()
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
            dt = time.perf_counter() - t0
            ok = resp.status == 200 and len(json.loads(payload)["labels"]) == per_request
            with lock:
                latencies.append(dt)
                errors[0] += not ok
            i += clients
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "seconds": wall,
        "rps": len(latencies) / wall,
        "texts_per_s": len(latencies) * per_request / wall,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", help="serve this saved model / ONNX export instead of building one")
    p.add_argument("--tiny", action="store_true", help="TF-IDF + logreg instead of MiniLM + logreg")
    p.add_argument("--train-n", type=int, default=500, help="movie sentences the built model trains on")
    p.add_argument("--clients", type=int, default=4, help="concurrent client connections")
    p.add_argument("--requests", type=int, default=400, help="most requests per scenario")
    p.add_argument("--seconds", type=float, default=5.0, help="most seconds per scenario")
    p.add_argument("--batch", type=int, default=32, help="texts per request of the batched scenario")
    args = p.parse_args(argv)

    from textransfer.data import load

    texts = load("products").texts
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(args.model_dir) if args.model_dir else _build_model(Path(tmp), args.tiny, args.train_n)
        proc, url = _start_server(model_dir, max_texts=max(args.batch, 1))
        try:
            warm = _scenario(url, texts, 1, 1, 5, 30.0)  # first requests: lazy loading
            assert warm["errors"] == 0
            rows = []
            for name, k in (("single text", 1), (f"batch of {args.batch}", args.batch)):
                r = _scenario(url, texts, k, args.clients, args.requests, args.seconds)
                rows.append([name, args.clients, r["requests"], r["errors"], round(r["seconds"], 1), round(r["rps"], 1),
                             round(r["texts_per_s"], 1), round(r["p50"], 1), round(r["p99"], 1)])
        finally:
            proc.terminate()
            proc.wait(30)
    load_after = os.getloadavg()
    what = args.model_dir or ("TF-IDF + logreg" if args.tiny else "frozen all-MiniLM-L6-v2 (max_length 128) + logreg")
    print(f"## textransfer serve: bounded load test\n\nModel: {what}; server process on 127.0.0.1, "
          f"{args.clients} keep-alive client threads, at most {args.requests} requests or {args.seconds:g} s "
          f"per scenario; product sentences.\nMachine: {machine()}\n"
          f"Load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f} (shared machine).\n")
    print(table(["scenario", "clients", "requests", "errors", "s", "requests/s", "texts/s", "p50 ms", "p99 ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
