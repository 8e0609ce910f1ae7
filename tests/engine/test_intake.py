"""Submissions are read from the tasks file in bounded chunks."""

from __future__ import annotations

from pathlib import Path

from agentd.datasets import write_tasks
from agentd.engine.intake import Selection, chunks
from agentd.testing.tasks import make_task


def _file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "tasks.jsonl"
    write_tasks(path, [make_task(i) for i in range(n)])
    return path


class TestChunks:
    def test_chunks_are_bounded_and_complete(self, tmp_path: Path) -> None:
        """1,000 tasks come out 256 at a time, all of them, in file order."""
        got = list(chunks(Selection(_file(tmp_path, 1000))))
        assert [len(c) for c in got] == [256, 256, 256, 232]
        assert [t.task_id for c in got for t in c] == [f"task{i:04d}" for i in range(1000)]

    def test_limit_and_ids_filter_before_counting(self, tmp_path: Path) -> None:
        """task_ids and the routing set filter first; limit counts only what is taken."""
        sel = Selection(_file(tmp_path, 50), task_ids=frozenset({"task0003", "task0007",
                                                                  "task0009"}),
                        limit=2, only=frozenset({"task0007", "task0009", "task0010"}))
        assert [t.task_id for c in chunks(sel) for t in c] == ["task0007", "task0009"]
