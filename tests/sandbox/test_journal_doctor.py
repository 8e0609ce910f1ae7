"""The step journal's rotation, the doctor, and the concurrency limit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from agentd.config import SandboxConfig, Settings
from agentd.errors import JailUnavailableError
from agentd.records import AstGrepSearch, RunTests, TestSpec
from agentd.sandbox import Sandbox
from agentd.sandbox.doctor import check_jail
from agentd.sandbox.jails.bwrap import BwrapJail
from agentd.sandbox.journal import StepJournal

from ._helpers import FAST_LIMITS


class TestJournal:
    async def test_rotates_by_size(self, tmp_path: Path) -> None:
        """Past max_bytes the file moves to .1, older ones shift, at most `backups` kept."""
        journal = StepJournal(tmp_path, max_bytes=4096, backups=2)
        for i in range(100):
            await journal.write("t", {"i": i, "pad": "x" * 100})
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["t.jsonl", "t.jsonl.1", "t.jsonl.2"]
        last = (tmp_path / "t.jsonl").read_text().splitlines()[-1]
        assert json.loads(last)["i"] == 99
        assert all(p.stat().st_size <= 4096 for p in tmp_path.iterdir())

    async def test_write_failure_is_swallowed(self, tmp_path: Path) -> None:
        """A journal that cannot write drops the line instead of failing the step."""
        blocker = tmp_path / "file"
        blocker.write_text("")
        await StepJournal(blocker, max_bytes=4096, backups=1).write("t", {"a": 1})


class TestDoctor:
    async def test_check_jail_works_here(self, settings: Settings) -> None:
        """agentd check's jail probe passes on this host with the shipped config."""
        report = await check_jail(settings)
        assert report.works, report.detail
        assert report.jailer == "bwrap" and report.uid == 65534 and report.warnings == []

    async def test_missing_jailer_reported(self, tmp_path: Path) -> None:
        """A jailer binary that is absent is reported with the reason, not raised."""
        cfg = SandboxConfig(limits=FAST_LIMITS, seccomp=False)
        sandbox = Sandbox(cfg, workspaces_dir=tmp_path / "ws", log_dir=tmp_path / "logs")
        sandbox.jail = BwrapJail(binary="/nonexistent/bwrap")
        report = await sandbox.check()
        assert not report.works and "/nonexistent/bwrap" in report.detail
        assert "no seccomp filter" in " ".join(report.warnings)

    async def test_firejail_weaknesses_reported(self, tmp_path: Path) -> None:
        """jailer firejail works here, with seccomp, and says where it is weaker than bwrap."""
        cfg = SandboxConfig(jailer="firejail", limits=FAST_LIMITS)
        sandbox = Sandbox(cfg, workspaces_dir=tmp_path / "ws", log_dir=tmp_path / "logs")
        report = await sandbox.check()
        assert report.works and report.seccomp and report.uid == 65534, report.detail
        assert any("setuid root" in w for w in report.warnings)

    async def test_unjailed_warns(self, tmp_path: Path) -> None:
        """jailer none works but warns loudly."""
        cfg = SandboxConfig(jailer="none", allow_unjailed=True, limits=FAST_LIMITS)
        sandbox = Sandbox(cfg, workspaces_dir=tmp_path / "ws", log_dir=tmp_path / "logs")
        report = await sandbox.check()
        assert report.works, report.detail
        assert report.warnings[0].startswith("UNJAILED")


class TestConcurrency:
    async def test_limiter_bounds_parallel_runs(self, tmp_path: Path) -> None:
        """No more than `concurrency` jailed processes run at once."""
        cfg = SandboxConfig(concurrency=1, limits=FAST_LIMITS)
        sandbox = Sandbox(cfg, workspaces_dir=tmp_path / "ws", log_dir=tmp_path / "logs")
        ws = await sandbox.prepare_workspace("c", {"a.py": "x\n"})
        spec = TestSpec(argv=["python", "-c", "import time; time.sleep(0.3)"])
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(lambda: sandbox.apply_action(ws, RunTests(), test_spec=spec))
        stats = sandbox.statistics()
        assert (stats.runs, stats.concurrency, stats.peak_running, stats.running) == (3, 1, 1, 0)

    async def test_limiter_lets_concurrency_run_at_once(self, tmp_path: Path) -> None:
        """With room for three, three runs that wait for each other all get in together."""
        cfg = SandboxConfig(concurrency=3, limits=FAST_LIMITS)
        sandbox = Sandbox(cfg, workspaces_dir=tmp_path / "ws", log_dir=tmp_path / "logs")
        ws = await sandbox.prepare_workspace("c", {"a.py": "x\n"})
        seen: list[int] = []

        async def watch() -> None:
            while True:
                seen.append(sandbox.statistics().running)
                if seen[-1] == 3:
                    return
                await anyio.sleep(0.005)

        spec = TestSpec(argv=["python", "-c", "import time; time.sleep(3600)"], timeout_s=600)
        with anyio.fail_after(120):  # stuck detection: the three never met
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(lambda: sandbox.apply_action(ws, RunTests(), test_spec=spec))
                await watch()
                tg.cancel_scope.cancel()
        assert sandbox.statistics().peak_running == 3


class TestFailuresOfTheJail:
    async def test_missing_jailer_raises_sandbox_error(self, tmp_path: Path) -> None:
        """When the jailer cannot start, apply_action raises JailUnavailableError."""
        sandbox = Sandbox(SandboxConfig(limits=FAST_LIMITS), workspaces_dir=tmp_path / "ws",
                          log_dir=tmp_path / "logs")
        sandbox.jail = BwrapJail(binary="/nonexistent/bwrap")
        ws = await sandbox.prepare_workspace("x", {"a.py": "x\n"})
        with pytest.raises(JailUnavailableError, match="cannot start"):
            await sandbox.apply_action(ws, AstGrepSearch(lang="python", pattern="x"))

    async def test_read_files_skips_hardlinks(self, sandbox: Sandbox, tmp_path: Path) -> None:
        """read_files never returns a hard-linked file's content (it may be a host file)."""
        ws = await sandbox.prepare_workspace("x", {"a.py": "x\n"})
        secret = tmp_path / "secret.txt"
        secret.write_text("host secret")
        os.link(secret, ws / "s.py")
        assert await sandbox.read_files(ws) == {"a.py": "x\n"}

    async def test_missing_workspace_is_a_result(self, sandbox: Sandbox, tmp_path: Path) -> None:
        """An action on a workspace that does not exist is an invalid action, not a crash."""
        r = await sandbox.apply_action(tmp_path / "gone", AstGrepSearch(lang="python",
                                                                        pattern="x"))
        assert r.error_kind == "invalid_action"
