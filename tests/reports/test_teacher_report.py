"""The teacher loop with two fake teachers, and the report's per-teacher precision."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentd.config import Settings, load_settings
from agentd.datasets import write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.engine.results import Results
from agentd.engine.submission import parse_submit
from agentd.reports.metrics import collect
from agentd.reports.teacher import build_report
from agentd.testing.fake_vllm import FakeVLLM
from agentd.testing.tasks import make_task, solve
from agentd.trajectories import iter_records


def sloppy() -> Any:
    """Every other answer is prose instead of the protocol."""
    turn = itertools.count()
    return lambda body: solve(body) if next(turn) % 2 else "Sure! Here is my answer: rewrite it."


def configure(tmp_project: Path, primary: FakeVLLM, fallback: FakeVLLM,
              monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FAKE_PRIMARY_KEY", "sk-test-primary")
    monkeypatch.setenv("FAKE_FALLBACK_KEY", "sk-test-fallback")
    teachers = {
        "client": {"timeout_s": 3, "connect_timeout_s": 1, "max_retries": 0,
                   "circuit_failures": 50},
        "teachers": {
            "primary": {"name": "minimax-m2", "base_url": f"{primary.base_url}/v1",
                        "model": "MiniMax-M2", "api_key_env": "FAKE_PRIMARY_KEY",
                        "price_prompt_per_m": 0.3, "price_completion_per_m": 1.2},
            "fallback": {"name": "glm-4.6", "base_url": f"{fallback.base_url}/v1",
                         "model": "glm-4.6", "api_key_env": "FAKE_FALLBACK_KEY",
                         "price_prompt_per_m": 0.6, "price_completion_per_m": 2.2},
        },
    }
    (tmp_project / "configs" / "vllm_actors.yaml").write_text(yaml.safe_dump(teachers))
    settings = load_settings(tmp_project / "configs" / "agentd.yaml")
    processed = settings.path(settings.agentd.paths.processed_data)
    for split, n in (("train", 3), ("dev", 6)):
        (processed / split).mkdir(parents=True, exist_ok=True)
        write_tasks(processed / split / "tasks.jsonl", [make_task(100 * (split == "train") + i,
                                                                 split) for i in range(n)])
    return settings


class TestTeacherLoop:
    async def test_two_teachers_precision_and_fallback(
            self, tmp_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A sloppy primary and a good fallback: verified trajectories, fallback visible in the
        records, and the report's precision per teacher equals the records' own counts."""
        with FakeVLLM(model="MiniMax-M2") as primary, FakeVLLM(model="glm-4.6") as fallback:
            primary.reply_with(sloppy())
            fallback.reply_with(solve)
            primary.misbehave("status", status=503, times=3)  # the first answers fall back
            settings = configure(tmp_project, primary, fallback, monkeypatch)
            summary = await run_foreground(settings, RunOptions("dev", "teacher", None, 1,
                                                                "t1", False))
            keys_seen = {r.headers.get("authorization") for r in primary.requests}
        records = [r for _, _, r in iter_records([Path(summary["trajectories"])])]
        assert summary["episodes"]["done"] == 6 and summary["verified_steps"] > 0
        by_teacher: dict[str, list[Any]] = {}
        for r in records:
            assert not isinstance(r, Exception)
            by_teacher.setdefault(r.policy.endpoint, []).append(r)
        assert set(by_teacher) == {"minimax-m2", "glm-4.6"}  # fallback visible per record
        assert "Bearer sk-test-primary" in keys_seen
        assert all(r.usage.cost_usd > 0 for r in records)
        data = collect([Path(summary["trajectories"])])
        for name, rs in by_teacher.items():
            group = data.groups[f"teacher/{name}"]
            assert group.steps == len(rs)
            writes = [r for r in rs if r.reward.step_kind == "write"]
            assert writes
            assert group.precision == pytest.approx(sum(r.verified for r in writes)
                                                    / len(writes))
        assert any(r.reward.step_kind == "submit" for r in records)  # not writing steps
        assert data.groups["teacher/glm-4.6"].precision == 1.0
        assert data.groups["teacher/minimax-m2"].precision < 1.0

        out, steps, verified = await build_report(settings, "t1")
        text = out.read_text()
        row = next(line for line in text.splitlines() if line.startswith("| teacher/minimax-m2"))
        precision = float(row.split("|")[5])
        assert precision == pytest.approx(data.groups["teacher/minimax-m2"].precision, abs=1e-3)
        assert steps == len(records) and verified == sum(r.verified for r in records)
        for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
            assert (out.parent / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    async def test_teacher_prompt_has_few_shot_from_train(
            self, tmp_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Teacher prompts carry worked examples drawn from the train split only."""
        with FakeVLLM(model="MiniMax-M2") as primary, FakeVLLM(model="glm-4.6") as fallback:
            primary.reply_with(solve)
            settings = configure(tmp_project, primary, fallback, monkeypatch)
            await run_foreground(settings, RunOptions("dev", "teacher", 1, 1, "t2", False))
            body = primary.generation_bodies()[0]
        prompt = " ".join(m["content"] for m in body["messages"])
        assert "pkg100/mod.py" in prompt  # a train task's file, shown as an example
        assert "structured_outputs" not in body  # teachers are hosted APIs: no vLLM fields


class TestRouting:
    async def test_difficulty_routing_sends_only_actor_failures(
            self, tmp_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """route=actor_failed keeps only tasks the actor failed k times; the report says so."""
        from agentd.engine.engine import Engine

        with FakeVLLM(model="MiniMax-M2") as primary, FakeVLLM(model="glm-4.6") as fallback:
            settings = configure(tmp_project, primary, fallback, monkeypatch)
            engine = Engine(settings)
            await engine.open()
            try:
                assert engine.queue is not None and engine.db is not None
                results = Results(engine.db)
                await engine.queue.submit("a1", [make_task(i) for i in range(3)], episodes=2,
                                          policy="actor")
                leases = await engine.queue.lease(6)
                async with engine.db.transaction() as db:
                    for lease in leases:
                        await results.record_result_in(
                            db, lease, final_match=lease.task_id == "task0000", steps=2)
                routed = await engine.submit(parse_submit(settings, {
                    "split": "dev", "policy": "teacher", "route": "actor_failed",
                    "min_failures": 2, "run_id": "t3"}))
            finally:
                await engine.close()
        assert routed.tasks == 2
        out, _, _ = await build_report(settings, None)
        assert "| t3 | teacher | actor_failed | 2 | 2 |" in out.read_text()
