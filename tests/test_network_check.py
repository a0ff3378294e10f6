"""resources.network_available(): huggingface_hub's offline flag, endpoint and HTTP session
(proxies included), checked against a local HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from textransfer import resources

ROOT = Path(__file__).resolve().parents[1]


class _Hub:
    """A fake hub endpoint: answers every request with ``status`` and records the request lines."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                hub.requests.append(self.requestline)
                self.send_response(hub.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET = _answer

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub() -> Iterator[_Hub]:
    server = _Hub(200)
    yield server
    server.close()


def _probe_in_fresh_process(env_overrides: dict[str, str]) -> bool:
    """network_available() in a new interpreter, so huggingface_hub reads the environment at
    import as it does for a user (its constants are fixed when it is imported)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT"):
        env.pop(var, None)
    env.update(env_overrides)
    code = "import json; from textransfer.resources import network_available; print(json.dumps(network_available()))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_hf_endpoint_that_answers_is_available(hub):
    assert _probe_in_fresh_process({"HF_ENDPOINT": hub.url}) is True
    assert hub.requests == [f"HEAD /api/models/{resources._PROBE_REPO} HTTP/1.1"]


def test_hf_endpoint_with_server_errors_or_nothing_listening_is_not_available(hub):
    hub.status = 503
    assert _probe_in_fresh_process({"HF_ENDPOINT": hub.url}) is False
    assert len(hub.requests) == 1
    hub.close()  # the port is free now: connection refused
    assert _probe_in_fresh_process({"HF_ENDPOINT": hub.url}) is False


def test_proxy_of_the_hub_session_is_used(hub):
    # The endpoint's host does not exist; only a client that goes through the proxy reaches it.
    ok = _probe_in_fresh_process({"HF_ENDPOINT": "http://hub.example.invalid", "HTTP_PROXY": hub.url})
    assert ok is True
    assert hub.requests == [f"HEAD http://hub.example.invalid/api/models/{resources._PROBE_REPO} HTTP/1.1"]


def test_in_process_probe_uses_hub_constants_and_caches_per_endpoint(hub, monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(huggingface_hub, "get_session", lambda: _no_proxy_session())
    resources._probe_endpoint.cache_clear()
    try:
        assert resources.network_available() is True
        assert resources.network_available() is True
        assert len(hub.requests) == 1  # probed once
    finally:
        resources._probe_endpoint.cache_clear()


def _no_proxy_session():
    # The machine's proxy settings must not route a 127.0.0.1 request elsewhere in this test.
    import httpx2

    return httpx2.Client(trust_env=False)


def test_offline_flag_makes_no_request(monkeypatch):
    import huggingface_hub

    def no_session():
        raise AssertionError("network_available() opened an HTTP session in offline mode")

    monkeypatch.setattr(huggingface_hub, "get_session", no_session)
    resources._probe_endpoint.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resources.network_available() is False
    # huggingface_hub's own flag alone (set when the environment said so at its import).
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert resources.network_available() is False
    assert resources._probe_endpoint.cache_info().currsize == 0
