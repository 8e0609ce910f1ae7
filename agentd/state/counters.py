"""Token counters for the state budget: pluggable, and every count says who counted.

A ``TokenCounter`` has a ``name`` and ``async count(text)``; the implementations:

- ``RemoteTokenizeCounter`` asks the actor's vLLM server (``POST /tokenize``): exact for the
  model that will read the prompt. On any failure it answers with its fallback (the estimate)
  and stays on the fallback for ``retry_after_s`` so a dead actor costs one timeout, not one
  per count.
- ``TokenizerJsonCounter`` uses a local Hugging Face ``tokenizer.json`` (needs the optional
  ``tokenizers`` package).
- ``EstimateCounter``: ``ceil(utf8_bytes / 3)``, conservative for BPE tokenizers on English
  and code (they average 3.5–4.5 bytes a token).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
import httpx
import msgspec

from agentd.config import StateConfig
from agentd.errors import ConfigError, RefusedInputError
from agentd.logging import get_logger

log = get_logger(__name__)
# vLLM answers with the token list too: ~8 bytes a token, so a 128k-token prompt is ~1 MiB.
MAX_TOKENIZE_BODY_BYTES = 8 * 1024 * 1024


class TokenCount(msgspec.Struct, frozen=True):
    """A token count and the counter that produced it."""

    tokens: int
    counter: str


class TokenCounter(Protocol):
    """Counts the tokens of a text for the model that will read it."""

    @property
    def name(self) -> str:
        """Which counter this is (recorded with every budget decision)."""
        ...

    async def count(self, text: str) -> int:
        """Tokens in ``text``."""
        ...


@runtime_checkable
class MeasuringCounter(Protocol):
    """A counter that may answer with another counter (a fallback) and says which."""

    async def measure(self, text: str) -> TokenCount:
        """Tokens in ``text`` and the name of the counter that counted them."""
        ...


class EstimateCounter:
    """``ceil(utf8_bytes / bytes_per_token)``: no model needed, errs on the high side."""

    def __init__(self, bytes_per_token: float = 3.0) -> None:
        self.bytes_per_token = bytes_per_token

    @property
    def name(self) -> str:
        return "estimate"

    async def count(self, text: str) -> int:
        return self.count_sync(text)

    def count_sync(self, text: str) -> int:
        """The same count without an event loop."""
        return math.ceil(len(text.encode("utf-8", "surrogatepass")) / self.bytes_per_token)


class TokenizerJsonCounter:
    """Counts with a local Hugging Face ``tokenizer.json`` (optional ``tokenizers`` package)."""

    def __init__(self, tokenizer: Any, path: Path) -> None:
        self._tokenizer = tokenizer
        self.path = path

    @classmethod
    async def load(cls, path: Path) -> TokenizerJsonCounter:
        """Load ``path`` off the event loop; ``ConfigError`` if it or the package is missing."""
        return await anyio.to_thread.run_sync(cls._load_sync, path)

    @classmethod
    def _load_sync(cls, path: Path) -> TokenizerJsonCounter:
        try:
            from tokenizers import Tokenizer  # type: ignore[import-not-found]
        except ImportError:
            raise ConfigError(
                f"state.tokenizer_json is set ({path}) but the optional 'tokenizers' package is "
                "not installed; install it or set tokenizer_json: null"
            ) from None
        if not path.is_file():
            raise ConfigError(f"state.tokenizer_json: {path}: file not found")
        try:
            return cls(Tokenizer.from_file(str(path)), path)
        except Exception as exc:
            raise ConfigError(f"state.tokenizer_json: {path}: not a tokenizer: {exc}") from None

    @property
    def name(self) -> str:
        return f"tokenizer_json:{self.path.name}"

    async def count(self, text: str) -> int:
        # A few KiB encode in well under a millisecond: not worth a thread hop.
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


class _TokenizeResponse(msgspec.Struct):
    count: int
    max_model_len: int | None = None


class RemoteTokenizeCounter:
    """vLLM's ``POST /tokenize`` on the actor; falls back to an estimate when it fails."""

    def __init__(
        self,
        base_url: str,
        model: str,
        client: httpx.AsyncClient,
        *,
        timeout_s: float = 5.0,
        retry_after_s: float = 30.0,
        fallback: TokenCounter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` times ``retry_after_s`` after a failure (tests inject one)."""
        self.url = base_url.rstrip("/") + "/tokenize"
        self._clock = clock
        self.model = model
        self._client = client
        self._timeout = timeout_s
        self._retry_after = retry_after_s
        self.fallback: TokenCounter = fallback or EstimateCounter()
        self._down_until = 0.0
        self.max_model_len: int | None = None

    @property
    def name(self) -> str:
        return f"vllm_tokenize:{self.model}"

    async def count(self, text: str) -> int:
        return (await self.measure(text)).tokens

    async def measure(self, text: str) -> TokenCount:
        if self._clock() >= self._down_until:
            tokens = await self._remote(text)
            if tokens is not None:
                return TokenCount(tokens, self.name)
            self._down_until = self._clock() + self._retry_after
        return TokenCount(await self.fallback.count(text), self.fallback.name)

    async def _remote(self, text: str) -> int | None:
        """The server's count, or None (logged with what ran out) on any failure. The whole
        request runs under one deadline — a server dripping a byte a second never trips
        httpx's per-read timeout — and the body is capped while it is read."""
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        try:
            with anyio.fail_after(self._timeout):
                async with self._client.stream("POST", self.url, json=body,
                                               timeout=self._timeout) as resp:
                    resp.raise_for_status()
                    raw = await _read_capped(resp, MAX_TOKENIZE_BODY_BYTES)
            parsed = msgspec.json.decode(raw, type=_TokenizeResponse)
        except TimeoutError:
            return self._failed(f"no whole answer within {self._timeout:g}s (total deadline)")
        except (httpx.HTTPError, msgspec.DecodeError, _BodyTooLarge) as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        if parsed.count < 0:
            return None
        self.max_model_len = parsed.max_model_len
        return parsed.count

    def _failed(self, why: str) -> int | None:
        """Log why the count failed; None, so the caller falls back."""
        log.warning("state.tokenize_failed", url=self.url, error=why[:300],
                    fallback=self.fallback.name, retry_after_s=self._retry_after)
        return None


class _BodyTooLarge(RefusedInputError):
    """A /tokenize answer past its cap (never leaves this module)."""


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            raise _BodyTooLarge(f"/tokenize body over {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def counter_for(
    config: StateConfig,
    *,
    base_url: str | None = None,
    model: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> TokenCounter:
    """The counter the config asks for: the actor's ``/tokenize`` when one is given, falling
    back to the local ``tokenizer.json`` when configured, else to the estimate.

    Raises ``ConfigError`` if ``tokenizer_json`` is set but cannot be loaded (a start-up
    problem the operator must see, not something to paper over with the estimate).
    """
    fallback: TokenCounter = EstimateCounter()
    if config.tokenizer_json is not None:
        fallback = await TokenizerJsonCounter.load(config.tokenizer_json)
    if base_url and model and client is not None:
        return RemoteTokenizeCounter(base_url, model, client, fallback=fallback)
    return fallback


async def measure(counter: TokenCounter, text: str) -> TokenCount:
    """Count ``text``; a counter that fails is replaced by the estimate, never raised."""
    try:
        if isinstance(counter, MeasuringCounter):
            return await counter.measure(text)
        return TokenCount(await counter.count(text), counter.name)
    except Exception as exc:
        log.debug("state.counter_failed", counter=counter.name, error=type(exc).__name__)
        fallback = EstimateCounter()
        return TokenCount(fallback.count_sync(text), fallback.name)
