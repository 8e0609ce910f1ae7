"""scripts/loop.py's task sets: held-out recipes never reach training or the seen-recipe test."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import msgspec

from agentd.datasets import load_tasks, write_tasks
from agentd.testing.tasks import make_task

ROOT = Path(__file__).resolve().parents[1]


def loop_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("loop", ROOT / "scripts" / "loop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_held_out_recipes_stay_out_of_training(tmp_path: Path) -> None:
    loop = loop_module()
    recipes = ["a", "b", "a+h", "h", "b+c", "c"]
    processed = tmp_path / "processed"
    for split, offset in (("train", 0), ("test", 100)):
        tasks = [make_task(offset + i, split) for i in range(60)]
        tasks = [msgspec.structs.replace(t, meta=msgspec.structs.replace(
            t.meta, recipe=recipes[i % len(recipes)])) for i, t in enumerate(tasks)]
        write_tasks(processed / split / "tasks.jsonl", tasks)
    args = loop.parse_args(["--train-tasks", "25", "--test-tasks", "12",
                            "--heldout-tasks", "50"])
    out = tmp_path / "loop"
    loop.make_sets(args, {"h"}, processed, out)
    sets = {name: list(load_tasks(out / split / "tasks.jsonl"))
            for name, split in (("train", "train"), ("test", "test"), ("heldout", "dev"))}
    assert [len(sets[n]) for n in ("train", "test")] == [25, 12]
    assert len(sets["heldout"]) == 20  # every test task built by h, fewer than asked
    for name in ("train", "test"):
        assert all("h" not in t.meta.recipe.split("+") for t in sets[name])
    assert all("h" in t.meta.recipe.split("+") for t in sets["heldout"])
    assert {t.split for t in sets["heldout"]} == {"test"}
    again = tmp_path / "again"
    loop.make_sets(args, {"h"}, processed, again)  # the seed decides: the same sets again
    assert (again / "train" / "tasks.jsonl").read_bytes() == (
        out / "train" / "tasks.jsonl").read_bytes()
