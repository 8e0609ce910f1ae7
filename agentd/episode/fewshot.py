"""Few-shot examples for teacher prompts, drawn from the train split's reference actions.

Splits are disjoint by source package, so an example never shows the answer of a dev or test
task; the examples are the first tasks of the train split (deterministic, so the prompt — and
its hash — is stable across a run). Different recipes are preferred so examples teach variety.
"""

from __future__ import annotations

from pathlib import Path

from agentd.episode.prompts import FewShotExample, few_shot_example
from agentd.records import Task

_SCAN_LIMIT = 2000  # tasks read at most while looking for distinct recipes


def pick_examples(tasks: list[Task], n: int) -> list[FewShotExample]:
    """Up to ``n`` examples from distinct recipes, in file order."""
    chosen: list[Task] = []
    recipes: set[str] = set()
    for task in tasks:
        if task.reference_actions and task.meta.recipe not in recipes:
            chosen.append(task)
            recipes.add(task.meta.recipe)
        if len(chosen) == n:
            break
    return [few_shot_example(t, think=f"Worked example ({t.meta.recipe}): the first step of "
                             "a verified expert solution.") for t in chosen]


def load_examples(train_tasks: Path, n: int) -> list[FewShotExample]:
    """Examples from a train ``tasks.jsonl``; none when it is missing or ``n`` is 0."""
    if n <= 0 or not train_tasks.exists():
        return []
    from agentd.datasets import load_tasks

    tasks: list[Task] = []
    for task in load_tasks(train_tasks):
        tasks.append(task)
        if len(tasks) >= _SCAN_LIMIT:
            break
    return pick_examples(tasks, n)
