"""`agentd sandbox exec` end to end: a real subprocess, real config, real jail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._helpers import SAMPLE, tree

SECRET = "hunter2-cli-fake-secret"


def agentd(project: Path, workspace: Path, action: str, *extra: str,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "agentd", "sandbox", "exec", "--config",
            str(project / "configs" / "agentd.yaml"), "--workspace", str(workspace),
            "--action", "-", *extra]
    return subprocess.run(argv, input=action, capture_output=True, text=True, timeout=60,
                          env=env, check=False)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "work"
    ws.mkdir()
    (ws / "a.py").write_text(SAMPLE)
    return ws


class TestExec:
    def test_rewrite_prints_result(self, tmp_project: Path, workspace: Path) -> None:
        """A rewrite prints the SandboxResult JSON and exits 0; the step is logged."""
        act = '{"tool": "ast_grep_run", "pattern": "$A + 1", "rewrite": "$A + 2", "lang": "python"}'
        out = agentd(tmp_project, workspace, act, "--task-id", "cli-t")
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["changed_files"] == ["a.py"] and result["error_kind"] == "none"
        assert (tmp_project / "logs" / "sandbox" / "cli-t.jsonl").exists()

    def test_failed_action_still_exit_zero(self, tmp_project: Path, workspace: Path) -> None:
        """A refused action is a result (exit 0) with its error_kind."""
        out = agentd(tmp_project, workspace, '{"tool": "read_file", "path": "../../etc/shadow"}')
        assert out.returncode == 0
        assert json.loads(out.stdout)["error_kind"] == "path_escape"

    @pytest.mark.parametrize("bad", ["not json", '{"tool": "rm_rf"}', '{"tool": "read_file"}',
                                     '{"tool": "submit", "extra": 1}'])
    def test_bad_json_exit_2(self, tmp_project: Path, workspace: Path, bad: str) -> None:
        """Bad action JSON is one clear line on stderr and exit 2."""
        out = agentd(tmp_project, workspace, bad)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.startswith("agentd: invalid action JSON") and \
            out.stderr.count("\n") == 1

    def test_missing_workspace(self, tmp_project: Path, tmp_path: Path) -> None:
        """A workspace that is not a directory is a usage error."""
        out = agentd(tmp_project, tmp_path / "nope", '{"tool": "submit"}')
        assert out.returncode == 2 and "not a directory" in out.stderr

    def test_symlink_and_secret(self, tmp_project: Path, workspace: Path,
                                tmp_path: Path) -> None:
        """Through the CLI: symlinks to the host are refused and env secrets never leak."""
        host = tmp_path / "host"
        host.mkdir()
        (host / "t.py").write_text("x + 1\n")
        before = tree(host)
        (workspace / "l.py").symlink_to(host / "t.py")
        env = {**os.environ, "AGENTD_FAKE_TOKEN": SECRET}
        outs = [agentd(tmp_project, workspace, act, env=env) for act in (
            '{"tool": "read_file", "path": "l.py"}',
            '{"tool": "ast_grep_run", "pattern": "$A + 1", "rewrite": "$A", "lang": "python"}',
        )]
        assert json.loads(outs[0].stdout)["error_kind"] == "path_escape"
        assert json.loads(outs[1].stdout)["changed_files"] == ["a.py"]
        assert all(SECRET not in o.stdout + o.stderr for o in outs)
        assert tree(host) == before
