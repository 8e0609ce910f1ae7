"""A fake vLLM OpenAI server on 127.0.0.1 that answers like vLLM and misbehaves on request.

It is a real HTTP/1.1 server (keep-alive, chunked SSE) in a background thread, so the client
under test goes through its whole stack; usable from sync and async tests alike::

    with FakeVLLM(model="qwen3-14b-awq") as fake:
        fake.script("<think>…</think><action>{…}</action>")      # exact model outputs, in order
        fake.misbehave("status", status=500, times=2)              # the next two generations fail
        ... client.generate(...) against fake.base_url ...
        assert "guided_regex" not in fake.generation_bodies()[-1]

``flavour`` makes it answer like another provider (``fake_shapes``: Qwen3 behind vLLM's
reasoning parser, MiniMax M2, GLM-4.6 — served under ``/api/paas/v4`` like Z.ai).

Misbehaviours (``kind``): ``status`` (any code, vLLM's error body, ``retry_after`` adds a
``Retry-After`` header), ``error_200`` (an error body with HTTP 200), ``hang`` (no answer until
stopped), ``drip`` (one token or body byte per ``delay_s``), ``cut_stream`` (close mid-body
after ``after`` tokens), ``malformed_json``, ``wrong_content_type``, ``models_missing`` (health
is 200 but ``/v1/models`` lists another name), ``health_down`` (``/health`` 503). Refusing
connections is ``refuse_connections()`` / ``accept_connections()`` (the port really closes).

Run standalone for manual checks: ``python -m agentd.testing.fake_vllm --port 8100``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentd.testing import fake_shapes as shapes

Reply = Callable[[dict[str, Any]], str]
GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions", "/api/paas/v4/chat/completions")
STRUCTURED_KINDS = {"regex", "json", "grammar", "choice", "structural_tag"}
KINDS = {
    "status",
    "error_200",
    "hang",
    "drip",
    "cut_stream",
    "malformed_json",
    "wrong_content_type",
    "models_missing",
    "health_down",
}


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # like uvicorn's backlog; the stdlib's 5 resets bursts of connects
    daemon_threads = True
    block_on_close = False


@dataclass
class Misbehaviour:
    """One requested fault; ``times=None`` lasts until ``clear()``."""

    kind: str
    status: int = 500
    delay_s: float = 0.05
    after: int = 2
    times: int | None = None
    paths: tuple[str, ...] = GENERATION_PATHS
    retry_after: float | None = None


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any


@dataclass
class _Counters:
    in_flight: int = 0
    max_in_flight: int = 0
    generated_tokens: int = 0
    prompt_tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeVLLM:
    """The server and its control surface (thread-safe)."""

    def __init__(
        self,
        *,
        model: str = "qwen3-14b-awq",
        port: int = 0,
        replies: Iterable[str] | Reply | None = None,
        default_reply: str = "Hello from the fake vLLM server.",
        token_delay_s: float = 0.0,
        max_model_len: int = 2048,
        flavour: str = "vllm",
    ) -> None:
        if flavour not in shapes.FLAVOURS:
            raise ValueError(f"unknown flavour {flavour!r}; one of {shapes.FLAVOURS}")
        self.flavour = flavour
        self.model = model
        self.max_model_len = max_model_len
        self.default_reply = default_reply
        self.token_delay_s = token_delay_s
        self._port = port
        self._lock = threading.Lock()
        self._queue: collections.deque[str] = collections.deque()
        self._reply_fn: Reply | None = None
        self._faults: list[Misbehaviour] = []
        self._requests: list[RecordedRequest] = []
        self.counters = _Counters()
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._conns: set[socket.socket] = set()
        if callable(replies):
            self._reply_fn = replies
        elif replies is not None:
            self._queue.extend(replies)

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeVLLM:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.stopping.clear()
        self.accept_connections()

    def stop(self) -> None:
        self.stopping.set()  # releases hanging handlers
        self.refuse_connections()

    def accept_connections(self) -> None:
        """(Re)open the listening socket on the same port."""
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self._port), _handler_for(self))
        self._port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def refuse_connections(self) -> None:
        """Close the listening socket and drop open connections, like a crashed server."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def track(self, conn: socket.socket, *, open_: bool) -> None:
        """Called by the handler so ``refuse_connections`` can drop live keep-alive sockets."""
        with self._lock:
            if open_:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------ scripting

    def script(self, *texts: str) -> None:
        """Queue exact model outputs; each generation takes the next one."""
        with self._lock:
            self._queue.extend(texts)

    def reply_with(self, fn: Reply | None) -> None:
        """Answer every generation with ``fn(request_body)`` (after the queue is empty)."""
        self._reply_fn = fn

    def misbehave(self, kind: str, **options: Any) -> Misbehaviour:
        if kind not in KINDS:
            raise ValueError(f"unknown misbehaviour {kind!r}; one of {sorted(KINDS)}")
        if kind == "models_missing":
            options.setdefault("paths", ("/v1/models",))
        if kind == "health_down":
            options.setdefault("paths", ("/health",))
        fault = Misbehaviour(kind=kind, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def generation_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of every completion request received, in order."""
        return [r.body for r in self.requests if r.path in GENERATION_PATHS]

    # ------------------------------------------------------------ used by the handler

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def take_fault(self, path: str) -> Misbehaviour | None:
        with self._lock:
            for fault in self._faults:
                if path in fault.paths and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def next_reply(self, body: dict[str, Any]) -> str:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self._reply_fn(body) if self._reply_fn else self.default_reply


def _handler_for(fake: FakeVLLM) -> type[BaseHTTPRequestHandler]:
    from agentd.testing.fake_handler import make_handler

    return make_handler(fake)


def validate_generation(fake: FakeVLLM, body: Any, path: str) -> tuple[int, str] | None:
    """vLLM's 4xx checks, in its words; ``None`` when the request is acceptable."""
    if not isinstance(body, dict):
        return 400, "Request body must be a JSON object"
    if body.get("model") not in (None, fake.model):
        return 404, f"The model `{body.get('model')}` does not exist."
    if path.endswith("chat/completions") and not isinstance(body.get("messages"), list):
        return 400, "messages: Field required"
    if path.endswith("/completions") and "chat" not in path and "prompt" not in body:
        return 400, "prompt: Field required"
    problem = _validate_context(fake, body)
    return problem or _validate_structured(body.get("structured_outputs"))


def _validate_context(fake: FakeVLLM, body: dict[str, Any]) -> tuple[int, str] | None:
    """vLLM's 400 for a prompt that, with its max_tokens, does not fit max_model_len."""
    prompt = len(shapes.token_ids(shapes.prompt_text(body)))
    reserve = body.get("max_tokens") or body.get("max_completion_tokens") or 0
    if not isinstance(reserve, int) or prompt + reserve <= fake.max_model_len:
        return None
    return 400, (f"This model's maximum context length is {fake.max_model_len} tokens. However, "
                 f"you requested {prompt + reserve} tokens ({prompt} in the messages, "
                 f"{reserve} in the completion).")


def _validate_structured(spec: Any) -> tuple[int, str] | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or set(spec) - STRUCTURED_KINDS - {"whitespace_pattern"}:
        return 400, "structured_outputs: unknown field"
    kinds = set(spec) & STRUCTURED_KINDS
    if len(kinds) > 1:
        return 400, "You can only use one kind of structured outputs constraint"
    if "regex" in spec:
        try:
            re.compile(spec["regex"])
        except (re.error, TypeError):
            return 400, "structured_outputs.regex: invalid regular expression"
    return None


def finish(text: str, body: dict[str, Any]) -> tuple[str, str]:
    """Apply ``stop`` strings and ``max_tokens`` the way vLLM does; return (text, reason)."""
    stops = body.get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        if stop and stop in text:
            return text[: text.index(stop)], "stop"
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    toks = shapes.pieces(text)
    if isinstance(limit, int) and len(toks) > limit:
        return "".join(toks[:limit]), "length"
    return text, "stop"


def metrics_text(fake: FakeVLLM) -> str:
    c = fake.counters
    label = f'{{model_name="{fake.model}"}}'
    return (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running{label} {float(c.in_flight)}\n"
        "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n"
        "# TYPE vllm:prompt_tokens_total counter\n"
        f"vllm:prompt_tokens_total{label} {float(c.prompt_tokens)}\n"
        "# HELP vllm:generation_tokens_total Number of generation tokens processed.\n"
        "# TYPE vllm:generation_tokens_total counter\n"
        f"vllm:generation_tokens_total{label} {float(c.generated_tokens)}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake vLLM OpenAI server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--model", default="qwen3-14b-awq")
    parser.add_argument("--reply", default="Hello from the fake vLLM server.")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds per token")
    args = parser.parse_args(argv)
    fake = FakeVLLM(
        model=args.model, port=args.port, default_reply=args.reply, token_delay_s=args.token_delay
    )
    with fake:
        print(json.dumps({"listening": fake.base_url, "model": fake.model}), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
