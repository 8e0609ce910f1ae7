"""The engine against a misbehaving LLM: a protocol-faithful fake vLLM on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from agentd.config import Settings, load_settings
from agentd.datasets import write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.testing.fake_vllm import FakeVLLM
from agentd.testing.tasks import REWRITE_OUTPUT, SUBMIT_OUTPUT, make_task, solve
from agentd.trajectories import iter_records
from agentd.trajectories.verify import verify_paths


@pytest.fixture
def fakes() -> Iterator[tuple[FakeVLLM, FakeVLLM]]:
    with FakeVLLM(model="qwen3-14b-awq") as a, FakeVLLM(model="qwen3-14b-awq") as b:
        a.reply_with(solve)
        b.reply_with(solve)
        yield a, b


def configure(tmp_project: Path, fakes: tuple[FakeVLLM, ...], *, tasks: int = 4,
              max_attempts: int = 2, episode_timeout_s: float = 1200,
              client_timeout_s: float = 3, llm_timeout_s: float = 10) -> Settings:
    actors = {
        "actors": [{"name": f"fake{i}", "port": f.port, "max_concurrent_requests": 4}
                   for i, f in enumerate(fakes)],
        "client": {"timeout_s": client_timeout_s, "connect_timeout_s": 1, "max_retries": 1,
                   "backoff_base_s": 0.01, "backoff_max_s": 0.05, "circuit_failures": 2,
                   "circuit_reset_s": 30, "health_interval_s": 0.5},
        "sampling": {"max_tokens": 256, "seed": 7},
    }
    (tmp_project / "configs" / "vllm_actors.yaml").write_text(yaml.safe_dump(actors))
    cfg = tmp_project / "configs" / "agentd.yaml"
    cfg.write_text(cfg.read_text().replace("max_attempts: 3", f"max_attempts: {max_attempts}")
                   .replace("llm_timeout_s: 120", f"llm_timeout_s: {llm_timeout_s}")
                   .replace("episode_timeout_s: 1200", f"episode_timeout_s: {episode_timeout_s}"))
    settings = load_settings(cfg)
    path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tasks(path, [make_task(i) for i in range(tasks)])
    return settings


def actor_run(run_id: str) -> RunOptions:
    return RunOptions("dev", "actor", None, 1, run_id, False)


def records(summary: dict[str, Any]) -> list[Any]:
    out = [r for _, _, r in iter_records([Path(summary["trajectories"])])]
    assert not any(isinstance(r, Exception) for r in out)
    return out


class TestActorFaults:
    async def test_healthy_actors_solve_every_task(self, tmp_project: Path,
                                                   fakes: tuple[FakeVLLM, FakeVLLM]) -> None:
        """With a competent fake model every episode is verified, with constrained decoding."""
        settings = configure(tmp_project, fakes)
        summary = await run_foreground(settings, actor_run("ok"))
        assert summary["episodes"]["done"] == 4 and summary["verified_steps"] == 8
        bodies = fakes[0].generation_bodies() + fakes[1].generation_bodies()
        assert all("structured_outputs" in b for b in bodies)
        assert not any(k.startswith("guided_") for b in bodies for k in b)
        # The state budget is counted with the actor's own tokenizer.
        assert any(r.path == "/tokenize" for r in fakes[0].requests + fakes[1].requests)
        assert all(r.policy.kind == "actor" and r.usage.completion_tokens > 0
                   for r in records(summary))

    async def test_actor_dying_mid_run_fails_over(self, tmp_project: Path,
                                                  fakes: tuple[FakeVLLM, FakeVLLM]) -> None:
        """When one actor refuses connections the pool routes to the other; nothing is lost."""
        settings = configure(tmp_project, fakes, tasks=6)
        fakes[0].refuse_connections()
        summary = await run_foreground(settings, actor_run("failover"))
        assert summary["episodes"]["done"] == 6 and summary["episodes"]["dead"] == 0
        assert {r.policy.endpoint for r in records(summary)} == {"fake1"}
        assert verify_paths([Path(summary["trajectories"])]).ok

    async def test_every_request_failing_ends_in_dead_letters(
            self, tmp_project: Path, fakes: tuple[FakeVLLM, FakeVLLM]) -> None:
        """If every request fails, episodes are retried, then dead with the reason; no crash."""
        settings = configure(tmp_project, fakes, tasks=2)
        for fake in fakes:
            fake.misbehave("status", status=500)
        summary = await run_foreground(settings, actor_run("allfail"))
        assert summary["episodes"]["dead"] == 2 and summary["steps"] == 0
        import aiosqlite

        async with aiosqlite.connect(settings.path(settings.agentd.paths.database)) as db:
            cur = await db.execute("SELECT attempts, last_error FROM queue WHERE run_id='allfail'")
            rows = list(await cur.fetchall())
        assert all(attempts == 2 and "Error" in error for attempts, error in rows)

    async def test_garbage_outputs_are_recorded_not_fatal(
            self, tmp_project: Path, fakes: tuple[FakeVLLM, FakeVLLM]) -> None:
        """Unparsable outputs become steps with a parse error until the step limit."""
        settings = configure(tmp_project, fakes, tasks=2)
        for fake in fakes:
            fake.reply_with(lambda _body: "I refuse to use tags {not json")
        summary = await run_foreground(settings, actor_run("garbage"))
        got = records(summary)
        assert summary["episodes"]["done"] == 2
        steps = min(make_task(0).max_steps, settings.agentd.episodes.max_steps)
        assert len(got) == 2 * steps  # every step used, none submitted
        assert all(r.parse_error and not r.reward.format_ok and r.reward.total == -1 for r in got)
        assert all(not r.verified for r in got)
        assert got[-1].done

    async def test_hanging_actor_times_out(self, tmp_project: Path,
                                           fakes: tuple[FakeVLLM, FakeVLLM]) -> None:
        """A hanging actor costs one timeout, then the other actor answers."""
        settings = configure(tmp_project, fakes, tasks=1)
        fakes[0].misbehave("hang", times=1)
        fakes[1].misbehave("hang", times=1)
        summary = await run_foreground(settings, actor_run("hang"))
        assert summary["episodes"]["done"] == 1

    async def test_an_episode_past_its_timeout_is_retried_then_dead(
            self, tmp_project: Path, fakes: tuple[FakeVLLM, FakeVLLM]) -> None:
        """episodes.episode_timeout_s cuts a lease off even while every request still waits
        within its own (far longer) timeout; the episode is retried, then dead with the
        reason."""
        settings = configure(tmp_project, fakes, tasks=1, episode_timeout_s=0.5,
                             client_timeout_s=60, llm_timeout_s=60)
        for fake in fakes:
            fake.misbehave("hang")  # never answers: only the episode's own limit can end it
        summary = await run_foreground(settings, actor_run("slow"))
        assert summary["episodes"]["dead"] == 1 and summary["steps"] == 0
        import aiosqlite

        async with aiosqlite.connect(settings.path(settings.agentd.paths.database)) as db:
            cur = await db.execute("SELECT attempts, last_error FROM queue WHERE run_id='slow'")
            rows = list(await cur.fetchall())
        assert [(a, "EpisodeTimeoutError" in e and "episode_timeout_s" in e) for a, e in rows] \
            == [(2, True)]


def test_record_round_trips(tmp_project: Path) -> None:
    """Sanity: the fixtures' scripted outputs are what the protocol accepts."""
    from agentd.episode import protocol

    for text in (REWRITE_OUTPUT, SUBMIT_OUTPUT):
        assert isinstance(protocol.parse(text), protocol.ParsedOutput)
    assert msgspec.json.decode(b"{}") == {}
