"""One real task per recipe for the verifier's tests.

Recipes with tasks in the corpus use the smallest one (``data/recipe_tasks.jsonl.gz``, made by
``make_fixture.py``); the recipes the standard library gives no task for get one built the way
``agentd data build`` builds tasks — the recipe's rule applied by the real ast-grep — from
their own rule-test cases, placed between two untouched statements.
"""

from __future__ import annotations

import ast
import gzip
import textwrap
from pathlib import Path

import msgspec
import yaml

from agentd.datasets.astgrep import apply_each
from agentd.datasets.recipes import RECIPES_DIR, Recipe, load_recipes
from agentd.records import AstGrepRule, Task, TaskMeta

FIXTURE = Path(__file__).resolve().parent / "data" / "recipe_tasks.jsonl.gz"
MODULE_PATH = "pkg/cases.py"


def fixture_tasks() -> dict[str, Task]:
    """Fixture tasks by kind: a recipe id, ``rename-function``, ``multi:2``, ``multi:3``."""
    decoder = msgspec.json.Decoder(Task)
    out: dict[str, Task] = {}
    for line in gzip.decompress(FIXTURE.read_bytes()).splitlines():
        task = decoder.decode(line)
        recipe = task.meta.recipe
        kind = "rename-function" if recipe.startswith("rename-function") else (
            f"multi:{recipe.count('+') + 1}" if "+" in recipe else recipe)
        out[kind] = task
    return out


def recipe_ids() -> list[str]:
    return [r.id for r in load_recipes()]


def _case_source(case: str, index: int) -> str:
    """A rule-test case as module code: at top level if it parses there, else in a def."""
    try:
        ast.parse(case)
        return case.rstrip("\n") + "\n"
    except SyntaxError:
        return f"def case_{index}():\n{textwrap.indent(case.rstrip(), '    ')}\n"


def _module(recipe: Recipe) -> str:
    doc = yaml.safe_load((RECIPES_DIR / "rule-tests" / f"{recipe.id}-test.yml").read_text())
    cases = [_case_source(c, i) for i, c in enumerate(doc.get("invalid") or [])]
    head = "import logging\nimport os\nimport unittest\n\nFIRST = 1\n\nSECOND = 2\n\n\n"
    return head + "\n\n".join(cases) + "\n\nTHIRD = 3\n\nFOURTH = 4\n"


async def built_task(recipe: Recipe) -> Task:
    """A task for ``recipe`` from its rule-test cases, gold computed by the real ast-grep."""
    before = {MODULE_PATH: _module(recipe)}
    [after] = await apply_each([(before, recipe.rule_yaml)], timeout_s=60)
    gold = {p: t for p, t in after.items() if before.get(p) != t}
    assert gold, f"{recipe.id}: its rule changes none of its own cases"
    ast.parse(gold[MODULE_PATH])
    return Task(task_id=f"rule-test-{recipe.id}", split="test", language="python",
                instruction=recipe.instruction(0), files=before, gold=gold,
                reference_actions=[AstGrepRule(rule_yaml=recipe.rule_yaml,
                                               paths=[MODULE_PATH])],
                meta=TaskMeta(dataset="rule-tests", source_path=MODULE_PATH,
                              recipe=recipe.id, license="MIT", source_sha256="0" * 64))


async def task_for(kind: str) -> Task:
    """The fixture task of ``kind``, or one built from the recipe's rule tests."""
    tasks = fixture_tasks()
    if kind in tasks:
        return tasks[kind]
    recipe = {r.id: r for r in load_recipes()}[kind]
    return await built_task(recipe)
