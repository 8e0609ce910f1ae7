"""Token counters and the fold-to-fit summariser."""

from __future__ import annotations

import asyncio
import math
import socket
from pathlib import Path

import httpx
import pytest

from agentd.config import StateConfig
from agentd.errors import ConfigError
from agentd.state import (
    EstimateCounter,
    RemoteTokenizeCounter,
    State,
    TokenizerJsonCounter,
    counter_for,
    fit_budget,
    measure,
    render,
)
from agentd.state.budget import SUMMARY_PREFIX
from agentd.testing.clock import FakeClock

from .conftest import TokenizeServer


class CharCounter:
    """One token per character: makes budgets exact in tests."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def name(self) -> str:
        return "chars"

    async def count(self, text: str) -> int:
        self.calls += 1
        return len(text)


class BrokenCounter:
    @property
    def name(self) -> str:
        return "broken"

    async def count(self, text: str) -> int:
        raise RuntimeError("tokenizer crashed")


def full_state() -> State:
    pad = "x" * 200
    return State(
        goals=[f"goal {i} {pad}" for i in range(8)],
        constraints=[f"constraint {i} {pad}" for i in range(8)],
        decisions=[f"decision {i} {pad}" for i in range(8)],
        hypotheses=[f"hypothesis {i} {pad}" for i in range(8)],
        history=[f"step {i} {pad}" for i in range(3)],
        open_issues=[f"issue {i} {pad}" for i in range(8)],
        next_focus=f"focus {pad}",
    )


class TestEstimateCounter:
    async def test_counts_utf8_bytes_over_three_rounding_up(self) -> None:
        """The estimate is ceil(bytes / 3): multi-byte characters count by their bytes."""
        counter = EstimateCounter()
        assert await counter.count("") == 0
        assert await counter.count("abcd") == 2
        assert await counter.count("é" * 3) == 2  # 6 bytes
        assert counter.name == "estimate"

    async def test_never_fails_on_lone_surrogates(self) -> None:
        """Text that cannot be UTF-8 encoded still gets a count."""
        assert await EstimateCounter().count("\ud800abc") == math.ceil(6 / 3)


class TestRemoteTokenizeCounter:
    async def test_counts_with_the_server(self, tokenize_server: TokenizeServer) -> None:
        """A reachable actor gives the count and the counter names itself."""
        async with httpx.AsyncClient() as client:
            counter = RemoteTokenizeCounter(tokenize_server.url, "qwen", client)
            got = await measure(counter, "one two three")
        assert (got.tokens, got.counter) == (3, "vllm_tokenize:qwen")
        req = tokenize_server.requests[0]
        assert (req["path"], req["model"], req["prompt"]) == ("/tokenize", "qwen", "one two three")
        assert counter.max_model_len == 8192

    @pytest.mark.parametrize("mode", ["error", "garbage", "slow"])
    async def test_falls_back_to_the_estimate(
        self, tokenize_server: TokenizeServer, mode: str
    ) -> None:
        """A 500, a non-JSON body or a timeout gives the estimate, named as such."""
        tokenize_server.mode = mode
        async with httpx.AsyncClient() as client:
            counter = RemoteTokenizeCounter(tokenize_server.url, "qwen", client, timeout_s=0.3)
            got = await measure(counter, "one two three")
        assert (got.tokens, got.counter) == (5, "estimate")

    async def test_connection_refused_falls_back(self) -> None:
        """Nothing listening on the port is a fallback, not an exception."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        async with httpx.AsyncClient() as client:
            counter = RemoteTokenizeCounter(f"http://127.0.0.1:{port}", "m", client)
            assert await counter.count("abcdef") == 2

    async def test_a_failed_actor_is_not_asked_again_until_retry_after(
        self, tokenize_server: TokenizeServer
    ) -> None:
        """After a failure the counter uses the estimate for retry_after_s, then tries again."""
        tokenize_server.mode = "error"
        async with httpx.AsyncClient() as client:
            clock = FakeClock()
            counter = RemoteTokenizeCounter(tokenize_server.url, "m", client, retry_after_s=30,
                                            clock=clock)
            await counter.count("a b")
            tokenize_server.mode = "ok"
            clock.advance(29.9)
            assert (await counter.measure("a b")).counter == "estimate"
            assert len(tokenize_server.requests) == 1
            clock.advance(0.1)
            assert (await counter.measure("a b")).counter == "vllm_tokenize:m"


class TestCounterFor:
    async def test_without_actor_or_tokenizer_it_is_the_estimate(self) -> None:
        """No actor and no tokenizer.json configured: the estimate."""
        assert (await counter_for(StateConfig())).name == "estimate"

    async def test_with_an_actor_it_is_remote_over_the_estimate(
        self, tokenize_server: TokenizeServer
    ) -> None:
        """With an actor the remote counter is used, the estimate behind it."""
        async with httpx.AsyncClient() as client:
            counter = await counter_for(StateConfig(), base_url=tokenize_server.url,
                                        model="m", client=client)
            assert isinstance(counter, RemoteTokenizeCounter)
            assert counter.fallback.name == "estimate"
            assert (await measure(counter, "a b c")).counter == "vllm_tokenize:m"

    async def test_a_broken_tokenizer_json_setting_is_a_config_error(self, tmp_path: Path) -> None:
        """A configured tokenizer.json that cannot be loaded stops start-up with one line."""
        with pytest.raises(ConfigError, match="tokenizer_json"):
            await counter_for(StateConfig(tokenizer_json=tmp_path / "missing.json"))


class TestTokenizerJsonCounter:
    async def test_missing_package_or_file_is_one_clear_config_error(self, tmp_path: Path) -> None:
        """Without the optional package (or the file) loading says exactly what to do."""
        try:
            import tokenizers  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            expected = "'tokenizers' package is not installed"
        else:
            expected = "file not found"
        with pytest.raises(ConfigError, match=expected):
            await TokenizerJsonCounter.load(tmp_path / "tokenizer.json")


class TestFitBudget:
    async def test_a_state_that_fits_is_untouched(self) -> None:
        """Under budget nothing is dropped and one count is made."""
        counter = CharCounter()
        state = State(goals=["g"], history=["h"])
        result = await fit_budget(state, counter, 10_000)
        assert (result.state, result.dropped, result.fits) == (state, [], True)
        assert result.rendered == render(state)
        assert result.tokens == len(render(state))
        assert (result.counter_name, counter.calls) == ("chars", 1)

    async def test_oldest_history_goes_first(self) -> None:
        """Just over budget: only the oldest history entry is dropped."""
        state = State(history=["h0", "h1", "h2"], hypotheses=["p0"])
        budget = len(render(State(history=["h1", "h2"], hypotheses=["p0"])))
        result = await fit_budget(state, CharCounter(), budget)
        assert result.state == State(history=["h1", "h2"], hypotheses=["p0"])
        assert result.dropped == ["history: 'h0'"]

    async def test_hypotheses_go_after_history(self) -> None:
        """With history gone, the oldest hypotheses go next; decisions stay."""
        state = State(history=["h0"], hypotheses=["p0", "p1"], decisions=["d0", "d1"])
        target = State(hypotheses=["p1"], decisions=["d0", "d1"])
        result = await fit_budget(state, CharCounter(), len(render(target)))
        assert result.state == target
        assert result.dropped == ["history: 'h0'", "hypotheses: 'p0'"]

    async def test_decisions_fold_into_one_summary_line(self) -> None:
        """Then the decisions become one line that names them all (as far as it fits)."""
        decisions = [f"decision number {i} is long enough to fold" for i in range(4)]
        state = State(decisions=decisions, hypotheses=["p"], goals=["g"])
        budget = len(render(State(decisions=decisions, goals=["g"]))) - 10
        result = await fit_budget(state, CharCounter(), budget)
        assert result.fits
        assert result.state.goals == ["g"] and result.state.hypotheses == []
        assert len(result.state.decisions) == 1
        summary = result.state.decisions[0]
        assert summary.startswith(SUMMARY_PREFIX + "decision n")
        assert summary.count("; ") == 3  # every decision keeps its head
        assert len(summary) < sum(map(len, decisions)) / 2 + len(SUMMARY_PREFIX)
        assert result.dropped[-1] == "decisions: folded 4 into one summary line"

    async def test_the_summariser_hook_writes_the_line(self) -> None:
        """An LLM summariser, when given, writes the summary; its output is cleaned."""
        seen: list[list[str]] = []

        async def summarise(items: list[str], max_chars: int) -> str:
            seen.append(items)
            return "chose X\nover Y </state>"

        state = State(decisions=[f"decision {i} " + "z" * 100 for i in range(5)])
        result = await fit_budget(state, CharCounter(), 300, summariser=summarise)
        assert seen == [state.decisions]
        assert result.state.decisions == [SUMMARY_PREFIX + "chose X over Y ‹/state>"]

    @pytest.mark.parametrize("behaviour", ["raise", "hang", "not-a-string", "empty"])
    async def test_a_failing_summariser_falls_back(self, behaviour: str) -> None:
        """A summariser that raises, hangs, or answers nonsense gives the mechanical line."""

        async def summarise(items: list[str], max_chars: int) -> object:
            if behaviour == "raise":
                raise RuntimeError("LLM down")
            if behaviour == "hang":
                await asyncio.sleep(30)
            return 42 if behaviour == "not-a-string" else "  "

        state = State(decisions=[f"decision {i} " + "z" * 100 for i in range(5)])
        result = await fit_budget(state, CharCounter(), 300, summariser=summarise,  # type: ignore[arg-type]
                                  summariser_timeout_s=0.2)
        assert result.state.decisions[0].startswith(SUMMARY_PREFIX + "decision 0 zz")

    async def test_summariser_not_called_when_light_folds_suffice(self) -> None:
        """Dropping history and hypotheses first means no LLM call when that is enough."""

        async def summarise(items: list[str], max_chars: int) -> str:
            raise AssertionError("should not be called")

        state = State(history=["h" * 100], decisions=["d0", "d1"])
        budget = len(render(State(decisions=["d0", "d1"])))
        result = await fit_budget(state, CharCounter(), budget, summariser=summarise)
        assert result.state == State(decisions=["d0", "d1"])

    async def test_fixed_order_to_the_end(self) -> None:
        """With a tiny budget everything goes, in the documented order."""
        state = State(goals=["g0", "g1"], constraints=["c0"], decisions=["d0"],
                      hypotheses=["p0"], history=["h0"], open_issues=["o0"], next_focus="f")
        result = await fit_budget(state, CharCounter(), 1)
        assert not result.fits
        assert result.state == State()
        assert result.dropped == [
            "history: 'h0'", "hypotheses: 'p0'", "open_issues: 'o0'", "decisions: 'd0'",
            "constraints: 'c0'", "goals: 'g1'", "goals: 'g0'", "next_focus: 'f'",
        ]

    async def test_a_few_counts_suffice(self) -> None:
        """Finding the fold point is a binary search: a handful of counts, not one per item."""
        counter = CharCounter()
        result = await fit_budget(full_state(), counter, 2000, caps=StateConfig())
        assert result.fits
        assert counter.calls <= 10

    async def test_a_broken_counter_falls_back_to_the_estimate(self) -> None:
        """A counter that raises is replaced by the estimate, and the result says so."""
        result = await fit_budget(full_state(), BrokenCounter(), 800)
        assert result.fits and result.counter_name == "estimate"

    async def test_fits_with_the_remote_counter(self, tokenize_server: TokenizeServer) -> None:
        """With a reachable actor the budget is met in its tokens, and few requests are made."""
        async with httpx.AsyncClient() as client:
            counter = RemoteTokenizeCounter(tokenize_server.url, "m", client)
            result = await fit_budget(full_state(), counter, 40)
        assert result.fits and result.counter_name == "vllm_tokenize:m"
        assert result.tokens == len(result.rendered.split()) <= 40
        assert len(tokenize_server.requests) <= 10
