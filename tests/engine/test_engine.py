"""The engine end to end on real tasks: real bwrap + ast-grep, real SQLite, real shards."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentd.config import Settings
from agentd.datasets import write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.episode import runner
from agentd.state import SqliteStateStore
from agentd.testing.tasks import make_task
from agentd.trajectories import iter_records
from agentd.trajectories.verify import verify_paths


def write_split(settings: Settings, n: int, split: str = "dev") -> Path:
    path = settings.path(settings.agentd.paths.processed_data) / split / "tasks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tasks(path, [make_task(i, split) for i in range(n)])
    return path


def options(run_id: str, *, limit: int | None = None, episodes: int = 1) -> RunOptions:
    return RunOptions(split="dev", policy="reference", limit=limit, episodes=episodes,
                      run_id=run_id, progress=False)


class TestReferenceRun:
    async def test_every_episode_is_recorded_and_verified(self, settings: Settings) -> None:
        """The reference policy solves every task; each step is recorded once and verified."""
        write_split(settings, 6)
        summary = await run_foreground(settings, options("r1", episodes=2))
        assert summary["episodes"]["done"] == 12 and summary["episodes"]["dead"] == 0
        run_dir = Path(summary["trajectories"])
        report = verify_paths([run_dir])
        assert report.ok, report.summary()
        records = [r for _, _, r in iter_records([run_dir])]
        assert len(records) == 24  # one rewrite + one submit per episode
        assert all(not isinstance(r, Exception) and r.verified for r in records)
        finals = [r for r in records if not isinstance(r, Exception) and r.done]
        assert len(finals) == 12 and all(r.reward.final_match for r in finals)

    async def test_state_is_saved_per_episode(self, settings: Settings) -> None:
        """After a run each episode's state row loads, holds the goal and has a version."""
        write_split(settings, 2)
        await run_foreground(settings, options("r2"))
        store = await SqliteStateStore.open(settings.path(settings.agentd.paths.database),
                                      settings.agentd.state)
        try:
            stored = await store.load("r2", "task0000", 0)
        finally:
            await store.close()
        assert stored.version == 2
        assert stored.state.goals and len(stored.state.history) == 2

    async def test_merge_and_budget_run_once_per_step(self, settings: Settings,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        """A fresh episode merges and fits its state once per step, the first step too."""
        calls: Counter[str] = Counter()

        def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                calls[name] += 1
                return real(*args, **kwargs)
            return call

        monkeypatch.setattr(runner, "merge", counting("merge", runner.merge))
        monkeypatch.setattr(runner, "fit_budget", counting("fit", runner.fit_budget))
        write_split(settings, 3)
        summary = await run_foreground(settings, options("once"))
        assert summary["steps"] == 6
        assert calls == {"merge": 6, "fit": 6}

    async def test_rerun_of_a_finished_run_adds_nothing(self, settings: Settings) -> None:
        """Running the same run id again is a no-op: nothing is written twice."""
        write_split(settings, 3)
        first = await run_foreground(settings, options("r3"))
        again = await run_foreground(settings, options("r3"))
        assert first["steps"] == 6 and again["steps"] == 0
        assert verify_paths([Path(first["trajectories"])]).ok

    async def test_limit_caps_tasks(self, settings: Settings) -> None:
        """--limit takes at most N tasks of the split."""
        write_split(settings, 5)
        summary = await run_foreground(settings, options("r4", limit=2))
        assert summary["tasks"] == 2 and summary["steps"] == 4


@pytest.mark.parametrize("policy", ["nonsense"])
async def test_unknown_policy_is_a_usage_error(settings: Settings, policy: str) -> None:
    """An unknown policy name is refused before anything is queued."""
    write_split(settings, 1)
    from agentd.errors import UsageError

    with pytest.raises(UsageError, match="unknown policy"):
        await run_foreground(settings, RunOptions("dev", policy, None, 1, "r5", False))


def test_cli_resume_of_finished_run_exits_0(settings: Settings) -> None:
    """`agentd run --run-id` of a run that is already complete succeeds without new steps."""
    import subprocess
    import sys

    write_split(settings, 2)
    argv = [sys.executable, "-m", "agentd", "run", "--config", str(settings.config_path),
            "--run-id", "again", "--no-progress"]
    first = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    second = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 episodes done" in second.stdout and "steps 0" in second.stdout


class TestFinalCheck:
    @pytest.mark.parametrize(("check", "passes"), [("'is None' in src", True),
                                                   ("'never there' in src", False)])
    async def test_tests_rerun_in_fresh_workspace(self, settings: Settings, check: str,
                                                  passes: bool) -> None:
        """At episode end a task's tests run on the final files in a fresh workspace; a
        failing test turns final_match off even though the files equal the gold."""
        from msgspec.structs import replace

        from agentd.records import TestSpec

        code = f"src = open('pkg0/mod.py').read(); assert {check}"
        task = replace(make_task(0), test_spec=TestSpec(argv=["python", "-c", code],
                                                        timeout_s=30))
        path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tasks(path, [task])
        summary = await run_foreground(settings, options(f"fc-{passes}"))
        [final] = [r for _, _, r in iter_records([Path(summary["trajectories"])])
                   if not isinstance(r, Exception) and r.done]
        assert final.reward.final_match is passes
