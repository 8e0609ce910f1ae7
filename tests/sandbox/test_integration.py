"""Integration: the real ast-grep under each real jail backend on temp workspaces."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from agentd.records import (
    AstGrepRule,
    AstGrepRun,
    AstGrepSearch,
    Match,
    ReadFile,
    Submit,
    TestSpec,
)
from agentd.sandbox import Sandbox

from ._helpers import JAILERS, SAMPLE

RULE = "id: plus-two\nlanguage: python\nrule:\n  pattern: $A + 1\nfix: $A + 2\n"
EXPECTED_DIFF = (
    "--- a/a.py\n+++ b/a.py\n@@ -1,5 +1,5 @@\n def f(x):\n-    return x + 1\n"
    "+    return x + 2\n \n \n print(f(2))\n"
)
TESTS = "from a import f\n\n\ndef test_f():\n    assert f(1) == 3\n"


@pytest.fixture(params=JAILERS)
def jailer(request: pytest.FixtureRequest) -> str:
    """Every action kind runs through every real backend."""
    return str(request.param)


def stable(result: object) -> bytes:
    """The result as JSON with the timing zeroed: what must repeat byte for byte."""
    return msgspec.json.encode(msgspec.structs.replace(result, duration_ms=0.0))  # type: ignore[type-var]


class TestRewrites:
    async def test_cli_form(self, sandbox: Sandbox) -> None:
        """ast_grep_run with a rewrite changes the file and reports the exact diff."""
        ws = await sandbox.prepare_workspace("t", {"a.py": SAMPLE})
        r = await sandbox.apply_action(
            ws, AstGrepRun(pattern="$A + 1", rewrite="$A + 2", lang="python"))
        assert r.ok, r
        assert r.changed_files == ["a.py"] and r.diff == EXPECTED_DIFF
        assert (ws / "a.py").read_text() == SAMPLE.replace("x + 1", "x + 2")

    async def test_rule_form(self, sandbox: Sandbox) -> None:
        """ast_grep_rule applies the rule's fix with the same diff."""
        ws = await sandbox.prepare_workspace("t", {"a.py": SAMPLE, "b.txt": "x + 1\n"})
        r = await sandbox.apply_action(ws, AstGrepRule(rule_yaml=RULE, paths=["a.py"]))
        assert r.ok, r
        assert r.changed_files == ["a.py"] and r.diff == EXPECTED_DIFF

    async def test_no_match_is_not_an_error(self, sandbox: Sandbox) -> None:
        """A pattern that matches nothing changes nothing and is not a tool error."""
        ws = await sandbox.prepare_workspace("t", {"a.py": SAMPLE})
        r = await sandbox.apply_action(
            ws, AstGrepRun(pattern="nothing($A)", rewrite="x", lang="python"))
        assert r.error_kind == "none" and r.changed_files == [] and r.diff == ""

    async def test_deterministic(self, sandbox: Sandbox) -> None:
        """The same action on the same files gives byte-identical results."""
        action = AstGrepRun(pattern="$A + 1", rewrite="$A + 2", lang="python")
        files = {"a.py": SAMPLE, "pkg/b.py": "y = z + 1\n", "pkg/c.py": "q = 1 + 1\n"}
        outs = []
        for _ in range(2):
            ws = await sandbox.prepare_workspace("t", files)
            outs.append(stable(await sandbox.apply_action(ws, action)))
        assert outs[0] == outs[1]
        assert json.loads(outs[0])["changed_files"] == ["a.py", "pkg/b.py", "pkg/c.py"]


class TestReads:
    async def test_search_matches(self, sandbox: Sandbox) -> None:
        """Searches return parsed, sorted matches and write nothing."""
        ws = await sandbox.prepare_workspace("t", {"a.py": SAMPLE, "b.py": "f(3)\n"})
        r = await sandbox.apply_action(ws, AstGrepSearch(lang="python", pattern="f($A)"))
        assert r.ok, r
        assert r.matches == [Match(file="a.py", start_line=5, end_line=5, text="f(2)"),
                             Match(file="b.py", start_line=1, end_line=1, text="f(3)")]
        assert r.changed_files == []

    async def test_search_by_rule(self, sandbox: Sandbox) -> None:
        """A rule search reports the fix as the replacement, without applying it."""
        ws = await sandbox.prepare_workspace("t", {"a.py": SAMPLE})
        r = await sandbox.apply_action(ws, AstGrepSearch(lang="python", rule_yaml=RULE))
        assert r.ok, r
        assert [(m.text, m.replacement) for m in r.matches] == [("x + 1", "x + 2")]
        assert (ws / "a.py").read_text() == SAMPLE

    async def test_read_file(self, sandbox: Sandbox) -> None:
        """read_file returns the lines asked for."""
        ws = await sandbox.prepare_workspace("t", {"a.py": SAMPLE})
        r = await sandbox.apply_action(ws, ReadFile(path="a.py", start_line=1, end_line=2))
        assert r.ok and r.stdout == "def f(x):\n    return x + 1\n"

    async def test_read_files_and_submit(self, sandbox: Sandbox) -> None:
        """read_files returns regular files; submit runs nothing and is ok."""
        ws = await sandbox.prepare_workspace("t", {"a.py": SAMPLE, "d/e.py": "e\n"})
        assert await sandbox.read_files(ws) == {"a.py": SAMPLE, "d/e.py": "e\n"}
        assert (await sandbox.apply_action(ws, Submit())).ok
        await sandbox.cleanup(ws)
        assert not ws.exists()


class TestTests:
    async def test_pytest_in_jail(self, sandbox: Sandbox) -> None:
        """pytest runs in the jail: fails before the fix, passes after."""
        ws = await sandbox.prepare_workspace("t", {"a.py": SAMPLE, "test_a.py": TESTS})
        spec = TestSpec(argv=["python", "-m", "pytest", "-q"], timeout_s=30)
        before = await sandbox.run_tests(ws, spec)
        assert not before.passed and "1 failed" in before.stdout
        await sandbox.apply_action(
            ws, AstGrepRun(pattern="$A + 1", rewrite="$A + 2", lang="python"))
        after = await sandbox.run_tests(ws, spec)
        assert after.passed, after
        assert sorted(p.name for p in ws.iterdir()) == ["a.py", "test_a.py"]


class TestBookkeeping:
    async def test_statistics_and_journal(self, sandbox: Sandbox, tmp_path: Path) -> None:
        """Each step is counted and logged as one JSON line, without environment."""
        ws = await sandbox.prepare_workspace("t", {"a.py": SAMPLE})
        await sandbox.apply_action(ws, AstGrepSearch(lang="python", pattern="f($A)"),
                                   task_id="../evil/task")
        await sandbox.apply_action(ws, ReadFile(path="/etc/passwd"), task_id="../evil/task")
        stats = sandbox.statistics()
        assert stats.runs == 2 and stats.in_flight == 0
        assert stats.failures == {"path_escape": 1}
        lines = (tmp_path / "logs" / "_evil_task.jsonl").read_text().splitlines()
        first = json.loads(lines[0])
        assert first["argv"][0] == f"/usr/bin/{sandbox.jail.name}" and first["matches"] == 1
        assert "env" not in first and first["limits"]["cpu_seconds"] == 2
        assert set(first["timings"]) == {"prepare_ms", "queue_ms", "run_ms", "diff_ms"}

    async def test_check_reports_working_jail(self, sandbox: Sandbox) -> None:
        """check() runs a probe through the jail and reports the version and uid."""
        report = await sandbox.check()
        assert report.works, report.detail
        assert report.jailer == sandbox.jail.name and report.uid == 65534 and report.seccomp
        assert report.ast_grep_version == sandbox.ast_grep_version != ""


class TestAfterSnapshot:
    async def test_act_hands_back_the_files_only_when_they_changed(
        self, sandbox: Sandbox
    ) -> None:
        """``act`` returns the workspace after a writing action, and None when nothing
        changed (a search, a read, a rewrite that matched nothing, a submit)."""
        ws = await sandbox.prepare_workspace("t", {"a.py": "f(1)\n", "b.py": "g(2)\n"})
        for action in (AstGrepSearch(lang="python", pattern="f($A)"), ReadFile(path="a.py"),
                       AstGrepRun(pattern="h($A)", rewrite="k($A)", lang="python"), Submit()):
            applied = await sandbox.act(ws, action)
            assert applied.result.error_kind == "none" and applied.files is None, applied
        applied = await sandbox.act(ws, AstGrepRun(pattern="f($A)", rewrite="f($A + 1)",
                                                   lang="python"))
        assert applied.result.changed_files == ["a.py"]
        assert applied.files == {"a.py": "f(1 + 1)\n", "b.py": "g(2)\n"}
        assert applied.files == await sandbox.read_files(ws)

    async def test_a_search_sees_the_workspace_read_only(self, sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
        """The jail mounts the workspace read-only for a search and read-write for a
        rewrite (the step journal holds each argv)."""
        ws = await sandbox.prepare_workspace("t", {"a.py": "f(1)\n"})
        await sandbox.apply_action(ws, AstGrepSearch(lang="python", pattern="f($A)"),
                                   task_id="ro")
        await sandbox.apply_action(ws, AstGrepRun(pattern="f($A)", rewrite="g($A)",
                                                  lang="python"), task_id="ro")
        lines = (tmp_path / "logs" / "ro.jsonl").read_text().splitlines()
        search, rewrite = (json.loads(line)["argv"] for line in lines)
        ro = {"bwrap": ["--ro-bind", str(ws.absolute())], "firejail": [f"--read-only={ws}"]}
        rw = {"bwrap": ["--bind", str(ws.absolute())], "firejail": [f"--read-write={ws}"]}
        name = sandbox.jail.name
        assert _contains(search, ro[name]) and not _contains(search, rw[name])
        assert _contains(rewrite, rw[name]) and not _contains(rewrite, ro[name])


def _contains(argv: list[str], part: list[str]) -> bool:
    return any(argv[i:i + len(part)] == part for i in range(len(argv)))
