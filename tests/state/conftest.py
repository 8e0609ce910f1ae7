"""A real HTTP server on 127.0.0.1 that speaks vLLM's ``POST /tokenize`` (and misbehaves)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class TokenizeServer:
    """``mode``: ok | error | garbage | slow. In ok mode one token per whitespace word."""

    url: str
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)


def _handler(server_state: TokenizeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server_state.requests.append({"path": self.path, **body})
            mode = server_state.mode
            if mode == "slow":
                time.sleep(1.0)
            if mode == "error":
                self._send(500, b'{"error": "boom"}')
            elif mode == "garbage":
                self._send(200, b"<html>not json</html>")
            else:
                n = len(body["prompt"].split())
                payload = {"count": n, "tokens": list(range(n)), "max_model_len": 8192}
                self._send(200, json.dumps(payload).encode())

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def tokenize_server() -> Iterator[TokenizeServer]:
    state = TokenizeServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)
