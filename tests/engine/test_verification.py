"""What the engine calls verified, on real corpus tasks: the reference replay verifies every
writing step and every submit; a model that only ever submits verifies nothing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentd.config import Settings, load_settings
from agentd.datasets import write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.records import Task, TrajectoryRecord
from agentd.testing.fake_vllm import FakeVLLM
from agentd.testing.tasks import SUBMIT_OUTPUT
from agentd.trajectories import iter_records

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from verify.recipe_tasks import fixture_tasks

MODEL = "qwen3-14b-awq"


def real_tasks() -> list[Task]:
    """A spread of real corpus tasks: multi-step, rename and single-recipe ones."""
    tasks = fixture_tasks()
    picked = ["multi:2", "multi:3", "rename-function", *sorted(tasks)[:7]]
    return [tasks[k] for k in dict.fromkeys(picked)]


def write_dev(settings: Settings, tasks: list[Task]) -> None:
    path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tasks(path, tasks)


def run_records(summary: dict[str, Any]) -> list[TrajectoryRecord]:
    out = [r for _, _, r in iter_records([Path(summary["trajectories"])])]
    assert not any(isinstance(r, Exception) for r in out)
    return [r for r in out if isinstance(r, TrajectoryRecord)]


@pytest.fixture
def submitter() -> Iterator[FakeVLLM]:
    with FakeVLLM(model=MODEL) as fake:
        fake.reply_with(lambda body: SUBMIT_OUTPUT)
        yield fake


def with_actor(tmp_project: Path, fake: FakeVLLM) -> Settings:
    actors = {"actors": [{"name": "fake", "port": fake.port, "max_concurrent_requests": 4}],
              "client": {"timeout_s": 5, "max_retries": 1, "backoff_base_s": 0.01,
                         "backoff_max_s": 0.05},
              "sampling": {"max_tokens": 256, "seed": 7}}
    (tmp_project / "configs" / "vllm_actors.yaml").write_text(yaml.safe_dump(actors))
    return load_settings(tmp_project / "configs" / "agentd.yaml")


class TestVerifiedMeansHelped:
    async def test_reference_replay_verifies_every_step(self, settings: Settings) -> None:
        """Every reference writing step moves toward the gold (multi-step tasks included),
        every submit lands on an accepted state, and the verdict is in the record."""
        tasks = real_tasks()
        write_dev(settings, tasks)
        summary = await run_foreground(settings, RunOptions("dev", "reference", None, 1,
                                                            "ref", False))
        records = run_records(summary)
        writes = [r for r in records if r.reward.step_kind == "write"]
        assert len(writes) == sum(len(t.reference_actions) for t in tasks)
        assert all(r.verified for r in writes), [
            (r.task_id, r.step, r.reward) for r in writes if not r.verified]
        finals = [r for r in records if r.done]
        assert len(finals) == len(tasks)
        assert all(r.reward.step_kind == "submit" and r.verified and r.verdict is not None
                   and r.verdict.accepted for r in finals)

    async def test_always_submit_verifies_nothing(self, tmp_project: Path,
                                                  submitter: FakeVLLM) -> None:
        """A model that submits the untouched workspace at once gets no verified step and no
        accepted episode: its verdict says the rule still matches."""
        settings = with_actor(tmp_project, submitter)
        write_dev(settings, real_tasks())
        summary = await run_foreground(settings, RunOptions("dev", "actor", None, 1,
                                                            "submit", False))
        records = run_records(summary)
        assert records and summary["verified_steps"] == 0
        assert not any(r.verified or r.reward.final_match for r in records)
        assert all(r.verdict is not None and r.verdict.decided_by == "rule_remaining"
                   for r in records if r.done)
