"""Whole runs against provider-faithful fakes: real engine, real sandbox, real HTTP, real SQLite.

The teacher runs use real dev tasks (the project's built corpus, built through the project's
own `agentd data build` when missing) and a scripted model that answers each step with the
task's reference action in the provider's own reasoning habit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentd.config import Settings
from agentd.engine.engine import Engine
from agentd.records import Task
from agentd.testing.fake_models import NATIVE, Habit, ReferenceModel
from agentd.testing.fake_vllm import FakeVLLM
from agentd.testing.runs import configure, dev_tasks, records, run, write_split
from agentd.testing.tasks import make_task

# dev_tasks builds the project's corpus (a few minutes) when `make corpus` has not: the
# stuck deadline has to cover that build too.
pytestmark = pytest.mark.timeout(900)

N_DEV = 50

# name: (fake flavour, profile, habit, API path)
TEACHERS: dict[str, tuple[str, str, Habit, str]] = {
    "minimax-in-content": ("minimax", "minimax-in-content", "native_and_protocol", "/v1"),
    "minimax-split": ("minimax", "minimax-m2", "native_and_protocol", "/v1"),
    "glm-4.6": ("glm", "glm-4.6", "native_and_protocol", "/api/paas/v4"),
    "qwen3-think-parsed": ("qwen3_parsed", "qwen3-think-parsed", "native", "/v1"),
    "qwen3-think": ("vllm", "qwen3-think", "native", "/v1"),
    "qwen3-nothink": ("vllm", "qwen3-nothink", "protocol", "/v1"),
}


@pytest.fixture
def teacher_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FAKE_TEACHER_KEY", "sk-test")
    yield "FAKE_TEACHER_KEY"


MINIMAX_IN_CONTENT = {"kind": "minimax", "reasoning": "in_content",
                      "extra_body": {"reasoning_split": False}, "errors": "minimax",
                      "max_tokens_field": "max_completion_tokens", "honours_seed": False,
                      "sampling": {"temperature": 1.0, "top_p": 0.95, "top_k": 40}}


def capped_glm(tmp_project: Path, fake: FakeVLLM, teacher_key: str,
               tasks: list[Task]) -> Settings:
    """A GLM teacher on ``fake`` under a cost cap that the first step reaches, one episode at
    a time, with ``tasks`` as the dev split."""
    settings = configure(
        tmp_project, budget={"max_cost_usd": 1e-9},
        teacher={"base_url": fake.base_url + "/api/paas/v4", "model": "t",
                 "api_key_env": teacher_key, "profile": "glm-4.6"})
    settings = settings.model_copy(update={"agentd": settings.agentd.model_copy(
        update={"episodes": settings.agentd.episodes.model_copy(update={"concurrency": 1})})})
    write_split(settings, tasks)
    return settings


class TestTeacherRuns:
    @pytest.mark.parametrize("name", sorted(TEACHERS))
    def test_fifty_dev_tasks_parse_and_keep_reasoning_apart(
        self, tmp_project: Path, teacher_key: str, name: str
    ) -> None:
        """≥ 98% of steps parse; each record keeps the native reasoning apart from the answer."""
        flavour, profile, habit, api = TEACHERS[name]
        tasks = dev_tasks(N_DEV)
        model = ReferenceModel(tasks, habit)
        with FakeVLLM(model="teacher-model", flavour=flavour, max_model_len=1 << 20) as fake:
            fake.reply_with(model)
            settings = configure(
                tmp_project, profiles={"minimax-in-content": MINIMAX_IN_CONTENT},
                teacher={"base_url": fake.base_url + api, "model": "teacher-model",
                         "api_key_env": teacher_key, "profile": profile})
            write_split(settings, tasks)
            summary = run(settings, f"run-{name}")
        steps = records(summary)
        parsed = [r for r in steps if r.parse_error is None]
        assert model.unknown == 0
        assert summary["tasks"] == N_DEV and len(steps) >= N_DEV
        assert len(parsed) / len(steps) >= 0.98, summary
        native = NATIVE if habit != "protocol" else ""
        for r in parsed:
            assert r.model_output.reasoning == native
            assert NATIVE not in r.model_output.raw and NATIVE not in r.model_output.think
            # vLLM honours seed; the hosted teachers drop it, so none is recorded for them.
            assert (r.policy.seed is not None) == (not flavour.startswith(("minimax", "glm")))
        assert sum(r.done and r.reward.final_match for r in steps) >= 0.9 * N_DEV


class TestBackpressureAndBudget:
    def test_429_with_retry_after_waits_and_finishes(self, tmp_project: Path,
                                                     teacher_key: str) -> None:
        """A fake answering 429 + Retry-After: 2 is waited out; the breaker never opens."""
        tasks = [make_task(i) for i in range(2)]
        with FakeVLLM(model="t", flavour="glm") as fake:
            fake.reply_with(ReferenceModel(tasks, "native_and_protocol"))
            # More 429s in a row than max_retries + circuit_failures: only waiting gets through.
            fake.misbehave("status", status=429, retry_after=2, times=6)
            settings = configure(
                tmp_project, client={"max_retries": 1, "circuit_failures": 2},
                teacher={"base_url": fake.base_url + "/api/paas/v4", "model": "t",
                         "api_key_env": teacher_key, "profile": "glm-4.6"})
            write_split(settings, tasks)
            engine_stats: list[dict[str, Any]] = []
            summary = run_with_stats(settings, "throttled", engine_stats)
        assert summary["episodes"]["done"] == 2 and summary["episodes"]["dead"] == 0
        endpoint = engine_stats[0]["endpoints"][0]
        assert endpoint["circuit_opened"] == 0 and endpoint["errors"]["throttled"] == 6

    def test_cost_cap_pauses_intake_and_status_says_why(self, tmp_project: Path,
                                                        teacher_key: str) -> None:
        """Once a run's cost reaches budget.max_cost_usd no new episode starts; status says so."""
        tasks = [make_task(i) for i in range(6)]
        with FakeVLLM(model="t", flavour="glm") as fake:
            fake.reply_with(ReferenceModel(tasks, "native_and_protocol"))
            settings = capped_glm(tmp_project, fake, teacher_key, tasks)
            status: list[dict[str, Any]] = []
            summary = run_with_stats(settings, "capped", [], status=status)
        # `ctl status` is Engine.status(): the reason and each run's spend against the caps.
        assert "budget.max_cost_usd" in status[0]["paused_reason"]
        assert status[0]["budget"]["runs"]["capped"]["cost_usd"] > 0
        assert summary["episodes"]["queued"] >= 4  # intake stopped at the cap

    def test_spend_survives_a_restart(self, tmp_project: Path, teacher_key: str) -> None:
        """The spend is durable: resuming a capped run goes on from what it spent before
        (both processes' steps), so a restart is no way around the cap."""
        tasks = [make_task(i) for i in range(6)]
        with FakeVLLM(model="t", flavour="glm") as fake:
            fake.reply_with(ReferenceModel(tasks, "native_and_protocol"))
            settings = capped_glm(tmp_project, fake, teacher_key, tasks)
            first: list[dict[str, Any]] = []
            run_with_stats(settings, "capped", [], status=first)
            second: list[dict[str, Any]] = []
            summary = run_with_stats(settings, "capped", [], status=second)
        spent = [s[0]["budget"]["runs"]["capped"]["cost_usd"] for s in (first, second)]
        costs = [r.usage.cost_usd for r in records(summary)]
        assert 0 < spent[0] < spent[1]
        # What the second process reports is every committed step of the run, its own and
        # the first process's (status rounds to a millionth of a dollar).
        assert spent[1] == pytest.approx(sum(costs), abs=1e-6)
        assert "budget.max_cost_usd" in second[0]["paused_reason"]
        assert summary["episodes"]["queued"] >= 2


def run_with_stats(settings: Settings, run_id: str, teacher_stats: list[dict[str, Any]],
                   *, status: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``run_foreground``, keeping the teacher's statistics and the final status."""
    import dataclasses

    original = Engine.close

    async def close(self: Engine) -> None:
        policy = self.policies.built("teacher")
        if policy is not None:
            teacher_stats.append(dataclasses.asdict(policy.statistics()))  # type: ignore[attr-defined]
        if status is not None:
            status.append(await self.status())
        await original(self)

    Engine.close = close  # type: ignore[method-assign]
    try:
        return run(settings, run_id)
    finally:
        Engine.close = original  # type: ignore[method-assign]
