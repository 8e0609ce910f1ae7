"""Per-action cgroups: memory (shm, memfd included) and processes are capped per action.

Every test runs hostile code as a task's test command through the real jail, under the
cgroup backend this host offers (v1 here, v2 on a delegated systemd host).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentd.config import SandboxConfig
from agentd.errors import JailUnavailableError
from agentd.records import AstGrepSearch, RunTests, SandboxResult, TestSpec
from agentd.sandbox import Sandbox
from agentd.sandbox.cgroups import ClosedOnce, NoGroup, Verdict, select_cgroups, v1, v2

from ._helpers import FAST_LIMITS, SAMPLE

MIB = 1 << 20
CAP_MB = 256

SHM_512 = f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
for _ in range(8):  # 8 x 64 MiB, each detached: pages that belong to no process
    sid = libc.shmget(0, {64 * MIB}, 0o1600)
    addr = libc.shmat(sid, None, 0)
    ctypes.memset(addr, 1, {64 * MIB})
    libc.shmdt(ctypes.c_void_p(addr))
print("all 512 MiB held")
"""

MEMFD_512 = f"""
import os
chunk, fds = b"x" * {MIB}, []
for _ in range(64):  # 64 memfds x 8 MiB, each under RLIMIT_FSIZE
    fds.append(os.memfd_create("m"))
    for _ in range(8):
        os.write(fds[-1], chunk)
print("all 512 MiB held")
"""

FORK_HOLD = """
import os, time
kids = []
for i in range({n}):
    try:
        pid = os.fork()
    except OSError:
        print("fork refused after", i, flush=True)
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
open("{marker}", "w").close()
time.sleep(60)
"""


@pytest.fixture
def config() -> SandboxConfig:
    limits = FAST_LIMITS.model_copy(update={
        "memory_mb": CAP_MB, "processes": 16, "file_size_mb": 16, "open_files": 128})
    return SandboxConfig(limits=limits)


def _groups(sandbox: Sandbox) -> set[Path]:
    """Every action group under this process's parents, whichever backend made it."""
    out: set[Path] = set()
    for line in sandbox.cgroups.describe(sandbox.limits)["under"].split(", "):
        parent = Path(line.partition(":")[2] or line)
        out |= {p for p in parent.glob("a*") if p.is_dir()} if parent.is_dir() else set()
    return out


@pytest.fixture
def left_behind(sandbox: Sandbox) -> Callable[[], list[Path]]:
    """Groups this test made that are still there (none, once its actions have returned).

    Groups that exist when the test starts are not its own: an earlier test of the same
    process, interrupted mid-action, may have left one.
    """
    before = _groups(sandbox)
    return lambda: sorted(_groups(sandbox) - before)


async def _run(sandbox: Sandbox, ws: Path, code: str, timeout_s: float = 20.0) -> SandboxResult:
    spec = TestSpec(argv=["python", "-c", code], timeout_s=timeout_s)
    return await sandbox.apply_action(ws, RunTests(), test_spec=spec)


async def _wait_for(path: Path, stuck_s: float = 60.0) -> None:
    with anyio.fail_after(stuck_s):
        while not path.exists():
            await anyio.sleep(0.05)


class TestMemoryCap:
    @pytest.mark.parametrize("code", [SHM_512, MEMFD_512], ids=["sysv_shm", "memfd"])
    async def test_unmapped_memory_is_capped(self, sandbox: Sandbox, code: str,
            left_behind: Callable[[], list[Path]]) -> None:
        """512 MiB of detached SysV shm or memfds under a 256 MiB cap ends as ``limit``
        (memory_limit), the group never held more than the cap, and it is removed."""
        ws = await sandbox.prepare_workspace("mem", {"a.py": SAMPLE})
        r = await _run(sandbox, ws, code)
        assert r.error_kind == "limit" and r.killed_reason == "memory_limit", r
        assert "all 512 MiB held" not in r.stdout
        assert left_behind() == []

    async def test_step_log_carries_peak(self, sandbox: Sandbox, tmp_path: Path) -> None:
        """The step log names the cgroup backend and the action's peak memory (≤ the cap)."""
        import json

        ws = await sandbox.prepare_workspace("mem", {"a.py": SAMPLE})
        await _run(sandbox, ws, MEMFD_512)
        line = json.loads((tmp_path / "logs" / "adhoc.jsonl").read_text().splitlines()[-1])
        assert line["cgroup"] == sandbox.cgroups.name != "none"
        assert 0 < line["peak_memory_bytes"] <= CAP_MB * MIB


class TestGroupNames:
    async def test_two_sandboxes_of_one_process_never_collide(
            self, config: SandboxConfig, sandbox: Sandbox, tmp_path: Path) -> None:
        """Both sandboxes share the process's parent group; a second one (the verifier's,
        say) must not reuse a name the first holds: each action gets a group of its own."""
        other = Sandbox(config, workspaces_dir=tmp_path / "ws2", log_dir=tmp_path / "logs2")
        held = [sandbox.cgroups.create(sandbox.limits) for _ in range(3)]
        try:
            ws = await other.prepare_workspace("x", {"a.py": SAMPLE})
            r = await other.apply_action(ws, AstGrepSearch(lang="python", pattern="f($A)"))
            assert r.error_kind == "none" and len(r.matches) == 1, r
        finally:
            for group in held:
                group.close()


class TestGroupLifetime:
    async def test_action_cancelled_in_the_queue_leaves_no_group(
            self, config: SandboxConfig, tmp_path: Path) -> None:
        """An action's group is made before it queues for a slot; cancelled while it waits,
        the action removes its group at once (the slot's holder keeps its own)."""
        one = Sandbox(config.model_copy(update={"concurrency": 1}),
                      workspaces_dir=tmp_path / "ws1", log_dir=tmp_path / "logs1")
        before = _groups(one)

        def names() -> set[str]:  # one group has a directory per controller (v1)
            return {g.name for g in _groups(one) - before}

        hog_ws = await one.prepare_workspace("hog", {"a.py": SAMPLE})
        queued_ws = await one.prepare_workspace("queued", {"a.py": SAMPLE})
        code = "import time\nopen('/workspace/ready', 'w').close()\ntime.sleep(60)"
        async with anyio.create_task_group() as tg:
            tg.start_soon(_run, one, hog_ws, code, 60.0)
            await _wait_for(hog_ws / "ready")
            hog_group = names()
            assert len(hog_group) == 1
            queued = anyio.CancelScope()

            async def search() -> None:
                with queued:
                    await one.apply_action(queued_ws, AstGrepSearch(lang="python",
                                                                    pattern="f($A)"))

            tg.start_soon(search)
            with anyio.fail_after(60):  # a stuck-guard, not a timing
                while len(names()) < 2:
                    await anyio.sleep(0.01)
            assert one.statistics().running == 1  # the second waits for the slot
            queued.cancel()
            with anyio.fail_after(60):
                while names() != hog_group:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert names() == set()

    def test_a_group_is_closed_once(self) -> None:
        """Closed by the runner and again by the owner's ``finally``: one removal, one
        verdict."""
        closes: list[int] = []

        class Counting(NoGroup):
            def close(self) -> Verdict:
                closes.append(1)
                return Verdict("memory_limit", 7)

        group = ClosedOnce(Counting())
        assert not group.closed
        first = group.close()
        assert group.closed and group.close() == first == Verdict("memory_limit", 7)
        assert closes == [1]


class TestProcessCap:
    async def test_forks_past_the_cap_are_refused(self, sandbox: Sandbox,
            left_behind: Callable[[], list[Path]]) -> None:
        """Forking past ``processes`` is refused inside the action: ``process_limit``."""
        ws = await sandbox.prepare_workspace("pids", {"a.py": SAMPLE})
        code = "import os, time\nfor _ in range(40):\n  if os.fork() == 0:\n    time.sleep(30)"
        r = await _run(sandbox, ws, code + "\n    os._exit(0)", timeout_s=8)
        assert r.error_kind == "limit" and r.killed_reason == "process_limit", r
        assert left_behind() == []

    async def test_other_episode_unaffected(self, sandbox: Sandbox,
            left_behind: Callable[[], list[Path]]) -> None:
        """While one action holds every process it may, an ast-grep action of another
        episode (same sandbox uid) still succeeds: the cap is per action, not per uid."""
        hog_ws = await sandbox.prepare_workspace("hog", {"a.py": SAMPLE})
        other_ws = await sandbox.prepare_workspace("other", {"a.py": SAMPLE})
        ready = hog_ws / "ready"
        code = FORK_HOLD.format(n=sandbox.limits.processes - 4, marker="/workspace/ready")
        results: list[Any] = []
        async with anyio.create_task_group() as tg:
            async def hog() -> None:
                results.append(await _run(sandbox, hog_ws, code, timeout_s=60))

            tg.start_soon(hog)
            await _wait_for(ready)
            search = AstGrepSearch(lang="python", pattern="f($A)")
            results.append(await sandbox.apply_action(other_ws, search))
            tg.cancel_scope.cancel()
        assert results[-1].error_kind == "none" and len(results[-1].matches) == 1, results[-1]
        assert left_behind() == []


class TestBackendChoice:
    def test_none_only_when_named_and_loud(self, caplog: pytest.LogCaptureFixture) -> None:
        """``cgroup: none`` is honoured with a warning naming what is lost."""
        with caplog.at_level(logging.WARNING):
            backend = select_cgroups(SandboxConfig(cgroup="none"))
        assert backend.name == "none"
        assert "NO per-action memory or process cap" in caplog.text
        assert backend.describe(FAST_LIMITS)["memory"] == "NOT CAPPED"

    def test_auto_never_falls_back_to_none(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With no usable hierarchy, ``auto`` refuses to start rather than run uncapped."""
        monkeypatch.setattr(v1, "usable", lambda: False)
        monkeypatch.setattr(v2, "usable", lambda: False)
        with pytest.raises(JailUnavailableError, match="cgroup: none"):
            select_cgroups(SandboxConfig())

    def test_auto_picks_a_real_backend_here(self, sandbox: Sandbox) -> None:
        """On this host ``auto`` finds v1 or v2 and reports the limits it applies."""
        info = sandbox.cgroups.describe(sandbox.limits)
        assert sandbox.cgroups.name in {"v1", "v2"}
        assert info["memory"].startswith(f"{CAP_MB} MiB") and info["pids"] == "16"


