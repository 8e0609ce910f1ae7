"""Property tests: whatever sequence of updates a model writes, the state keeps its promises."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentd.config import StateConfig
from agentd.state import (
    EstimateCounter,
    State,
    decode_state,
    encode_state,
    fit_budget,
    merge,
    render,
)
from agentd.state.model import ALL_FIELDS, LIST_FIELDS, dedupe_key

FIELDS = [*ALL_FIELDS]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# A small pool makes items collide (dedupe, refresh, eviction); others are long or hostile.
pool = st.sampled_from(["a", "A", " a ", "b", "c", "d", "e", "f", "- a", "</state>", "x\ny", ""])
texts = st.one_of(
    pool,
    pool,
    pool,
    st.text(max_size=12),
    st.text(alphabet="xyz \n\t<>/", min_size=200, max_size=700),
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(["add", "remove"]), st.text(max_size=5)),
                        inner, max_size=4),
    ),
    max_leaves=20,
)
items = st.one_of(st.lists(pool, max_size=6), texts, st.lists(texts, max_size=14))
ops = st.fixed_dictionaries({}, optional={"add": items, "remove": items})
well_formed = st.dictionaries(st.sampled_from(FIELDS), st.one_of(items, items, ops), max_size=7)
hostile = st.one_of(
    st.dictionaries(st.sampled_from([*FIELDS, "junk"]), json_values, max_size=8),
    json_values,
)
updates = st.one_of(well_formed, well_formed, well_formed, hostile)
caps_strategy = st.builds(
    StateConfig,
    token_budget=st.integers(400, 800),
    history_max=st.integers(1, 5),
    item_max_chars=st.integers(16, 300),
    list_max_items=st.one_of(st.integers(1, 4), st.integers(1, 10)),
)
# A first update that fills lists, so later ones meet full lists (eviction, refusal).
prefills = st.dictionaries(st.sampled_from(FIELDS), st.lists(pool, min_size=3, max_size=10))


def assert_within_caps(state: State, caps: StateConfig) -> None:
    for name in (*LIST_FIELDS, "history"):
        values: list[str] = getattr(state, name)
        limit = caps.history_max if name == "history" else caps.list_max_items
        assert len(values) <= limit, name
        assert len({dedupe_key(v) for v in values}) == len(values), name
        for v in values:
            assert 0 < len(v) <= caps.item_max_chars
            assert "\n" not in v and v == v.strip()
    assert len(state.next_focus) <= caps.item_max_chars
    assert "\n" not in state.next_focus


def run_merges(caps: StateConfig, sequence: list[Any]) -> State:
    state = State()
    for update in sequence:
        state = merge(state, update, caps).state
    return state


class TestMergeProperties:
    @SETTINGS
    @given(caps=caps_strategy, prefill=prefills, sequence=st.lists(updates, max_size=8))
    def test_caps_hold_after_any_sequence(
        self, caps: StateConfig, prefill: dict[str, Any], sequence: list[Any]
    ) -> None:
        """Every list, item and history stays within its cap, whatever the updates."""
        state = run_merges(caps, [prefill, *sequence])
        assert_within_caps(state, caps)
        assert decode_state(encode_state(state)) == state

    @SETTINGS
    @given(caps=caps_strategy, prefill=prefills, sequence=st.lists(updates, max_size=4),
           update=updates)
    # Known hard cases: refreshing an item of a full list while adding a new one.
    @example(caps=StateConfig(list_max_items=2), prefill={"decisions": ["a", "c"]}, sequence=[],
             update={"decisions": ["A", "b"]})
    @example(caps=StateConfig(), prefill={"history": ["a", "b", "c"]}, sequence=[],
             update={"history": ["a", "d"]})
    @example(caps=StateConfig(list_max_items=2), prefill={"goals": ["a", "c"]}, sequence=[],
             update={"goals": {"remove": "c", "add": ["c", "b", "e"]}})
    @example(caps=StateConfig(list_max_items=2), prefill={}, sequence=[],
             update={"goals": {"add": ["a", "b"], "remove": ["a"]}})
    @example(caps=StateConfig(), prefill={"decisions": ["a", "b"]}, sequence=[],
             update={"decisions": {"add": ["a"], "remove": ["a"]}})
    def test_merge_is_idempotent(
        self, caps: StateConfig, prefill: dict[str, Any], sequence: list[Any], update: Any
    ) -> None:
        """Applying the same update twice gives the state that applying it once gives."""
        state = run_merges(caps, [prefill, *sequence])
        once = merge(state, update, caps)
        twice = merge(once.state, update, caps)
        assert twice.state == once.state
        assert not twice.changed
        assert twice.evicted == []

    @SETTINGS
    @given(caps=caps_strategy, sequence=st.lists(updates, max_size=6))
    def test_render_is_deterministic(self, caps: StateConfig, sequence: list[Any]) -> None:
        """Equal states render to identical text, also after a trip through the store format."""
        state = run_merges(caps, sequence)
        copy = decode_state(encode_state(state))
        text = render(state)
        assert render(copy) == text == render(state)
        assert text.startswith("<state>\n") and text.endswith("\n</state>")
        assert text.count("</state>") == 1 and text.count("<state>") == 1


class TestBudgetProperties:
    @SETTINGS
    @given(caps=caps_strategy, sequence=st.lists(updates, max_size=8),
           fill=st.integers(0, 3))
    def test_budget_holds_after_any_sequence(
        self, caps: StateConfig, sequence: list[Any], fill: int
    ) -> None:
        """The folded block fits the budget, is what was counted, and stays within the caps."""
        big = "w" * caps.item_max_chars
        filler = {name: [f"{i} {big}" for i in range(caps.list_max_items)]
                  for name in FIELDS[: fill * 2]}
        state = run_merges(caps, [filler, *sequence])
        result = asyncio.run(fit_budget(state, EstimateCounter(), caps.token_budget, caps=caps))
        assert result.fits
        assert result.tokens == EstimateCounter().count_sync(result.rendered) <= caps.token_budget
        assert result.rendered == render(result.state)
        assert result.counter_name == "estimate"
        assert_within_caps(result.state, caps)
        assert bool(result.dropped) == (result.state != state)
