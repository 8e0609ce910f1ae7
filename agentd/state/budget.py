"""Keep the rendered ``<state>`` block inside its token budget.

Counting is pluggable (``agentd.state.counters``: the actor's ``/tokenize``, a local
``tokenizer.json``, or a conservative estimate) and every result names the counter used.

``fit_budget`` folds an over-budget state in a fixed order — oldest history first, then
hypotheses (oldest first), then the decisions into one summary line (about half their size:
the head of each, or the summariser's words), then open issues (oldest first), the summary
line, constraints and goals (newest first) and finally next_focus — and records each thing
it dropped. The order is a list of candidate states, each smaller than
the one before, so a binary search finds the least folding that fits with a handful of counts
(a remote counter is an HTTP round trip). The optional ``summariser`` hook (an LLM, later)
writes the decisions' summary line; it has a timeout, its output is cleaned like any model
output, and a failure falls back to the mechanical line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import msgspec

from agentd.config import StateConfig
from agentd.logging import get_logger
from agentd.state.counters import (
    EstimateCounter,
    MeasuringCounter,
    RemoteTokenizeCounter,
    TokenCount,
    TokenCounter,
    TokenizerJsonCounter,
    counter_for,
    measure,
)
from agentd.state.merge import snippet
from agentd.state.model import ELLIPSIS, State, clean_text
from agentd.state.render import render

log = get_logger(__name__)

Summariser = Callable[[list[str], int], Awaitable[str]]
"""``await summariser(decisions, max_chars)`` → one line summarising the decisions."""

SUMMARY_PREFIX: Final = "earlier decisions: "

__all__ = [
    "EstimateCounter",
    "FitResult",
    "MeasuringCounter",
    "RemoteTokenizeCounter",
    "Summariser",
    "TokenCount",
    "TokenCounter",
    "TokenizerJsonCounter",
    "counter_for",
    "fit_budget",
    "measure",
]


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

