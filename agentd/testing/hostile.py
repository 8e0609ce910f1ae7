"""Hostile model outputs and actions at the size caps, shared by tests and benchmarks.

The tests check that each one is refused without raising; ``benchmarks/hostile_inputs.py``
measures how long that takes next to a well-formed input of the same size.
"""

from __future__ import annotations

from agentd.records import AstGrepRun

GOOD_OUTPUT = (
    '<think>rename print</think><action>{"tool":"ast_grep_run","pattern":"print($A)",'
    '"lang":"python","rewrite":"log($A)","paths":["a.py"]}</action>'
    '<state_update>{"goals":["rename print"]}</state_update>'
)


def pathological_outputs() -> list[str]:
    """Outputs built to make a naive parser backtrack, recurse or scan quadratically."""
    return [
        "<think>" + "<" * 60000,
        GOOD_OUTPUT.replace('"a.py"', '"' + "\\" * 30001 + '"'),
        GOOD_OUTPUT.replace("<action>", "<action>" + '{"a":"' * 9000),
        "<think></think><action>" + "{" * 60000 + "</action>",
        "<think></think><action>" + '"' * 60000 + "</action>",
        "<think>" + "</think>" * 8000,
    ]


def huge_run_actions(tail: str = "") -> tuple[AstGrepRun, AstGrepRun]:
    """Two 60 KB patterns, worst case for a quadratic matcher; ``tail`` changes only the end."""
    return (AstGrepRun(pattern="a b " * 15000 + tail, lang="python"),
            AstGrepRun(pattern="b a " * 15000, lang="python"))
