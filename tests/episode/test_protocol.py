"""The tagged output protocol: parse, render and the constrained-decoding regex."""

from __future__ import annotations

import re
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentd.episode.grammar import STATE_FIELDS, structured_output_regex
from agentd.episode.protocol import (
    MAX_JSON_DEPTH,
    MAX_RAW_BYTES,
    ParsedOutput,
    ParseError,
    encode_json,
    model_output,
    parse,
    render,
)
from agentd.records import (
    Action,
    AstGrepRule,
    AstGrepRun,
    AstGrepSearch,
    ReadFile,
    RunTests,
    Submit,
)
from agentd.testing.hostile import GOOD_OUTPUT, pathological_outputs

RUN = AstGrepRun(pattern="print($A)", lang="python", rewrite="log($A)", paths=["a.py"])
GOOD = GOOD_OUTPUT
PATHOLOGICAL = pathological_outputs()
GOOD_NL = GOOD.replace("</think>", "</think>\n").replace("</action>", "</action>\n")
REGEX = re.compile(structured_output_regex())

# ------------------------------------------------------------------ strategies

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
opt_text = st.none() | texts
paths = st.none() | st.lists(texts, max_size=4)
lines = st.none() | st.integers(min_value=1, max_value=10**6)
actions: st.SearchStrategy[Action] = st.one_of(
    st.builds(AstGrepRule, rule_yaml=texts, paths=paths),
    st.builds(AstGrepRun, pattern=texts, lang=texts, rewrite=opt_text, paths=paths),
    st.builds(AstGrepSearch, lang=texts, pattern=opt_text, rule_yaml=opt_text, paths=paths),
    st.builds(ReadFile, path=texts, start_line=lines, end_line=lines),
    st.just(RunTests()),
    st.just(Submit()),
)
text_lists = st.lists(texts, max_size=4)
state_values = (
    texts
    | text_lists
    | st.none()
    | st.fixed_dictionaries({}, optional={"add": text_lists, "remove": text_lists})
)
state_updates = st.dictionaries(st.sampled_from(STATE_FIELDS), state_values, max_size=4)
think_texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="<"),
    min_size=1,
    max_size=200,
).filter(lambda t: t.strip(" \t\r\n") != "")


def _kind(raw: str) -> str:
    result = parse(raw)
    assert isinstance(result, ParseError), result
    return result.kind


class TestParse:
    def test_well_formed(self) -> None:
        """A well-formed completion gives the think text, the typed action and the update."""
        result = parse(GOOD)
        assert result == ParsedOutput("rename print", RUN, {"goals": ["rename print"]})

    def test_whitespace_tolerated(self) -> None:
        """Whitespace around and between the blocks and inside them is ignored."""
        spaced = GOOD.replace("<think>", "\n\n  <think>\n ").replace("</think>", "\n</think>\n\t")
        spaced = spaced.replace("<action>", "<action>\n  ").replace("</action>", "\n</action>\n")
        spaced = spaced.replace("</state_update>", "\n</state_update>\n\n")
        assert parse(spaced) == parse(GOOD)

    def test_qwen_leading_newline(self) -> None:
        """A completion that starts with a newline (Qwen3 does) parses."""
        assert isinstance(parse("\n" + GOOD), ParsedOutput)

    def test_tag_inside_json_string_is_content(self) -> None:
        """A protocol tag inside a JSON string is content, not structure."""
        raw = GOOD.replace("log($A)", "</action><think>")
        result = parse(raw)
        assert isinstance(result, ParsedOutput)
        assert isinstance(result.action, AstGrepRun)
        assert result.action.rewrite == "</action><think>"

    def test_think_may_contain_angle_brackets(self) -> None:
        """Think text may mention code with '<' as long as it holds no protocol tag."""
        result = parse(GOOD.replace("rename print", "if a < b: List<int>"))
        assert isinstance(result, ParsedOutput)
        assert result.think == "if a < b: List<int>"

    def test_other_key_order_accepted(self) -> None:
        """The parser accepts any JSON key order, not only the rendered one."""
        raw = GOOD.replace(
            '{"tool":"ast_grep_run","pattern":"print($A)","lang":"python"',
            '{"lang":"python","pattern":"print($A)","tool":"ast_grep_run"',
        )
        assert parse(raw) == parse(GOOD)


class TestParseErrors:
    @pytest.mark.parametrize(
        ("raw", "kind"),
        [
            ("", "empty"),
            ("  \n\t", "empty"),
            (GOOD.replace("<think>rename print</think>", ""), "missing_tag"),
            (GOOD.replace("</think>", ""), "missing_tag"),
            (GOOD.split("<action>", maxsplit=1)[0] + GOOD.split("</action>")[1], "missing_tag"),
            (GOOD.replace("</action>", ""), "missing_tag"),
            (GOOD.replace("</state_update>", ""), "missing_tag"),
            (GOOD.split("<state_update>", maxsplit=1)[0], "missing_tag"),
            ("Sure! Here it is:\n" + GOOD, "stray_text"),
            (GOOD + "\nHope this helps.", "stray_text"),
            (GOOD.replace("</think>", "</think>then "), "stray_text"),
            (GOOD.replace("}</action>", "} {}</action>"), "stray_text"),
            (GOOD + GOOD, "duplicate_tag"),
            (GOOD.replace("<state_update>", '<action>{"tool":"submit"}</action><state_update>'),
             "duplicate_tag"),
            (GOOD.replace("rename print", "a <think> b"), "duplicate_tag"),
            (GOOD.replace("rename print", "x <action> y"), "tag_order"),
            (
                "<think>x</think><state_update>{}</state_update>"
                '<action>{"tool":"submit"}</action>',
                "tag_order",
            ),
            (GOOD.replace('<action>{"tool', '<action>```json\n{"tool').replace(
                ']}</action>', ']}\n```</action>'), "action_json"),
            (GOOD.replace('<action>{', '<action>[{').replace("]}</action>", "]}]</action>"),
             "action_json"),
            (GOOD.replace('"lang":"python",', '"lang":python,'), "action_json"),
            (GOOD.replace(']}</action>', ']</action>'), "action_json"),
            (GOOD.replace('"ast_grep_run"', '"rm_rf"'), "action_schema"),
            (GOOD.replace('"lang":"python",', ""), "action_schema"),
            (GOOD.replace('"lang":"python",', '"lang":"python","shell":true,'), "action_schema"),
            (GOOD.replace('"tool":"ast_grep_run",', ""), "action_schema"),
            (GOOD.replace('"paths":["a.py"]', '"paths":"a.py"'), "action_schema"),
            (GOOD.replace('{"goals":["rename print"]}', '["rename print"]'), "state_json"),
            (GOOD.replace('{"goals":["rename print"]}', '{"goals":}'), "state_json"),
            (GOOD.replace('{"goals":["rename print"]}', "{'goals': []}"), "state_json"),
        ],
    )
    def test_malformed_shapes(self, raw: str, kind: str) -> None:
        """Each malformed shape is reported with its own error kind."""
        assert _kind(raw) == kind

    def test_reason_is_short_feedback(self) -> None:
        """Reasons are one short sentence the model can act on; feedback adds the format."""
        error = parse(GOOD.replace('"lang":"python",', ""))
        assert isinstance(error, ParseError)
        assert "lang" in error.reason
        assert len(error.reason) < 200
        assert "<state_update>" in error.feedback()

    def test_huge_input_rejected_before_decoding(self) -> None:
        """A completion over the byte cap is rejected whatever its shape."""
        assert _kind(GOOD.replace("rename print", "x" * MAX_RAW_BYTES)) == "too_large"
        assert _kind("é" * (MAX_RAW_BYTES // 2 + 1)) == "too_large"

    def test_deep_json_rejected(self) -> None:
        """JSON nested deeper than the bound is refused in either block."""
        deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
        assert _kind(GOOD.replace('"goals":["rename print"]', f'"goals":{deep}')) == "too_deep"
        assert _kind(GOOD.replace('"paths":["a.py"]', f'"paths":{deep}')) == "too_deep"

    def test_depth_within_bound_accepted(self) -> None:
        """Nesting up to the bound is left to the state package to judge."""
        ok = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
        result = parse(GOOD.replace('"goals":["rename print"]', f'"goals":{ok}'))
        assert isinstance(result, ParsedOutput)

    @pytest.mark.parametrize("raw", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
    def test_pathological_inputs_are_parse_errors(self, raw: str) -> None:
        """Adversarial inputs at the size cap are parse errors and never raise.

        How fast they fail is measured in benchmarks/hostile_inputs.py, not here.
        """
        assert isinstance(parse(raw), ParseError)


class TestRender:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(think=think_texts, action=actions, update=state_updates)
    def test_round_trip(self, think: str, action: Action, update: dict[str, Any]) -> None:
        """parse(render(t, a, s)) gives back the stripped think, the action and the update."""
        parsed = parse(render(think, action, update))
        assert parsed == ParsedOutput(think.strip(" \t\r\n"), action, update)

    def test_tags_in_values_escaped(self) -> None:
        """Rendered JSON never contains a protocol tag literally."""
        text = encode_json(AstGrepRun(pattern="</action>", lang="<think>"))
        assert "</action>" not in text
        assert "<think>" not in text

    def test_tag_in_think_is_a_bug(self) -> None:
        """Our own think text with a protocol tag is refused loudly."""
        with pytest.raises(ValueError, match="tags"):
            render("a </think> b", Submit(), {})

    def test_model_output(self) -> None:
        """model_output fills the record from a parse, and keeps only raw on failure."""
        ok = model_output(GOOD, parse(GOOD))
        assert (ok.think, ok.action) == ("rename print", RUN)
        assert ok.state_update == {"goals": ["rename print"]}
        bad = model_output("junk", parse("junk"))
        assert (bad.raw, bad.action) == ("junk", None)


class TestRegex:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(think=think_texts, action=actions, update=state_updates)
    def test_rendered_outputs_match(
        self, think: str, action: Action, update: dict[str, Any]
    ) -> None:
        """Every rendered output (bounded think, few paths) matches the regex."""
        assert REGEX.fullmatch(render(think, action, update))

    @settings(max_examples=300)
    @given(raw=st.text(alphabet=string.printable, max_size=300))
    def test_random_strings_do_not_match(self, raw: str) -> None:
        """Random text neither matches the regex nor parses."""
        assert not REGEX.fullmatch(raw)
        assert isinstance(parse(raw), ParseError)

    @pytest.mark.parametrize(
        "raw",
        [
            GOOD_NL,
            GOOD_NL.replace("rename print", "a < b and b <= c"),  # models reason about `<`
            "<think>\nx\n</think>\n<action>{\"tool\": \"submit\"}</action>\n"
            "<state_update>{}</state_update>",
            "<think>r</think>\n<action>{\"tool\":\"read_file\",\"path\":\"a\\u00e9.py\","
            "\"start_line\":3}</action>\n<state_update>{\"history\": [\"x\", \"y\"],"
            " \"next_focus\": \"z\"}</state_update>",
        ],
    )
    def test_matching_outputs_parse(self, raw: str) -> None:
        """Hand-written outputs that match the regex parse."""
        assert REGEX.fullmatch(raw)
        assert isinstance(parse(raw), ParsedOutput)

    @pytest.mark.parametrize(
        "raw",
        [
            GOOD,  # no newline between blocks
            GOOD_NL.replace('"ast_grep_run"', '"rm_rf"'),
            GOOD_NL.replace('"lang":"python",', '"lang":"python","shell":"x",'),
            GOOD_NL.replace("</think>", " <state_update> </think>", 1),  # a tag inside think
            GOOD_NL.replace("</think>", " x </y </think>", 1),
            GOOD_NL.replace('"goals"', '"secrets"'),
            GOOD_NL.replace('["rename print"]', '{"deep": "x"}'),
            GOOD_NL.replace('"a.py"', '"a\nb"'),
            "\n" + GOOD_NL,
        ],
    )
    def test_off_shape_outputs_rejected(self, raw: str) -> None:
        """Outputs off the constrained shape do not match."""
        assert not REGEX.fullmatch(raw)

    def test_think_is_bounded_only_when_asked(self) -> None:
        """The engine's regex takes any length of thinking (a bound costs decoding speed);
        a caller's ``think_max_chars`` bounds it."""
        assert REGEX.fullmatch(render("x" * 5000, Submit(), {}))
        bounded = re.compile(structured_output_regex(think_max_chars=2000))
        assert bounded.fullmatch(render("x" * 1990, Submit(), {}))
        assert not bounded.fullmatch(render("x" * 2100, Submit(), {}))
