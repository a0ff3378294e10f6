"""`textransfer serve`: the real HTTP server on 127.0.0.1 (ephemeral port) in a thread, called
over HTTP: routes, answers equal to the model's own, JSON errors, limits, and no crash on input."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import textransfer
from tests.conftest import make_toy
from textransfer.heads.base import create_head
from textransfer.serving import ModelServer, serve
from textransfer.strategies.base import create_strategy


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from textransfer.encoders.base import create_encoder

    train = make_toy("movies", ["film", "movie", "plot", "actor"], n=48, seed=1)
    clf = create_strategy("frozen").fit(create_encoder("tfidf"), create_head("logreg", C=10.0), train)
    clf.metrics = {"test": {"accuracy": 1.0}}
    return clf.save(tmp_path_factory.mktemp("serve") / "model")


def _start(model: Any, **kwargs: Any) -> ModelServer:
    server = ModelServer(model, "127.0.0.1", 0, **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def server(model_dir) -> Iterator[ModelServer]:
    srv = _start(textransfer.load(model_dir), model_dir=model_dir, max_texts=8, max_body_bytes=4096)
    yield srv
    srv.shutdown()
    srv.server_close()


def _call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """(status, headers, parsed JSON body) of one request through urllib."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, resp.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, err.headers, json.loads(raw)


def _predict(server: ModelServer, payload: Any) -> tuple[int, Any]:
    status, _, body = _call(
        server.url + "/predict", "POST", json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    return status, body


TEXTS = ["a wonderful phone", "an awful plot , really awful", "a lovely camera", ""]


def test_predict_returns_the_models_own_answer(server, model_dir):
    clf = textransfer.load(model_dir)
    status, body = _predict(server, {"texts": TEXTS})
    assert status == 200
    assert body["classes"] == clf.labels == ["negative", "positive"]
    assert body["labels"] == clf.predict(TEXTS)
    assert np.allclose(body["probabilities"], clf.predict_proba(TEXTS), atol=1e-6)
    # The empty text is scored, as `predict --input` does, and named in a warning.
    assert body["warnings"] == ["1 empty text(s) (texts[3]) scored as empty strings: the model's answer for no "
                                "text; leave them out if that is not meant"]
    assert "warnings" not in _predict(server, {"texts": TEXTS[:3]})[1]
    assert _predict(server, {"texts": []}) == (200, {"labels": [], "probabilities": [], "classes": clf.labels})


def test_hugging_face_inference_client_gets_its_answer_form(server, model_dir, monkeypatch):
    """huggingface_hub's InferenceClient pointed at the server (it posts to the URL itself, in
    the Hugging Face text-classification form) gets the model's classes, best first."""
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # a local URL: no network
    clf = textransfer.load(model_dir)
    proba = clf.predict_proba(TEXTS[:2])
    client = huggingface_hub.InferenceClient(model=server.url)
    out = client.text_classification(TEXTS[0])
    assert [e.label for e in out] == [clf.labels[i] for i in np.argsort(-proba[0])]
    assert out[0].score == pytest.approx(proba[0].max(), abs=1e-6)
    assert [e.label for e in client.text_classification(TEXTS[1], top_k=1)] == [clf.predict(TEXTS[1:2])[0]]
    # A list of inputs, on /predict too: one best-first list per text.
    status, body = _predict(server, {"inputs": TEXTS[:2], "parameters": {"top_k": 1}})
    assert status == 200 and [row[0]["label"] for row in body] == clf.predict(TEXTS[:2])
    for payload, match in [
        ({"inputs": 3}, '"inputs" must be a string or a list of strings'),
        ({"inputs": ["ok", 3]}, '"inputs"[1] is int'),
        ({"inputs": "ok", "parameters": {"top_k": 0}}, '"top_k" must be a whole number >= 1'),
        ({"inputs": "ok", "parameters": {"function_to_apply": "none"}}, "class probabilities"),
        ({"inputs": "ok", "parameters": {"truncation": True}}, "unknown parameter(s) truncation"),
    ]:
        status, body = _predict(server, payload)
        assert status == 400 and match in body["error"], (payload, body)


def test_health_and_metadata(server):
    status, headers, body = _call(server.url + "/health")
    assert (status, body) == (200, {"status": "ok"})
    assert headers["Content-Type"] == "application/json"
    status, _, meta = _call(server.url + "/metadata")
    assert status == 200
    assert meta["labels"] == ["negative", "positive"]
    assert meta["encoder"]["name"] == "tfidf" and meta["head"]["name"] == "logreg"
    assert meta["head"]["kwargs"]["C"] == 10.0
    assert meta["strategy"]["name"] == "frozen"
    assert meta["metrics"] == {"test": {"accuracy": 1.0}}
    assert "textransfer" in meta["versions"] and "scikit-learn" in meta["versions"]
    assert meta["server"] == {"max_body_bytes": 4096, "max_texts": 8}
    status, _, body = _call(server.url + "/health", "HEAD")
    assert status == 200 and body is None


@pytest.mark.parametrize(
    ("body", "status", "match"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not UTF-8"),
        (b"[1, 2]", 400, 'JSON object with a "texts" list'),
        (b'{"text": ["a"]}', 400, 'JSON object with a "texts" list'),
        (b'{"texts": "a good film"}', 400, '"texts" must be a list of strings, got str'),
        (b'{"texts": ["ok", 3]}', 400, r'"texts"\[1\] is int'),
        (b'{"texts": ["ok", null]}', 400, r'"texts"\[1\] is NoneType'),
        (json.dumps({"texts": ["a"] * 9}).encode(), 413, "9 texts in one request; the limit is 8"),
        (json.dumps({"texts": ["a" * 5000]}).encode(), 413, "the limit is 4096"),
    ],
)
def test_bad_requests_get_json_errors(server, body, status, match):
    import re

    got, _, payload = _call(server.url + "/predict", "POST", body, {"Content-Type": "application/json"})
    assert got == status
    assert re.search(match, payload["error"]), payload


def test_routes_and_methods(server):
    status, _, body = _call(server.url + "/nope")
    assert status == 404 and "POST /predict" in body["error"]
    status, headers, body = _call(server.url + "/predict")
    assert status == 405 and headers["Allow"] == "POST" and "not GET" in body["error"]
    status, headers, body = _call(server.url + "/")  # a browser on the server's address
    assert status == 405 and body["error"] == "/ takes POST, not GET; the server's state: GET /health or GET /metadata"
    status, headers, body = _call(server.url + "/health", "DELETE")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, _, body = _call(server.url + "/health", "BREW")
    assert status == 501 and "BREW" in body["error"]


def test_connection_is_reused_after_errors_and_closed_after_an_unread_body(server):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/nope", body=b"xyz")
    assert conn.getresponse().read() and True
    conn.request("POST", "/predict", body=b'{"texts": ["a good film"]}')
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["labels"] == ["positive"]
    # Over the limit: answered without reading the body, and the connection is closed.
    conn.request("POST", "/predict", body=b"x" * 5000)
    resp = conn.getresponse()
    assert resp.status == 413 and resp.getheader("Connection") == "close"
    resp.read()
    conn.close()


def test_missing_content_length_gets_411(server):
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 411") and "Content-Length" in answer


class _Flaky:
    """A model that fails on one text: the server must answer 500 and keep serving."""

    def __init__(self, clf: Any) -> None:
        self.clf = clf
        self.labels = clf.labels

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if "boom" in texts:
            raise RuntimeError("encoder exploded")
        return self.clf.predict_proba(texts, batch_size=batch_size)


def test_internal_error_is_500_json_and_the_server_keeps_serving(model_dir):
    srv = _start(_Flaky(textransfer.load(model_dir)))
    try:
        status, body = _predict(srv, {"texts": ["boom"]})
        assert status == 500 and body == {"error": "internal error: RuntimeError: encoder exploded"}
        status, body = _predict(srv, {"texts": ["a good film"]})
        assert status == 200 and body["labels"] == ["positive"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_concurrent_requests_all_get_their_own_answers(server, model_dir):
    clf = textransfer.load(model_dir)
    texts = make_toy("products", ["phone", "battery", "camera", "screen"], n=40, seed=3).texts

    def one(i: int) -> tuple[int, Any]:
        return _predict(server, {"texts": texts[i % 40 : i % 40 + 1 + i % 5]})

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(40)))
    for i, (status, body) in enumerate(results):
        chunk = texts[i % 40 : i % 40 + 1 + i % 5]
        assert status == 200 and body["labels"] == clf.predict(chunk)


def test_serve_loads_once_reports_ready_and_refuses_a_taken_port(model_dir):
    started: list[ModelServer] = []
    ready = threading.Event()

    def on_ready(srv: ModelServer) -> None:
        started.append(srv)
        ready.set()

    thread = threading.Thread(target=serve, args=(model_dir, "127.0.0.1", 0), kwargs={"ready": on_ready}, daemon=True)
    thread.start()
    assert ready.wait(60)
    srv = started[0]
    try:
        assert _call(srv.url + "/health")[0] == 200
        port = srv.server_address[1]
        with pytest.raises(ValueError, match=f"cannot listen on 127.0.0.1:{port}.*another --port"):
            serve(model_dir, "127.0.0.1", port)
    finally:
        srv.shutdown()
        thread.join(30)
    assert not thread.is_alive()


def test_limits_must_be_positive(model_dir):
    with pytest.raises(ValueError, match="must be >= 1"):
        ModelServer(textransfer.load(model_dir), "127.0.0.1", 0, max_texts=0)
