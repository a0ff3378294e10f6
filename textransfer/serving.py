"""``textransfer serve MODEL``: a small JSON HTTP server around a saved model.

Routes::

    POST /predict    {"texts": ["...", ...]}
                     -> {"labels": [...], "probabilities": [[...], ...], "classes": [...]}
                        (+ "warnings": [...] when some texts are empty or blank, or
                        longer than the encoder's token limit)
    POST /predict    the Hugging Face text-classification form, also on POST / (where
    POST /           huggingface_hub's InferenceClient(model="http://host:port") sends it):
                     {"inputs": "..." or ["...", ...], "parameters": {"top_k": k}}
                     -> [[{"label": ..., "score": ...}, ...], ...] (per text, best first)
    GET  /health     {"status": "ok"}
    GET  /metadata   labels, encoder, head, strategy, metrics and versions of the saved model,
                     and the server's limits

Every answer is JSON, errors included: ``{"error": "<what is wrong and how to fix it>"}`` with
400 (bad JSON, missing or non-list ``texts``, non-string items), 404 (unknown route), 405 (known
route, wrong method), 411 (no Content-Length), 413 (body over ``max_body_bytes`` or more than
``max_texts`` texts) and 500 (an error inside the model: the server logs it and keeps serving).

Why the standard library (``http.server.ThreadingHTTPServer``) and not FastAPI/uvicorn: the model
call dominates a request (milliseconds of tokenising and matrix products, run one at a time under
a lock), so an async framework would not serve more requests per second; the standard library
adds no dependency (a model folder serves wherever textransfer imports) and its handful of routes
need no framework. For TLS, authentication or many workers, put it behind a reverse proxy
(nginx, Caddy) or run several processes on different ports.

The model is loaded once. Predictions are serialised with a lock: Hugging Face tokenizers and
torch modules with lazily built state (the int8 copy) are not safe to call from several threads
at once; one call uses all the cores anyway (torch / onnxruntime intra-op threads).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

logger = logging.getLogger("textransfer.serving")

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB
DEFAULT_MAX_TEXTS = 256
# POST / takes the Hugging Face text-classification request too, where an Inference Endpoint's
# URL points (huggingface_hub's InferenceClient(model=URL) posts to the URL itself).
_ROUTES = {"/predict": ("POST",), "/": ("POST",), "/health": ("GET", "HEAD"), "/metadata": ("GET", "HEAD")}
_PREDICT_PATHS = ("/predict", "/")


@dataclass
class PredictRequest:
    """What a prediction request asks for.

    Attributes:
        texts: the texts, in order.
        hf: the request came in the Hugging Face text-classification form (``{"inputs": ...}``)
            and gets its answer form: one list of ``{"label", "score"}`` per text, best first.
        top_k: Hugging Face form: keep the ``top_k`` best classes (None: all).
    """

    texts: list[str]
    hf: bool = False
    top_k: int | None = None


def parse_request(body: bytes, max_texts: int) -> PredictRequest:
    """A prediction request: ``{"texts": [...]}`` (textransfer's form) or the Hugging Face
    text-classification form ``{"inputs": "text" | [...], "parameters": {"top_k": k}}``; a
    :class:`RequestError` (400 / 413) naming the problem otherwise."""
    payload = _json_body(body)
    if isinstance(payload, dict) and "inputs" in payload and "texts" not in payload:
        return _hf_request(payload, max_texts)
    return PredictRequest(parse_predict_body(body, max_texts, payload))


def _hf_request(payload: dict[str, Any], max_texts: int) -> PredictRequest:
    inputs = payload["inputs"]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list):
        raise RequestError(HTTPStatus.BAD_REQUEST,
                           f'"inputs" must be a string or a list of strings, got {type(inputs).__name__}')
    _check_texts(texts, max_texts, "inputs")
    params = payload.get("parameters") or {}
    if not isinstance(params, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, f'"parameters" must be an object, got {type(params).__name__}')
    params = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(params) - {"top_k", "function_to_apply"})
    if unknown:
        raise RequestError(HTTPStatus.BAD_REQUEST,
                           f"unknown parameter(s) {', '.join(unknown)}: text classification here takes top_k and function_to_apply")
    top_k = params.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise RequestError(HTTPStatus.BAD_REQUEST, f'"top_k" must be a whole number >= 1, got {json.dumps(top_k)}')
    if params.get("function_to_apply", "softmax") != "softmax":
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"function_to_apply {json.dumps(params['function_to_apply'])}: this server answers with the model's "
            'class probabilities ("softmax"); leave it out',
        )
    return PredictRequest(texts, hf=True, top_k=top_k)


class RequestError(Exception):
    """A request the server refuses: an HTTP status and one message naming the fix."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json_body(body: bytes) -> Any:
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            'send {"texts": ["first text", "second text"]}',
        ) from None
    return payload


def parse_predict_body(body: bytes, max_texts: int, payload: Any = None) -> list[str]:
    """The texts of a ``{"texts": [...]}`` body, or a :class:`RequestError` (400 / 413) naming the problem.

    Args:
        body: the raw request body (UTF-8 JSON).
        max_texts: the most texts one request may hold.
        payload: ``body`` already parsed (then it is not parsed again).
    """
    payload = _json_body(body) if payload is None else payload
    if not isinstance(payload, dict) or "texts" not in payload:
        raise RequestError(HTTPStatus.BAD_REQUEST, 'the body must be a JSON object with a "texts" list, e.g. {"texts": ["a great phone"]}')
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f'"texts" must be a list of strings, got {type(texts).__name__}: wrap a single text in a list',
        )
    _check_texts(texts, max_texts, "texts")
    return texts


def _check_texts(texts: list[Any], max_texts: int, key: str) -> None:
    if len(texts) > max_texts:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(texts)} texts in one request; the limit is {max_texts}: split the batch "
            "(or start the server with a larger --max-texts)",
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f'"{key}"[{i}] is {type(text).__name__} ({json.dumps(text)[:40]}), not a string: send every text as a JSON string',
            )


def hf_answer(answer: dict[str, Any], request: PredictRequest) -> list[list[dict[str, Any]]]:
    """A ``/predict`` answer in the Hugging Face text-classification form: per text, its classes
    as ``{"label", "score"}``, best first (``top_k`` of them). A single-string ``inputs`` gets
    one such list inside a list, as Hugging Face Inference Endpoints answer it."""
    rows = []
    for probs in answer["probabilities"]:
        ranked = sorted(zip(answer["classes"], probs, strict=True), key=lambda pair: -pair[1])
        rows.append([{"label": label, "score": score} for label, score in ranked[: request.top_k]])
    if answer.get("warnings"):  # the form has no place for them: the log keeps them
        logger.warning("%s", "; ".join(answer["warnings"]))
    return rows


def model_metadata(model: Any, model_dir: str | Path | None) -> dict[str, Any]:
    """What ``/metadata`` reports: the saved model's description file, else what the object has."""
    meta: dict[str, Any] = {}
    if model_dir is not None:
        from textransfer.classifier import META_FILE

        for name in (META_FILE, _export_meta_name()):
            path = Path(model_dir) / name
            if path.is_file():
                try:
                    meta = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError):
                    meta = {}
                break
    encoder = getattr(model, "encoder", None)
    head = getattr(model, "head", None)
    out = {
        "labels": list(model.labels),
        "encoder": meta.get("encoder") or _describe(encoder),
        "head": meta.get("head") or _describe(head),
        "strategy": meta.get("strategy", getattr(model, "strategy", None)),
        "metrics": meta.get("metrics", getattr(model, "metrics", {})),
        "versions": meta.get("versions", {}),
    }
    for key in ("format", "precision", "settings"):  # an ONNX export describes itself too
        if key in meta:
            out[key] = meta[key]
    running = getattr(encoder, "precision", None)
    if running is not None:  # what it runs at now: the saved precision, or the one it was loaded at
        out["precision"] = running
        if isinstance(out["encoder"], dict) and isinstance(out["encoder"].get("kwargs"), dict):
            out["encoder"] = {**out["encoder"], "kwargs": {**out["encoder"]["kwargs"], "precision": running}}
    return _jsonable(out)


def _export_meta_name() -> str:
    from textransfer.onnx_classifier import EXPORT_META

    return EXPORT_META


def _describe(component: Any) -> dict[str, Any] | None:
    if component is None or not hasattr(component, "name"):
        return None
    config = getattr(component, "config", None)
    return {"name": component.name, "kwargs": config() if callable(config) else {}}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class ModelServer(ThreadingHTTPServer):
    """A threading HTTP server that answers predictions of one loaded model.

    Args:
        model: anything with ``labels``, ``predict_proba(texts, batch_size=...)`` (a
            :class:`~textransfer.classifier.Classifier` or an ONNX export loaded by
            :func:`textransfer.load`).
        host: interface to listen on (``127.0.0.1``: this machine only).
        port: TCP port; 0 picks a free one (see :attr:`url`).
        model_dir: where the model was loaded from (``/metadata`` reads its description file).
        max_body_bytes: larger request bodies get 413 without being read.
        max_texts: requests with more texts get 413.
        batch_size: texts per encoder batch inside one request.

    Example:
        >>> server = ModelServer(textransfer.load("runs/x/model"), port=0)  # doctest: +SKIP
        >>> threading.Thread(target=server.serve_forever, daemon=True).start()  # doctest: +SKIP
        >>> server.url  # doctest: +SKIP
        'http://127.0.0.1:41235'
    """

    daemon_threads = True  # a stuck client never blocks shutdown
    allow_reuse_address = True

    def __init__(
        self,
        model: Any,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        model_dir: str | Path | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_texts: int = DEFAULT_MAX_TEXTS,
        batch_size: int = 32,
    ) -> None:
        if max_body_bytes < 1 or max_texts < 1 or batch_size < 1:
            raise ValueError(
                f"max_body_bytes, max_texts and batch_size must be >= 1, got {max_body_bytes}, {max_texts}, {batch_size}"
            )
        self.model = model
        self.max_body_bytes = int(max_body_bytes)
        self.max_texts = int(max_texts)
        self.batch_size = int(batch_size)
        self.classes = _jsonable(list(model.labels))
        self.metadata = model_metadata(model, model_dir)
        self.metadata["server"] = {"max_body_bytes": self.max_body_bytes, "max_texts": self.max_texts}
        self._lock = threading.Lock()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        # Once bound, server_address is getsockname()'s (str host, port); typeshed types what
        # the constructor accepts (a bytes host too).
        host, port = cast("tuple[str, int]", self.server_address[:2])
        return f"http://{host}:{port}"

    def predict(self, texts: list[str]) -> dict[str, Any]:
        """The ``/predict`` answer for validated ``texts``."""
        if not texts:
            return {"labels": [], "probabilities": [], "classes": self.classes}
        with self._lock:
            proba = self.model.predict_proba(texts, batch_size=self.batch_size)
        rows = [[float(p) for p in row] for row in proba]
        if any(not math.isfinite(p) for row in rows for p in row):
            raise RuntimeError("the model returned non-finite probabilities")
        labels = [self.classes[max(range(len(row)), key=row.__getitem__)] for row in rows]
        out: dict[str, Any] = {"labels": labels, "probabilities": rows, "classes": self.classes}
        warnings = []
        empty = [i for i, text in enumerate(texts) if not text.strip()]
        if empty:  # as `predict --input` warns: an answer for no text at all is rarely meant
            shown = ", ".join(map(str, empty[:10])) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
            warnings.append(f"{len(empty)} empty text(s) (texts[{shown}]) scored as empty strings: the model's "
                            "answer for no text; leave them out if that is not meant")
        from textransfer.classifier import truncated_inputs

        cut = truncated_inputs(self.model, texts)
        if cut is not None and cut[0]:
            warnings.append(f"{cut[0]} of {len(texts)} text(s) longer than the encoder's {cut[1]} tokens: "
                            f"the model read their first {cut[1]} only")
        if warnings:
            out["warnings"] = warnings
        return out


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
    timeout = 30  # seconds a client may take to send its request; then the connection closes
    # Headers and body leave in one write (http.server flushes after each request), and without
    # Nagle's algorithm: otherwise a small answer waits ~40 ms for the client's delayed ACK.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    error_content_type = "application/json"

    # -- responses ---------------------------------------------------------------------------

    def _send_json(self, status: HTTPStatus, payload: Any, close: bool = False) -> None:
        body = json.dumps(payload, allow_nan=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (malformed request line, unsupported method, URI too long)
        as JSON too. The connection closes: the request may not have been read to its end."""
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.INTERNAL_SERVER_ERROR
        self._send_json(status, {"error": message or status.phrase}, close=True)

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    # -- routing -----------------------------------------------------------------------------

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        methods = _ROUTES.get(path)
        self._unread_body = False
        try:
            if path not in _PREDICT_PATHS or self.command != "POST":
                self._drain_small_body()  # the connection stays usable for the next request
            if methods is None:
                raise RequestError(
                    HTTPStatus.NOT_FOUND, f"no route {path!r}: use POST /predict (or POST /), GET /health or GET /metadata"
                )
            if self.command not in methods:
                self._allow = ", ".join(methods)
                hint = "; the server's state: GET /health or GET /metadata" if path in _PREDICT_PATHS else ""
                raise RequestError(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes {' or '.join(methods)}, not {self.command}{hint}"
                )
            if path in _PREDICT_PATHS:
                request = parse_request(self._read_body(), self.server.max_texts)
                answer = self.server.predict(request.texts)
                self._send_json(HTTPStatus.OK, hf_answer(answer, request) if request.hf else answer)
            elif path == "/health":
                self._send_json(HTTPStatus.OK, {"status": "ok"})
            else:
                self._send_json(HTTPStatus.OK, self.server.metadata)
        except RequestError as exc:
            self._send_error_json(exc)
        except Exception as exc:  # a model error must not take the server down
            logger.exception("error while answering %s %s", self.command, path)
            self._send_json(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": f"internal error: {type(exc).__name__}: {exc}"},
                close=True,
            )

    def _send_error_json(self, exc: RequestError) -> None:
        # After an unread (oversized) body the connection cannot be reused.
        close = self._unread_body or exc.status == HTTPStatus.LENGTH_REQUIRED
        body = json.dumps({"error": exc.message}).encode("utf-8")
        self.send_response(exc.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if exc.status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", getattr(self, "_allow", ""))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            n = int(value)
        except ValueError:
            n = -1
        if n < 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {value!r}")
        return n

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._unread_body = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not supported: send a Content-Length")
        n = self._content_length()
        if n is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length header")
        if n > self.server.max_body_bytes:
            self._unread_body = True
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body has {n} bytes; the limit is {self.server.max_body_bytes}: send fewer or shorter "
                "texts per request (or start the server with a larger --max-body-bytes)",
            )
        body = self.rfile.read(n)
        if len(body) < n:
            self._unread_body = True
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of {n} bytes")
        return body

    def _drain_small_body(self) -> None:
        """Reads a refused request's body (when small) so the connection can serve the next one."""
        try:
            n = self._content_length() or 0
        except RequestError:
            n = -1
        if 0 <= n <= self.server.max_body_bytes:
            self.rfile.read(n)
        else:
            self._unread_body = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _route


def serve(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_texts: int = DEFAULT_MAX_TEXTS,
    batch_size: int = 32,
    ready: Any = None,
    precision: str | None = None,
) -> None:
    """Loads ``model_dir`` once (weights included: one warm-up prediction) and serves it until
    interrupted (Ctrl+C).

    Args:
        model_dir: a model directory (``runs/<name>/model``) or an ONNX export folder.
        host: interface to listen on (``127.0.0.1``: this machine only).
        port: TCP port; 0 picks a free one.
        max_body_bytes: larger request bodies get 413 without being read.
        max_texts: requests with more texts get 413.
        batch_size: texts per encoder batch inside one request.
        ready: called with the started server (its ``url``) before serving, e.g. to print it.
        precision: run the model's encoder at this precision instead of the saved one (see
            :func:`textransfer.load`).

    Raises:
        ValueError: the address cannot be used (port taken, unknown host).
    """
    from textransfer.classifier import load

    model = load(model_dir, precision=precision)
    # Encoders load their weights on first use: do it now, not in the first client's request.
    model.predict_proba(["warm-up"], batch_size=1)
    try:
        server = ModelServer(
            model, host, port, model_dir=model_dir, max_body_bytes=max_body_bytes, max_texts=max_texts,
            batch_size=batch_size,
        )
    except OSError as exc:
        raise ValueError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port (or --port 0 for a free one)"
        ) from None
    try:
        if ready is not None:
            ready(server)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
