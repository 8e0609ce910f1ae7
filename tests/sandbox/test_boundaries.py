"""Every boundary of the sandbox checks what it is given before it acts: rule YAML that
JSON cannot carry, non-regular files left by a test, a foreign workspace over its limits."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agentd.records import AstGrepRule, AstGrepSearch, ReadFile
from agentd.sandbox import Sandbox

from ._helpers import SAMPLE

RULE_HEAD = "id: r\nlanguage: python\nrule: {pattern: f($A)}\nfix: g($A)\n"
UNENCODABLE = {
    "date": RULE_HEAD + "message: 2001-12-14\n",
    "mixed_keys": RULE_HEAD + "metadata: {1: a, b: c}\n",
    "surrogate": RULE_HEAD + 'message: "\\ud800"\n',
    "nan": RULE_HEAD + "metadata: {x: .nan}\n",
    "binary": RULE_HEAD + "note: !!binary aGVsbG8=\n",
}


class TestRuleReencoding:
    @pytest.mark.parametrize("text", UNENCODABLE.values(), ids=UNENCODABLE.keys())
    async def test_refused_as_invalid_action(self, sandbox: Sandbox, text: str) -> None:
        """YAML PyYAML accepts but JSON cannot carry is an ``invalid_action`` result."""
        ws = await sandbox.prepare_workspace("rule", {"a.py": "f(1)\n"})
        r = await sandbox.apply_action(ws, AstGrepRule(rule_yaml=text))
        assert r.error_kind == "invalid_action" and r.error.startswith("rule_yaml:"), r
        assert (ws / "a.py").read_text() == "f(1)\n"

    @pytest.mark.parametrize("text", UNENCODABLE.values(), ids=UNENCODABLE.keys())
    def test_sandbox_exec_no_traceback(self, tmp_project: Path, tmp_path: Path,
                                       text: str) -> None:
        """Through `agentd sandbox exec` the same rules print a result, never a traceback."""
        ws = tmp_path / "w"
        ws.mkdir()
        (ws / "a.py").write_text("f(1)\n")
        action = json.dumps({"tool": "ast_grep_rule", "rule_yaml": text})
        out = _exec(tmp_project, ws, action)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        assert json.loads(out.stdout)["error_kind"] == "invalid_action"


def _exec(project: Path, workspace: Path, action: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "agentd", "sandbox", "exec", "--config",
            str(project / "configs" / "agentd.yaml"), "--workspace", str(workspace),
            "--action", "-"]
    return subprocess.run(argv, input=action, capture_output=True, text=True, timeout=60,
                          check=False)


def _special(ws: Path, kind: str) -> str:
    """Leave a non-regular file in ``ws``, as a ``run_tests`` step could."""
    if kind == "socket":
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(ws / "sock.py"))
        return "sock.py"
    os.mkfifo(ws / "fifo.py")
    return "fifo.py"


class TestNonRegularFiles:
    @pytest.mark.parametrize("kind", ["socket", "fifo"])
    async def test_read_file_refuses(self, sandbox: Sandbox, kind: str) -> None:
        """``read_file`` on a socket or FIFO is ``invalid_action``, never an OSError."""
        ws = await sandbox.prepare_workspace("special", {"a.py": SAMPLE})
        name = _special(ws, kind)
        r = await sandbox.apply_action(ws, ReadFile(path=name))
        assert r.error_kind == "invalid_action" and "not a regular file" in r.error, r

    @pytest.mark.parametrize("kind", ["socket", "fifo"])
    async def test_snapshot_never_opens(self, sandbox: Sandbox, kind: str) -> None:
        """A socket or FIFO in the workspace is never opened by a snapshot: the action
        runs, and the file is in no snapshot, diff or result."""
        ws = await sandbox.prepare_workspace("special", {"a.py": "f(1)\n"})
        name = _special(ws, kind)
        r = await sandbox.apply_action(ws, AstGrepSearch(lang="python", pattern="f($A)"))
        assert r.ok and len(r.matches) == 1, r
        assert name not in await sandbox.read_files(ws)


class TestForeignWorkspace:
    def test_over_limit_changes_no_owner(self, tmp_project: Path, tmp_path: Path) -> None:
        """`sandbox exec` on a directory over the entry limit refuses the action and hands
        nothing to the sandbox uid: a root 0600 file in it stays root's."""
        ws = tmp_path / "big"
        ws.mkdir()
        secret = ws / "0000-secret"
        secret.write_text("root only\n")
        secret.chmod(0o600)
        for i in range(2001):
            (ws / f"f{i}.py").write_text("x\n")
        action = '{"tool": "ast_grep_search", "pattern": "x", "lang": "python"}'
        out = _exec(tmp_project, ws, action)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["error_kind"] == "limit"
        owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [ws, *ws.iterdir()]}
        assert owners == {(os.getuid(), os.getgid())}
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
