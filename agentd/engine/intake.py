"""Which tasks a ``submit`` queues: a split or a tasks file, filtered, read in chunks.

A split can hold tens of thousands of tasks of up to ~50 KB each, so they are streamed from
the file and queued a chunk at a time: memory stays flat however large the submission.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agentd.datasets import load_tasks
from agentd.records import Task

CHUNK = 256


@dataclass(frozen=True)
class Selection:
    """Where the tasks come from and which of them to take."""

    source: Path
    task_ids: frozenset[str] = frozenset()
    limit: int | None = None
    only: frozenset[str] | None = None  # difficulty routing: just these task ids

    def wants(self, task: Task) -> bool:
        if self.task_ids and task.task_id not in self.task_ids:
            return False
        return self.only is None or task.task_id in self.only


def chunks(selection: Selection, size: int = CHUNK) -> Iterator[list[Task]]:
    """The selected tasks in file order, ``size`` at a time, at most ``limit`` in all."""
    taken = 0
    chunk: list[Task] = []
    for task in load_tasks(selection.source):
        if selection.limit is not None and taken >= selection.limit:
            break
        if not selection.wants(task):
            continue
        chunk.append(task)
        taken += 1
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
