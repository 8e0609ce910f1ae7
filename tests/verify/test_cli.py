"""``agentd verify TASK_ID DIR``: the verdict as JSON, exit 0 accepted, 1 rejected, 2 misuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentd.config import Settings
from agentd.datasets import write_tasks
from agentd.records import Task

from . import mutations
from .recipe_tasks import fixture_tasks


def _write_dir(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _verify(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "agentd", "verify", "--config", str(settings.config_path),
            *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture
def task(settings: Settings) -> Task:
    chosen = fixture_tasks()["multi:2"]
    path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tasks(path, [chosen])
    return chosen


class TestVerifyCommand:
    def test_reformatted_gold_is_accepted(self, settings: Settings, task: Task,
                                          tmp_path: Path) -> None:
        """A reformatted gold exits 0 and every check is printed."""
        path = sorted(task.gold)[0]
        text = mutations.reformatted(task.files[path], task.gold[path])
        solution = _write_dir(tmp_path / "sol", {**task.files, **task.gold, path: text})
        done = _verify(settings, task.task_id, str(solution))
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["accepted"] and out["decided_by"] == "ast_equivalent"
        assert [c["name"] for c in out["checks"]] == [
            "parse", "rule_remaining", "unrelated_edit", "ast_equivalent"]

    def test_untouched_workspace_is_rejected(self, settings: Settings, task: Task,
                                             tmp_path: Path) -> None:
        """The original files exit 1, decided by the rule that still matches."""
        done = _verify(settings, task.task_id, str(_write_dir(tmp_path / "sol", task.files)))
        assert done.returncode == 1, done.stderr
        assert json.loads(done.stdout)["decided_by"] == "rule_remaining"

    def test_misuse_exits_2(self, settings: Settings, task: Task, tmp_path: Path) -> None:
        """An unknown task or a missing directory is one line on stderr and exit 2."""
        unknown = _verify(settings, "no-such-task", str(tmp_path))
        assert unknown.returncode == 2 and "no task" in unknown.stderr
        missing = _verify(settings, task.task_id, str(tmp_path / "absent"))
        assert missing.returncode == 2 and "not a directory" in missing.stderr
        assert "Traceback" not in unknown.stderr + missing.stderr
