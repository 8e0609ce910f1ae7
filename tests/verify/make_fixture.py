"""Regenerate ``data/recipe_tasks.jsonl.gz``: one real corpus task per recipe (the smallest),
one cross-file rename and the smallest two- and three-step tasks.

Run from the project root after ``agentd data build``:
``.venv/bin/python tests/verify/make_fixture.py``. The tests read the committed file, so
they do not depend on the corpus or on the Python version that built it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec

from agentd.records import Task

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "data" / "recipe_tasks.jsonl.gz"


def _kind(task: Task) -> str:
    recipe = task.meta.recipe
    if recipe.startswith("rename-function"):
        return "rename-function"
    return f"multi:{recipe.count('+') + 1}" if "+" in recipe else recipe


def main() -> None:
    decoder = msgspec.json.Decoder(Task)
    best: dict[str, tuple[int, str, bytes]] = {}
    for path in sorted((ROOT / "data" / "processed").glob("*/tasks.jsonl")):
        for line in path.open("rb"):
            task = decoder.decode(line)
            key, size = _kind(task), sum(map(len, task.files.values()))
            if key not in best or (size, task.task_id) < best[key][:2]:
                best[key] = (size, task.task_id, line.rstrip(b"\n"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(best[k][2] + b"\n" for k in sorted(best))
    OUT.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"{len(best)} tasks -> {OUT}")


if __name__ == "__main__":
    main()
