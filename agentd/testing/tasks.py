"""Small real tasks for tests and benchmarks: one file, an `== None` comparison, its fix."""

from __future__ import annotations

from typing import Any

from agentd.records import AstGrepRun, Task, TaskMeta

BEFORE = "def f(x):\n    if x == None:\n        return 1\n    return 2\n"
GOLD = "def f(x):\n    if x is None:\n        return 1\n    return 2\n"


def make_task(n: int, split: str = "dev", *, max_steps: int = 4) -> Task:
    """Task ``n``: its reference action rewrites ``== None`` to ``is None`` in one file."""
    path = f"pkg{n}/mod.py"
    return Task(
        task_id=f"task{n:04d}", split=split, language="python",
        instruction="Compare with None using `is`, not `==`.",
        files={path: BEFORE}, gold={path: GOLD},
        reference_actions=[AstGrepRun(pattern="$A == None", rewrite="$A is None", lang="python",
                                      paths=[path])],
        meta=TaskMeta(dataset="test", source_path=path, recipe="eq-none", license="MIT",
                      source_sha256="0" * 64),
        max_steps=max_steps)


# What a competent model writes for these tasks, for fake servers in tests.
REWRITE_OUTPUT = (
    '<think>Rewrite the comparison.</think>\n<action>{"tool": "ast_grep_run", '
    '"pattern": "$A == None", "rewrite": "$A is None", "lang": "python"}</action>\n'
    '<state_update>{"decisions": ["rewrite == None"]}</state_update>')
SUBMIT_OUTPUT = ('<think>Done.</think>\n<action>{"tool": "submit"}</action>\n'
                 '<state_update>{}</state_update>')


def solve(body: dict[str, Any]) -> str:
    """A fake-server reply: rewrite on the first step of a task, submit afterwards."""
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    return REWRITE_OUTPUT if "Step 1 of" in prompt else SUBMIT_OUTPUT


def empty_task(task_id: str) -> Task:
    """A task with no files: LLM-client tests and benchmarks need one only to build a request."""
    return Task(task_id=task_id, split="dev", language="python", instruction="", files={},
                gold={}, reference_actions=[],
                meta=TaskMeta(dataset="d", source_path="a.py", recipe="r", license="MIT",
                              source_sha256="0"))
