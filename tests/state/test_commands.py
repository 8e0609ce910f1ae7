"""``agentd state dump`` against a real database, in-process and as a subprocess."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentd.cli import main
from agentd.config import Settings
from agentd.state import SqliteStateStore, State


def config_path(settings: Settings) -> str:
    return str(settings.config_path)


def seed(settings: Settings) -> None:
    async def go() -> None:
        db = settings.path(settings.agentd.paths.database)
        async with await SqliteStateStore.open(db, settings.agentd.state) as store:
            await store.save("run-a", "task1", 0, State(goals=["old run"]), 0)
            await asyncio.sleep(0.01)
            await store.save("run-b", "task1", 0, State(goals=["g"], next_focus="look"), 0)
            await store.save("run-b", "task1", 0, State(goals=["g", "h"]), 1)
            await store.save("run-b", "task1", 2, State(decisions=["ep2"]), 0)

    asyncio.run(go())


class TestDump:
    def test_prints_json_then_the_block(
        self, settings: Settings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --run-id the most recent run is shown, as JSON and as the <state> block."""
        seed(settings)
        assert main(["state", "dump", "task1", "--config", config_path(settings)]) == 0
        out = capsys.readouterr().out
        head, block = out.split("\n\n<state>")
        data = json.loads(head)
        assert (data["run_id"], data["version"], data["episode"]) == ("run-b", 2, 0)
        assert data["state"]["goals"] == ["g", "h"]
        assert "<state>" + block == "<state>\ngoals:\n- g\n- h\n</state>\n"

    def test_run_id_and_episode_select(
        self, settings: Settings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--run-id and --episode pick the row."""
        seed(settings)
        cfg = config_path(settings)
        assert main(["state", "dump", "task1", "--run-id", "run-a", "--config", cfg]) == 0
        assert '"old run"' in capsys.readouterr().out
        assert main(["state", "dump", "task1", "--episode", "2", "--config", cfg]) == 0
        assert "- ep2" in capsys.readouterr().out

    def test_missing_database_is_one_line_exit_2(
        self, settings: Settings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No database yet: one clear line on stderr, exit code 2, nothing created."""
        assert main(["state", "dump", "task1", "--config", config_path(settings)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no state database at" in err
        assert not settings.path(settings.agentd.paths.database).exists()

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["nope"], "no state for task nope episode 0\n"),
            (["task1", "--episode", "5"], "episode 5 (episodes with state: 0, 2)"),
            (["task1", "--run-id", "zzz"], "episode 0 in run zzz"),
        ],
    )
    def test_missing_task_is_one_line_exit_2(
        self,
        settings: Settings,
        capsys: pytest.CaptureFixture[str],
        argv: list[str],
        message: str,
    ) -> None:
        """An unknown task, episode or run: one line saying what exists, exit code 2."""
        seed(settings)
        assert main(["state", "dump", *argv, "--config", config_path(settings)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err

    def test_agentd_state_dump_process(self, settings: Settings, project_root: Path) -> None:
        """python -m agentd state dump works in a real subprocess."""
        seed(settings)
        proc = subprocess.run(
            [sys.executable, "-m", "agentd", "state", "dump", "task1", "--config",
             config_path(settings)],
            capture_output=True, text=True, timeout=60, cwd=project_root, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.split("\n\n<state>")[0])["run_id"] == "run-b"
        assert proc.stdout.rstrip().endswith("</state>")
