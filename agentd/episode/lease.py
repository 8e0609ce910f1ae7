"""What the task queue hands an episode runner: one task × episode, and where it stands."""

from __future__ import annotations

from dataclasses import dataclass

from agentd.records import Task


@dataclass(frozen=True)
class Lease:
    """One episode handed to a worker."""

    run_id: str
    task_id: str
    episode: int
    policy: str
    split: str
    lease_id: str
    attempts: int
    next_step: int
    files: dict[str, str] | None  # the workspace after the last committed step (None: none yet)
    task: Task
    corpus_version: str = ""  # of the corpus the task came from, when it was submitted

    @property
    def group(self) -> str:
        return f"{self.task_id}:{self.episode}"
