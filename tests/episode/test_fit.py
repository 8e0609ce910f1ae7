"""Windowed files and prompt fitting: pure functions, counted with a fake tokenizer."""

from __future__ import annotations

import re

import pytest

from agentd.config import PromptTemplates
from agentd.episode.fit import fit_prompt
from agentd.episode.grammar import structured_output_regex, think_budget
from agentd.episode.prompts import RenderedPrompt, render_prompt
from agentd.episode.windows import add_focus, files_block
from agentd.errors import PromptTooLongError
from agentd.records import Match, ReadFile
from agentd.testing.tasks import make_task

BIG = "".join(
    f"def f{i}(x):\n    return x == None\n" if i % 50 == 0 else f"value_{i} = {i}\n"
    for i in range(2000))
LINES = BIG.splitlines()
TASK = make_task(1)


def shown(n: int) -> str:
    """How line ``n`` (1-based) of BIG appears in a window."""
    return f"{n:>5}| {LINES[n - 1]}"
TEMPLATES = PromptTemplates(system="sys " * 50, task="{instruction}\n{files}", few_shot=1,
                            files_preview_chars=100_000)


async def words(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) for m in messages)


def renderer(files: dict[str, str]):  # type: ignore[no-untyped-def]
    task = TASK.__class__(**{**{f: getattr(TASK, f) for f in TASK.__struct_fields__},
                             "files": files})

    def render(chars: int, shots: bool) -> RenderedPrompt:
        return render_prompt(TEMPLATES, task, "<state/>", None, 0, files_chars=chars)
    return render


class TestWindows:
    def test_small_files_are_whole(self) -> None:
        """A file within the budget is shown whole, unnumbered."""
        block = files_block({"a.py": "x = 1\n"}, 1000)
        assert "=== a.py ===\nx = 1" in block

    def test_large_file_outline_and_focus_regions(self) -> None:
        """A large file shows its outline and numbered lines around the focus, within budget."""
        focus = add_focus({}, [Match(file="a.py", start_line=1001, end_line=1001, text="x")], None)
        block = files_block({"a.py": BIG}, 3000, focus=focus)
        assert f"windowed: {len(LINES)} lines" in block and "outline:" in block
        assert shown(1001) in block and shown(995) in block and "not shown" in block
        assert len(block) < 3400

    def test_quoted_fragments_are_focus(self) -> None:
        """Lines holding what the instruction quotes in backticks are shown first."""
        block = files_block({"a.py": BIG}, 1500, instruction="Replace `x == None`.")
        second = [i for i, line in enumerate(LINES, 1) if "x == None" in line][1]
        assert shown(second) in block
        assert shown(second) not in files_block({"a.py": BIG}, 1500)

    def test_reading_grows_the_window(self) -> None:
        """After read_file of a range, that whole range is shown."""
        focus = add_focus({}, [], ReadFile(path="a.py", start_line=1500, end_line=1540))
        block = files_block({"a.py": BIG}, 20_000, focus=focus)
        assert all(shown(n) in block for n in range(1500, 1541))


class TestFit:
    async def test_shrinks_files_until_prompt_and_reserve_fit(self) -> None:
        """The files budget shrinks until prompt tokens + max_tokens fit the context."""
        fitted = await fit_prompt(renderer({"a.py": BIG}), files_chars=100_000, context=2048,
                                  reserve=1024, count=words)
        assert fitted.tokens + 1024 <= 2048
        assert 0 < fitted.files_chars < 100_000
        assert "windowed" in fitted.prompt.text

    async def test_small_prompt_untouched(self) -> None:
        """A prompt that fits is rendered once, with everything."""
        fitted = await fit_prompt(renderer({"a.py": "x = 1\n"}), files_chars=4000,
                                  context=2048, reserve=1024, count=words)
        assert fitted.files_chars == 4000 and fitted.few_shot

    async def test_cannot_fit_is_prompt_too_long(self) -> None:
        """When even the bare prompt overflows, the error names the numbers."""
        with pytest.raises(PromptTooLongError, match="room for 24"):
            await fit_prompt(renderer({"a.py": BIG}), files_chars=4000, context=1048,
                             reserve=1024, count=words)


class TestGrammarBounds:
    def test_think_bound_follows_max_tokens(self) -> None:
        """Thinking may use at most half of max_tokens (in characters), within fixed bounds."""
        assert think_budget(1024) == 512
        assert think_budget(10) == 16 and think_budget(100_000) == 2000

    def test_the_engine_grammar_has_no_large_bounded_repeat(self) -> None:
        """vLLM's grammar backend expands {m,n} into n states: with n = 192 decoding ran ~10×
        slower (benchmarks/grammar_cost.py). Only the small bounds (paths, integers) remain;
        a caller that asks for a think bound gets it."""
        bounds = [int(n) for n in re.findall(r"\{\d+,(\d+)\}", structured_output_regex())]
        assert bounds and max(bounds) <= 16
        assert "{1,512}" in structured_output_regex(think_max_chars=think_budget(1024))

    def test_parsed_reasoning_grammar_has_no_think(self) -> None:
        """With vLLM's reasoning parser the grammar constrains only the answer."""
        regex = structured_output_regex(think=False)
        assert not regex.startswith("<think>") and regex.startswith("<action>")
