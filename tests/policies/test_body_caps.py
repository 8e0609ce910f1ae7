"""Byte caps and total deadlines on every LLM response, against a hostile HTTP server on
loopback: each answer is capped while it arrives, and the error names what ran out."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator

import anyio
import httpx
import pytest

from agentd.errors import EndpointResponseError, EndpointTimeoutError
from agentd.policies.client import MAX_BODY_BYTES, MAX_SSE_LINE_BYTES, OpenAIClient
from agentd.policies.wire import CallParams
from agentd.state.counters import MAX_TOKENIZE_BODY_BYTES, RemoteTokenizeCounter

from .helpers import MODEL, fast_config

CHAT = CallParams(messages=[{"role": "user", "content": "hi"}], max_tokens=8)
Reply = Callable[[socket.socket, threading.Event], None]


def _head(sock: socket.socket, content_type: str) -> None:
    sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                 "Connection: close\r\n\r\n".encode())


def _flood(sock: socket.socket, stop: threading.Event, first: bytes, fill: bytes) -> None:
    """``first``, then ``fill`` over and over until the client hangs up (or the test ends)."""
    sock.sendall(first)
    while not stop.is_set():
        sock.sendall(fill)


def endless_sse_line(sock: socket.socket, stop: threading.Event) -> None:
    _head(sock, "text/event-stream")
    _flood(sock, stop, b"data: ", b"x" * 65536)  # one line, never a newline


def endless_json(sock: socket.socket, stop: threading.Event) -> None:
    _head(sock, "application/json")
    _flood(sock, stop, b'{"choices": "', b"y" * 65536)


def drip(sock: socket.socket, stop: threading.Event) -> None:
    _head(sock, "application/json")
    while not stop.wait(0.05):
        sock.sendall(b" ")  # a byte now and then: no read timeout ever fires


class HostileServer:
    """A loopback HTTP/1.1 server that answers every request with ``reply``."""

    def __init__(self) -> None:
        self.reply: Reply = drip
        self.stop = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                _read_request(self.request)
                with contextlib.suppress(OSError):  # the client hung up: what we wanted
                    outer.reply(self.request, outer.stop)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def _read_request(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += sock.recv(65536)


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


def _client(server: HostileServer, **overrides: object) -> OpenAIClient:
    return OpenAIClient(server.url, MODEL, config=fast_config(**overrides), name="evil")


class TestGenerateCaps:
    async def test_sse_line_without_newline(self, hostile: HostileServer) -> None:
        """An SSE line that never ends is refused at the line cap, while it arrives."""
        hostile.reply = endless_sse_line
        client = _client(hostile, timeout_s=60.0)
        with anyio.fail_after(60), pytest.raises(EndpointResponseError,
                                                 match=f"SSE line over {MAX_SSE_LINE_BYTES}"):
            await client.generate(CHAT, stream=True)
        await client.aclose()

    async def test_endless_json_body(self, hostile: HostileServer) -> None:
        """A JSON body that never ends is refused at the body cap."""
        hostile.reply = endless_json
        client = _client(hostile, timeout_s=60.0)
        with anyio.fail_after(60), pytest.raises(EndpointResponseError,
                                                 match=f"body over {MAX_BODY_BYTES}"):
            await client.generate(CHAT, stream=False)
        await client.aclose()


class TestTokenizeCaps:
    async def test_client_tokenize_body_capped(self, hostile: HostileServer) -> None:
        """``OpenAIClient.tokenize`` caps the body like every other answer."""
        hostile.reply = endless_json
        client = _client(hostile, timeout_s=60.0)
        with anyio.fail_after(60), pytest.raises(EndpointResponseError, match="body over"):
            await client.tokenize("a b c")
        await client.aclose()

    async def test_client_tokenize_drip_has_a_deadline(self, hostile: HostileServer) -> None:
        """A dripping /tokenize ends at the request's total deadline, which the error names."""
        client = _client(hostile, timeout_s=0.5)
        with anyio.fail_after(60), pytest.raises(EndpointTimeoutError,
                                                 match=r"no answer within 0\.5s"):
            await client.tokenize("a b c")
        await client.aclose()

    @pytest.mark.parametrize("reply", [endless_json, drip], ids=["huge", "drip"])
    async def test_counter_falls_back_and_says_why(
            self, hostile: HostileServer, reply: Reply,
            caplog: pytest.LogCaptureFixture) -> None:
        """The budget's /tokenize counter answers with the estimate when the body passes its
        cap or the request its total deadline, and the log names which ran out."""
        hostile.reply = reply
        async with httpx.AsyncClient() as http:
            counter = RemoteTokenizeCounter(hostile.url, MODEL, http, timeout_s=0.5)
            with anyio.fail_after(60):
                measured = await counter.measure("a b c d")
        assert measured.counter == "estimate"
        why = (f"/tokenize body over {MAX_TOKENIZE_BODY_BYTES} bytes" if reply is endless_json
               else "no whole answer within 0.5s (total deadline)")
        errors = [r.agentd_fields["error"] for r in caplog.records  # type: ignore[attr-defined]
                  if r.getMessage() == "state.tokenize_failed"]
        assert errors and why in errors[0]
