"""The HTTP handler behind ``FakeVLLM``: routes, SSE framing and the misbehaviours."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from agentd.testing import fake_shapes as shapes
from agentd.testing.fake_vllm import (
    RecordedRequest,
    finish,
    metrics_text,
    validate_generation,
)

if TYPE_CHECKING:
    from agentd.testing.fake_vllm import FakeVLLM, Misbehaviour

_MALFORMED = b'{"id": "chatcmpl-0", "object": "chat.completion", "choices": [{"index": 0, "mess'
_HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def make_handler(fake: FakeVLLM) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to one fake (``http.server`` instantiates it per connection)."""
    return type("FakeVLLMHandler", (_Handler,), {"fake": fake})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like uvicorn
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    fake: FakeVLLM
    drip_s = 0.0
    cut_after: int | None = None

    def setup(self) -> None:
        super().setup()
        self.fake.track(self.connection, open_=True)

    def finish(self) -> None:
        self.fake.track(self.connection, open_=False)
        with contextlib.suppress(OSError):
            super().finish()

    def version_string(self) -> str:
        return "uvicorn"

    def log_message(self, format: str, *args: Any) -> None:
        return  # tests read fake.requests, not stderr

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        self.drip_s, self.cut_after = 0.0, None
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        self.fake.record(
            RecordedRequest(method, path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        try:
            fault = self.fake.take_fault(path)
            if fault is not None and self._apply_fault(fault):
                return
            route = _ROUTES.get((method, path))
            if route is None:
                self._send(404, b'{"detail":"Not Found"}', "application/json")
                return
            route(self, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout): nothing to answer

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    # ------------------------------------------------------------ faults

    def _apply_fault(self, fault: Misbehaviour) -> bool:
        """Act out ``fault``; True when it replaced the answer, False when it modifies it."""
        if fault.kind == "drip":
            self.drip_s = fault.delay_s
            return False
        if fault.kind == "cut_stream":
            self.cut_after = fault.after
            return False
        action = _FAULTS[fault.kind]
        action(self, fault)
        return True

    def _status(self, fault: Misbehaviour) -> None:
        body = shapes.error_body(fault.status, f"fake failure {fault.status}")
        extra = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
        self._send(fault.status, json.dumps(body).encode(), "application/json", headers=extra)

    def _error_200(self, fault: Misbehaviour) -> None:
        self._send_json(200, shapes.flavour_error_200(self.fake.flavour))

    def _hang(self, fault: Misbehaviour) -> None:
        self.fake.stopping.wait()
        self.close_connection = True

    def _malformed(self, fault: Misbehaviour) -> None:
        self._send(200, _MALFORMED, "application/json")

    def _wrong_type(self, fault: Misbehaviour) -> None:
        self._send(200, _HTML, "text/html; charset=utf-8")

    def _models_missing(self, fault: Misbehaviour) -> None:
        self._send_json(200, shapes.models_body("some-other-model", self.fake.max_model_len))

    def _health_down(self, fault: Misbehaviour) -> None:
        self._send(503, b"", "application/json")

    # ------------------------------------------------------------ routes

    def _health(self, body: Any) -> None:
        self._send(200, b"", "application/json")

    def _models(self, body: Any) -> None:
        self._send_json(200, shapes.models_body(self.fake.model, self.fake.max_model_len))

    def _metrics(self, body: Any) -> None:
        text = metrics_text(self.fake).encode()
        self._send(200, text, "text/plain; version=0.0.4; charset=utf-8")

    def _tokenize(self, body: Any) -> None:
        if not isinstance(body, dict) or not ("prompt" in body or "messages" in body):
            self._send_json(400, shapes.error_body(400, "prompt or messages required"))
            return
        ids = shapes.token_ids(shapes.prompt_text(body))
        self._send_json(
            200,
            {
                "count": len(ids),
                "max_model_len": self.fake.max_model_len,
                "tokens": ids,
                "token_strs": None,
            },
        )

    def _generate(self, body: Any) -> None:
        problem = validate_generation(self.fake, body, self.path.split("?", 1)[0])
        if problem is not None:
            self._send_json(problem[0], shapes.error_body(*problem))
            return
        text, reason = finish(self.fake.next_reply(body), body)
        completion = shapes.Completion(body, self.fake.model, text, reason, self.fake.flavour)
        with _in_flight(self.fake, completion):
            if body.get("stream"):
                self._stream(completion)
            else:
                self._respond(completion)

    def _respond(self, completion: shapes.Completion) -> None:
        time.sleep(self.fake.token_delay_s * len(completion.toks))
        data = json.dumps(completion.response()).encode()
        if not self.drip_s:
            self._send(200, data, "application/json")
            return
        self._headers(200, "application/json", length=len(data))
        for i in range(0, len(data), 16):  # a body that trickles never trips a read timeout
            self.wfile.write(data[i : i + 16])
            self.wfile.flush()
            time.sleep(self.drip_s)

    def _stream(self, completion: shapes.Completion) -> None:
        self._headers(200, "text/event-stream; charset=utf-8", length=None)
        for i, chunk in enumerate(completion.chunks()):
            if self.cut_after is not None and i >= self.cut_after:
                self._cut()
                return
            self._write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            time.sleep(self.drip_s or self.fake.token_delay_s)
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        """Drop the connection mid-body, without the terminating chunk."""
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------ framing

    def _headers(self, status: int, content_type: str, *, length: int | None,
                 headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if length is None:
            self.send_header("transfer-encoding", "chunked")
        else:
            self.send_header("content-length", str(length))
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send(self, status: int, data: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self._headers(status, content_type, length=len(data), headers=headers)
        self.wfile.write(data)
        self.wfile.flush()

    def _send_json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")


class _in_flight:
    """Count a generation as running (for ``max_in_flight`` and ``/metrics``)."""

    def __init__(self, fake: FakeVLLM, completion: shapes.Completion) -> None:
        self.counters = fake.counters
        self.completion = completion

    def __enter__(self) -> None:
        with self.counters.lock:
            self.counters.in_flight += 1
            self.counters.max_in_flight = max(self.counters.max_in_flight, self.counters.in_flight)
            self.counters.prompt_tokens += len(self.completion.prompt_ids)

    def __exit__(self, *exc: object) -> None:
        with self.counters.lock:
            self.counters.in_flight -= 1
            self.counters.generated_tokens += len(self.completion.toks)


_Route = Callable[[_Handler, Any], None]
_ROUTES: dict[tuple[str, str], _Route] = {
    ("GET", "/health"): _Handler._health,
    ("GET", "/v1/models"): _Handler._models,
    ("GET", "/metrics"): _Handler._metrics,
    ("POST", "/tokenize"): _Handler._tokenize,
    ("POST", "/v1/chat/completions"): _Handler._generate,
    ("POST", "/v1/completions"): _Handler._generate,
    ("POST", "/api/paas/v4/chat/completions"): _Handler._generate,  # Z.ai's path
}
_FAULTS: dict[str, Callable[[_Handler, Misbehaviour], None]] = {
    "status": _Handler._status,
    "error_200": _Handler._error_200,
    "hang": _Handler._hang,
    "malformed_json": _Handler._malformed,
    "wrong_content_type": _Handler._wrong_type,
    "models_missing": _Handler._models_missing,
    "health_down": _Handler._health_down,
}
