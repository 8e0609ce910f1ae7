"""``OpenAIClient``: one OpenAI-compatible endpoint (a vLLM actor or a hosted teacher).

One ``httpx.AsyncClient`` — one connection pool — per endpoint. Every call runs under a hard
deadline (``anyio.fail_after``), on top of httpx's own connect/read timeouts, because a server
that drips one byte a second never trips a read timeout. Transport failures map onto the
``PolicyError`` tree so callers can decide what to retry:

    EndpointUnavailableError   connection refused / reset before a response, DNS, connect timeout
    EndpointTimeoutError       the call outlived its deadline
    EndpointResponseError      an HTTP error status (``.status``), a body that breaks the protocol
                               (status 200), or a connection dropped mid-response (status None)

The API key is sent as a bearer header and appears in no log line, repr or error message.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import httpx
import msgspec

from agentd.config import ClientConfig
from agentd.errors import (
    EndpointResponseError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    PolicyError,
)
from agentd.policies.base import Generation
from agentd.policies.reasoning import http_error, raise_for_error_body, split_leading_think
from agentd.policies.wire import (
    CallParams,
    Parsed,
    StreamAccumulator,
    bad,
    build_body,
    decode_json,
    error_message,
    parse_response,
)
from agentd.profiles import DEFAULT_PROFILES, ProviderProfile
from agentd.records import Usage

MAX_BODY_BYTES = 16 * 1024 * 1024  # far above any completion we ask for; a runaway body stops here
MAX_SSE_LINE_BYTES = 1024 * 1024  # one SSE event: a delta of a few tokens, or one error object
_VERSION_SUFFIX = re.compile(r"/v\d+$")


class HealthStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Readiness of one endpoint: ``ok`` only when the served model is listed."""

    ok: bool
    reason: str = ""
    models: list[str] = msgspec.field(default_factory=list)
    latency_ms: float = 0.0
    max_model_len: int | None = None  # the served model's context, when /v1/models says


class OpenAIClient:
    """Async client for one OpenAI-compatible server.

    ``base_url`` is either the server root (``http://host:8100``, ``/v1`` is appended) or an
    API base that already ends in a version (``https://…/v1``, ``…/api/paas/v4``). ``vllm``
    enables vLLM's extensions (``structured_outputs``, ``return_token_ids``, ``/health``,
    ``/tokenize``); hosted teachers leave it off.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        config: ClientConfig,
        name: str,
        vllm: bool = True,
        profile: ProviderProfile | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.config = config
        self.profile = profile or DEFAULT_PROFILES["vllm-plain" if vllm else "openai-compatible"]
        self.vllm = vllm
        base = base_url.rstrip("/")
        self.api_base = base if _VERSION_SUFFIX.search(base) else f"{base}/v1"
        self.root = _VERSION_SUFFIX.sub("", base)
        self._http = httpx.AsyncClient(
            headers={"Accept-Encoding": "identity",
                     **({"Authorization": f"Bearer {api_key}"} if api_key else {})},
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_connections,
            ),
            trust_env=not vllm,  # actors are cluster-local: never route them through a proxy
        )

    def __repr__(self) -> str:
        return f"OpenAIClient(name={self.name!r}, api_base={self.api_base!r}, model={self.model!r})"

    @property
    def endpoint(self) -> str:
        return self.api_base

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------ generation

    async def generate(
        self, params: CallParams, *, timeout_s: float | None = None, stream: bool | None = None
    ) -> Generation:
        """One completion; raises a ``PolicyError`` subclass, never hangs past ``timeout_s``."""
        use_stream = self.config.stream if stream is None else stream
        body = build_body(
            params,
            model=self.model,
            stream=use_stream,
            vllm=self.vllm,
            return_token_ids=self.vllm and self.config.return_token_ids,
            logprobs=self.config.logprobs,
            max_tokens_field=self.profile.max_tokens_field,
        )
        url = f"{self.api_base}/{'chat/completions' if params.is_chat else 'completions'}"
        started = time.perf_counter()
        with self._deadline(timeout_s):
            if use_stream:
                parsed, ttft = await self._post_stream(url, body, params.is_chat, started)
            else:
                parsed, ttft = await self._post_json(url, body, params.is_chat), None
        return self._generation(parsed, ttft, started)

    def _generation(self, parsed: Parsed, ttft: float | None, started: float) -> Generation:
        text, reasoning = parsed.text, parsed.reasoning
        if not reasoning and self.profile.reasoning == "in_content":
            reasoning, text = split_leading_think(text)
        usage = Usage(
            prompt_tokens=parsed.prompt_tokens,
            completion_tokens=parsed.completion_tokens,
            cached_prompt_tokens=parsed.cached_prompt_tokens,
            prompt_token_ids=parsed.prompt_token_ids,
            completion_token_ids=parsed.completion_token_ids,
            logprobs=parsed.logprobs,
        )
        return Generation(
            text=text,
            reasoning=reasoning,
            native_reasoning=self.profile.thinks_natively,
            finish_reason=parsed.finish_reason or "stop",
            usage=usage,
            model=parsed.model or self.model,
            endpoint=self.api_base,
            answered_by=self.name,
            ttft_ms=ttft,
            total_ms=(time.perf_counter() - started) * 1000,
        )

    async def _post_json(self, url: str, body: dict[str, Any], chat: bool) -> Parsed:
        async with self._request("POST", url, body) as response:
            _expect_type(response, "application/json")
            raw = await _read_capped(response)
        data = decode_json(raw)
        raise_for_error_body(data, style=self.profile.errors, name=self.name)
        return parse_response(data, chat=chat)

    async def _post_stream(
        self, url: str, body: dict[str, Any], chat: bool, started: float
    ) -> tuple[Parsed, float | None]:
        acc = StreamAccumulator(chat=chat)
        ttft: float | None = None
        async with self._request("POST", url, body) as response:
            _expect_type(response, "text/event-stream")
            async for payload in _sse_payloads(response):
                if payload is None:
                    return acc.result(), ttft
                chunk = decode_json(payload)
                raise_for_error_body(chunk, style=self.profile.errors, name=self.name)
                if acc.feed(chunk) and ttft is None:
                    ttft = (time.perf_counter() - started) * 1000
        raise bad("stream ended before [DONE]")

    # ------------------------------------------------------------ health, tokenize

    async def health(self, *, timeout_s: float | None = None) -> HealthStatus:
        """``GET /health`` (vLLM only) and ``GET /v1/models`` listing the served name."""
        started = time.perf_counter()
        try:
            with self._deadline(timeout_s or self.config.connect_timeout_s * 2):
                if self.vllm:
                    await self._get(f"{self.root}/health")
                listing = decode_json(await self._get(f"{self.api_base}/models"))
                models = _model_ids(listing)
        except PolicyError as exc:
            return HealthStatus(ok=False, reason=str(exc))
        latency = (time.perf_counter() - started) * 1000
        if self.model not in models:
            reason = f"{self.name}: model {self.model!r} not served (has {models[:5]})"
            return HealthStatus(ok=False, reason=reason, models=models, latency_ms=latency)
        return HealthStatus(ok=True, models=models, latency_ms=latency,
                            max_model_len=_max_model_len(listing, self.model))

    async def tokenize(self, text: str, *, timeout_s: float | None = None) -> list[int]:
        """Exact token ids of ``text`` under the served model (vLLM's ``POST /tokenize``)."""
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        return await self._tokenize(body, timeout_s)

    async def count_chat(
        self, messages: list[dict[str, str]], *, timeout_s: float | None = None
    ) -> int:
        """Prompt tokens of a chat as the server will see it: its chat template applied, the
        generation prompt and the profile's template switches included (``POST /tokenize``)."""
        body: dict[str, Any] = {"model": self.model, "messages": messages,
                                "add_generation_prompt": True}
        kwargs = self.profile.extra_body.get("chat_template_kwargs")
        if kwargs:
            body["chat_template_kwargs"] = kwargs
        return len(await self._tokenize(body, timeout_s))

    async def _tokenize(self, body: dict[str, Any], timeout_s: float | None) -> list[int]:
        with self._deadline(timeout_s):
            async with self._request("POST", f"{self.root}/tokenize", body) as response:
                _expect_type(response, "application/json")
                data = decode_json(await _read_capped(response))
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise bad("tokenize answer has no token list")
        return tokens

    async def _get(self, url: str) -> bytes:
        async with self._request("GET", url, None) as response:
            return await _read_capped(response)

    # ------------------------------------------------------------ transport

    @contextmanager
    def _deadline(self, timeout_s: float | None) -> Iterator[None]:
        limit = timeout_s or self.config.timeout_s
        try:
            with anyio.fail_after(limit):
                yield
        except TimeoutError:
            raise EndpointTimeoutError(f"{self.name}: no answer within {limit:g}s") from None

    @asynccontextmanager
    async def _request(
        self, method: str, url: str, body: dict[str, Any] | None
    ) -> AsyncIterator[httpx.Response]:
        content = msgspec.json.encode(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        with _mapped_errors(self.name):
            request = self._http.build_request(method, url, content=content, headers=headers)
            response = await self._http.send(request, stream=True)
            try:
                if response.status_code != httpx.codes.OK:
                    raw = await _read_capped(response)
                    wait = retry_after(response.headers.get("retry-after"))
                    raise http_error(self.name, response.status_code, error_message(raw),
                                     retry_after_s=wait)
                yield response
            finally:
                await response.aclose()


@contextmanager
def _mapped_errors(name: str) -> Iterator[None]:
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise EndpointUnavailableError(f"{name}: cannot connect: {exc}") from None
    except httpx.TimeoutException as exc:
        raise EndpointTimeoutError(f"{name}: timed out: {type(exc).__name__}") from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise EndpointResponseError(f"{name}: connection dropped: {exc}", status=None) from None
    except httpx.HTTPError as exc:
        raise EndpointUnavailableError(f"{name}: {type(exc).__name__}: {exc}") from None


def _expect_type(response: httpx.Response, expected: str) -> None:
    got = response.headers.get("content-type", "")
    if not got.startswith(expected):
        raise bad(f"content-type {got!r}, expected {expected}")


async def _read_capped(response: httpx.Response, cap: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, refused as soon as it passes ``cap`` (checked per chunk received; we
    ask for ``identity`` encoding, so a chunk inflates by at most one decoder call)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            raise bad(f"response body over {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _lines(response: httpx.Response, cap: int) -> AsyncIterator[bytes]:
    """The body's lines, each refused past ``cap`` bytes while it is still arriving (httpx's
    ``aiter_lines`` would buffer a line without a newline whole, however long)."""
    pending = bytearray()
    async for chunk in response.aiter_bytes():
        pending += chunk
        while (end := pending.find(b"\n")) >= 0:
            line = bytes(pending[:end]).rstrip(b"\r")
            del pending[:end + 1]
            yield line
        if len(pending) > cap:
            raise bad(f"SSE line over {cap} bytes without a newline")
    if pending:
        yield bytes(pending)


async def _sse_payloads(response: httpx.Response) -> AsyncIterator[bytes | None]:
    """The ``data:`` payloads of an SSE stream; ``None`` for ``[DONE]``."""
    size = 0
    async for line in _lines(response, MAX_SSE_LINE_BYTES):
        size += len(line) + 1
        if size > MAX_BODY_BYTES:
            raise bad(f"stream over {MAX_BODY_BYTES} bytes")
        if not line.startswith(b"data:"):
            continue  # blank separators, comments and event names carry nothing we use
        payload = line[5:].strip()
        yield None if payload == b"[DONE]" else payload


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _max_model_len(data: Any, model: str) -> int | None:
    for entry in data.get("data", []) if isinstance(data, dict) else []:
        if isinstance(entry, dict) and entry.get("id") == model:
            value = entry.get("max_model_len")
            return value if isinstance(value, int) and value > 0 else None
    return None


def _model_ids(data: Any) -> list[str]:
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise bad("/models answer has no data list")
    return [e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]
