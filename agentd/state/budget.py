"""Keep the rendered ``<state>`` block inside its token budget.

Counting is pluggable (``TokenCounter``) and every result says which counter produced it:

- ``RemoteTokenizeCounter`` asks the actor's vLLM server (``POST /tokenize``): exact for the
  model that will read the prompt. On any failure it answers with its fallback (the estimate)
  and stays on the fallback for ``retry_after_s`` so a dead actor costs one timeout, not one
  per count.
- ``TokenizerJsonCounter`` uses a local Hugging Face ``tokenizer.json`` (needs the optional
  ``tokenizers`` package).
- ``EstimateCounter``: ``ceil(utf8_bytes / 3)``, conservative for BPE tokenizers on English
  and code (they average 3.5–4.5 bytes a token).

``fit_budget`` folds an over-budget state in a fixed order — oldest history first, then
hypotheses (oldest first), then the decisions into one summary line (about half their size:
the head of each, or the summariser's words), then open issues (oldest
first), the summary line, constraints and goals (newest first) and finally next_focus — and
records each thing it dropped. The order is a list of candidate states, each smaller than
the one before, so a binary search finds the least folding that fits with a handful of counts
(a remote counter is an HTTP round trip). The optional ``summariser`` hook (an LLM, later)
writes the decisions' summary line; it has a timeout, its output is cleaned like any model
output, and a failure falls back to joining the decisions mechanically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import anyio
import httpx
import msgspec

from agentd.config import StateConfig
from agentd.errors import ConfigError
from agentd.logging import get_logger
from agentd.state.merge import snippet
from agentd.state.model import ELLIPSIS, State, clean_text
from agentd.state.render import render

log = get_logger(__name__)

Summariser = Callable[[list[str], int], Awaitable[str]]
"""``await summariser(decisions, max_chars)`` → one line summarising the decisions."""

SUMMARY_PREFIX: Final = "earlier decisions: "


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
    ) -> None:
        self.url = base_url.rstrip("/") + "/tokenize"
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
        if time.monotonic() >= self._down_until:
            tokens = await self._remote(text)
            if tokens is not None:
                return TokenCount(tokens, self.name)
            self._down_until = time.monotonic() + self._retry_after
        return TokenCount(await self.fallback.count(text), self.fallback.name)

    async def _remote(self, text: str) -> int | None:
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        try:
            resp = await self._client.post(self.url, json=body, timeout=self._timeout)
            resp.raise_for_status()
            parsed = msgspec.json.decode(resp.content, type=_TokenizeResponse)
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            log.debug("state.tokenize_failed", url=self.url, error=f"{type(exc).__name__}: {exc}")
            return None
        if parsed.count < 0:
            return None
        self.max_model_len = parsed.max_model_len
        return parsed.count


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


class FitResult(msgspec.Struct, frozen=True):
    """The state that fits (or the smallest one, if none does) and how it got there."""

    state: State
    rendered: str
    tokens: int
    counter_name: str
    dropped: list[str]
    budget: int

    @property
    def fits(self) -> bool:
        return self.tokens <= self.budget


class _Candidate(msgspec.Struct):
    state: State
    dropped: list[str]


async def fit_budget(
    state: State,
    counter: TokenCounter,
    budget: int,
    *,
    caps: StateConfig | None = None,
    summariser: Summariser | None = None,
    summariser_timeout_s: float = 20.0,
) -> FitResult:
    """Fold ``state`` until its rendered block fits ``budget`` tokens; never raises."""
    caps = caps or StateConfig()
    search = _Search(counter, budget)
    whole = _Candidate(state, [])
    if await search.fits(whole):
        return search.result(whole)
    light = _chain(whole, _light_folds(state))
    if await search.fits(light[-1]):
        return search.result(await search.first_fit(light))
    summary = await _summary(state.decisions, caps.item_max_chars, summariser,
                             summariser_timeout_s)
    heavy = _chain(light[-1], _heavy_folds(light[-1].state, summary))
    if not await search.fits(heavy[-1]):
        return search.result(heavy[-1])
    return search.result(await search.first_fit(heavy))


class _Search:
    """Counts candidates (memoised) and remembers the counter that answered."""

    def __init__(self, counter: TokenCounter, budget: int) -> None:
        self.counter = counter
        self.budget = budget
        self._counts: dict[int, TokenCount] = {}

    async def count(self, cand: _Candidate) -> TokenCount:
        key = id(cand)
        if key not in self._counts:
            self._counts[key] = await measure(self.counter, render(cand.state))
        return self._counts[key]

    async def fits(self, cand: _Candidate) -> bool:
        return (await self.count(cand)).tokens <= self.budget

    async def first_fit(self, chain: list[_Candidate]) -> _Candidate:
        """The first candidate that fits, given that the last one does (binary search)."""
        lo, hi = 0, len(chain) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if await self.fits(chain[mid]):
                hi = mid
            else:
                lo = mid + 1
        return chain[hi]

    def result(self, cand: _Candidate) -> FitResult:
        counted = self._counts[id(cand)]
        return FitResult(state=cand.state, rendered=render(cand.state), tokens=counted.tokens,
                         counter_name=counted.counter, dropped=cand.dropped, budget=self.budget)


Fold = Callable[[State], tuple[State, str]]


def _chain(start: _Candidate, folds: list[Fold]) -> list[_Candidate]:
    """``start`` followed by the states after each fold, cumulatively."""
    out = [start]
    for fold in folds:
        prev = out[-1]
        state, note = fold(prev.state)
        out.append(_Candidate(state, [*prev.dropped, note]))
    return out


def _drop_first(name: str) -> Fold:
    def fold(s: State) -> tuple[State, str]:
        items: list[str] = getattr(s, name)
        return msgspec.structs.replace(s, **{name: items[1:]}), f"{name}: {snippet(items[0])}"

    return fold


def _drop_last(name: str) -> Fold:
    def fold(s: State) -> tuple[State, str]:
        items: list[str] = getattr(s, name)
        return msgspec.structs.replace(s, **{name: items[:-1]}), f"{name}: {snippet(items[-1])}"

    return fold


def _light_folds(state: State) -> list[Fold]:
    """The cheap, lossy-but-expected folds: old history, then hypotheses."""
    return [_drop_first("history")] * len(state.history) + [
        _drop_first("hypotheses")
    ] * len(state.hypotheses)


def _heavy_folds(state: State, summary: str | None) -> list[Fold]:
    """Everything after the summary line, in the documented order."""
    folds: list[Fold] = []
    decisions = len(state.decisions)
    if summary is not None:
        folds.append(_fold_decisions(summary))
        decisions = 1
    folds += [_drop_first("open_issues")] * len(state.open_issues)
    folds += [_drop_first("decisions")] * decisions
    folds += [_drop_last("constraints")] * len(state.constraints)
    folds += [_drop_last("goals")] * len(state.goals)
    if state.next_focus:
        folds.append(_clear_focus)
    return folds


def _fold_decisions(summary: str) -> Fold:
    def fold(s: State) -> tuple[State, str]:
        note = f"decisions: folded {len(s.decisions)} into one summary line"
        return msgspec.structs.replace(s, decisions=[summary]), note

    return fold


def _clear_focus(s: State) -> tuple[State, str]:
    return msgspec.structs.replace(s, next_focus=""), f"next_focus: {snippet(s.next_focus)}"


async def _summary(
    decisions: list[str], max_chars: int, summariser: Summariser | None, timeout_s: float
) -> str | None:
    """One line for all decisions at about half their size, or None if that saves nothing."""
    if len(decisions) < 2:
        return None
    size = sum(len(d) + 3 for d in decisions)  # as rendered: "- " + item + newline
    target = min(max_chars, max(len(SUMMARY_PREFIX) + 24, size // 2))
    line = await _ask_summariser(decisions, target, summariser, timeout_s)
    if not line:
        share = max(8, (target - len(SUMMARY_PREFIX)) // len(decisions) - 2)
        heads = (d if len(d) <= share else d[: share - 1] + ELLIPSIS for d in decisions)
        line = clean_text(SUMMARY_PREFIX + "; ".join(heads), target)
    return line if len(line) < size else None


async def _ask_summariser(
    decisions: list[str], max_chars: int, summariser: Summariser | None, timeout_s: float
) -> str:
    if summariser is None:
        return ""
    try:
        with anyio.fail_after(timeout_s):
            text = await summariser(list(decisions), max_chars)
    except Exception as exc:  # TimeoutError included; the hook talks to an LLM: anything can happen
        log.warning("state.summariser_failed", error=f"{type(exc).__name__}: {exc}"[:200])
        return ""
    if not isinstance(text, str):
        return ""
    line = clean_text(text, max_chars - len(SUMMARY_PREFIX))
    return SUMMARY_PREFIX + line if line else ""

