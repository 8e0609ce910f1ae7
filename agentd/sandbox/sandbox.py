"""``Sandbox``: run one model action in the jail and say exactly what it did.

Per action: validate (before any process) → snapshot the workspace (no-follow, bounded,
handed to the sandbox uid) and make the action's cgroup, in one worker-thread trip → run the
tool in the jail under the concurrency limiter → snapshot again → diff in Python → one JSONL
step line. The same action on the same files gives the same result, byte for byte (timings
aside).

A search runs with the workspace mounted read-only, so it reads no contents (the workspace is
still checked against its limits and handed over, without reading a byte); ``act``
hands the caller the after-snapshot it took (as text), or None when the action changed
nothing, so nobody walks the workspace a third time to learn what is in it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from agentd.config import SandboxConfig
from agentd.errors import JailUnavailableError
from agentd.records import Action, ReadFile, RunTests, SandboxResult, Submit, TestResult, TestSpec
from agentd.sandbox import results
from agentd.sandbox.binaries import Binary, resolve_allowlist
from agentd.sandbox.cgroups import ActionGroup, Cgroups, ClosedOnce, select_cgroups
from agentd.sandbox.jails import DataFile, Jail, JailRun, select_jail
from agentd.sandbox.jails.base import DATA_DIR
from agentd.sandbox.journal import StepJournal
from agentd.sandbox.paths import ActionRejected
from agentd.sandbox.plans import DATA, Plan, plan_action
from agentd.sandbox.process import RawRun, Watch, run_process
from agentd.sandbox.quota import quota_breach
from agentd.sandbox.seccomp import data_fd, seccomp_bpf
from agentd.sandbox.stats import Counters, JailReport, SandboxStatistics
from agentd.sandbox.workspace import (
    Owner,
    Snapshot,
    admit,
    create_workspace,
    readable_files,
    remove_workspace,
    snapshot,
)


@dataclass(frozen=True)
class Applied:
    """An action's result and the workspace after it (None: the action changed no file)."""

    result: SandboxResult
    files: dict[str, str] | None = None


class Sandbox:
    """Workspaces and jailed actions for the engine and the dataset builder."""

    def __init__(self, config: SandboxConfig, *, workspaces_dir: Path, log_dir: Path) -> None:
        self.config = config
        self.limits = config.limits
        self.workspaces_dir = workspaces_dir
        self.jail: Jail = select_jail(config)
        self.cgroups: Cgroups = select_cgroups(config)
        self.binaries: dict[str, Binary] = resolve_allowlist(config.binaries)
        self.owner = Owner(config.uid, config.gid) if os.geteuid() == 0 else Owner()
        self._concurrency = config.concurrency or os.cpu_count() or 1
        self._limiter = anyio.CapacityLimiter(self._concurrency)
        self._journal = StepJournal(log_dir, max_bytes=config.log_max_bytes,
                                    backups=config.log_backups)
        self._counters = Counters()
        self._sg_version: str | None = None
        self._limits_line = self.limits.model_dump()  # every step line carries them

    # ------------------------------------------------------------------ workspaces

    async def prepare_workspace(self, task_id: str, files: dict[str, str]) -> Path:
        """A fresh workspace holding ``files``, owned by the sandbox uid."""
        return await anyio.to_thread.run_sync(self._prepare, task_id, files)

    def _prepare(self, task_id: str, files: dict[str, str]) -> Path:
        root = create_workspace(self.workspaces_dir, task_id, files, self.owner)
        snapshot(root, self.limits, self.owner)
        return root

    async def read_files(self, workspace: Path) -> dict[str, str]:
        """Every regular file of the workspace as text (no-follow, bounded)."""
        snap = await anyio.to_thread.run_sync(readable_files, workspace, self.limits)
        return _texts(snap)

    async def cleanup(self, workspace: Path) -> None:
        """Remove the workspace (symlinks inside are never followed)."""
        await anyio.to_thread.run_sync(remove_workspace, workspace)

    # ------------------------------------------------------------------ actions

    async def apply_action(self, workspace: Path, action: Action, *, task_id: str = "adhoc",
                           test_spec: TestSpec | None = None) -> SandboxResult:
        """Validate and run ``action``; failures of the action are data, not exceptions."""
        return (await self.act(workspace, action, task_id=task_id, test_spec=test_spec)).result

    async def act(self, workspace: Path, action: Action, *, task_id: str = "adhoc",
                  test_spec: TestSpec | None = None) -> Applied:
        """``apply_action``, and the workspace's files after it when it changed any."""
        started = time.perf_counter()
        self._counters.in_flight += 1
        trace: dict[str, Any] = {}
        try:
            applied = await self._dispatch(workspace, action, test_spec, trace)
        finally:
            self._counters.in_flight -= 1
        result = applied.result
        if result.duration_ms == 0.0:
            ms = (time.perf_counter() - started) * 1000
            result = _with_duration(result, ms)
        self._counters.record(result)
        await self._journal.write(task_id, self._step_line(task_id, action, result, trace))
        return Applied(result, applied.files)

    async def run_tests(self, workspace: Path, test_spec: TestSpec, *,
                        task_id: str = "adhoc") -> TestResult:
        """Run the task's tests in the jail; ``passed`` means exit code 0 in time."""
        r = await self.apply_action(workspace, RunTests(), task_id=task_id, test_spec=test_spec)
        return TestResult(
            passed=r.ok, exit_code=r.exit_code, timed_out=r.timed_out, stdout=r.stdout,
            stderr=r.stderr, duration_ms=r.duration_ms, error_kind=r.error_kind, error=r.error,
        )

    async def _dispatch(self, workspace: Path, action: Action, test_spec: TestSpec | None,
                        trace: dict[str, Any]) -> Applied:
        if isinstance(action, Submit):
            return Applied(SandboxResult(exit_code=0))
        try:
            if isinstance(action, ReadFile):
                return Applied(await anyio.to_thread.run_sync(
                    results.read_file, workspace, action, self.limits))
            return await self._run_action(workspace, action, test_spec, trace)
        except ActionRejected as exc:
            return Applied(results.rejected(exc))

    async def _run_action(self, workspace: Path, action: Action, test_spec: TestSpec | None,
                          trace: dict[str, Any]) -> Applied:
        clock = _Clock(trace)
        # Shielded: the thread makes the action's cgroup, which must not be lost to a cancel.
        with anyio.CancelScope(shield=True):
            plan, before, group = await anyio.to_thread.run_sync(
                self._prepare_run, workspace, action, test_spec)
        clock.lap("prepare_ms")
        try:
            async with self._limiter:
                clock.lap("queue_ms")
                self._counters.started()
                try:
                    raw = await self._spawn(workspace, plan, group, trace)
                finally:
                    self._counters.ended()
        finally:
            if not group.closed:  # the run never started (cancelled in the queue, no jailer)
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(group.close)
        clock.lap("run_ms")
        if before is None:  # read-only mount: nothing can have changed
            result = results.from_run(raw, plan, {}, {}, self.limits)
            clock.lap("diff_ms")
            return Applied(result)
        try:
            after = await anyio.to_thread.run_sync(snapshot, workspace, self.limits)
        except ActionRejected as exc:  # over quota, or a hard link appeared: no diff
            result = results.from_run(raw, plan, {}, {}, self.limits, override=exc)
            return Applied(result, await self.read_files(workspace))
        result = results.from_run(raw, plan, before.files, after.files, self.limits)
        clock.lap("diff_ms")
        return Applied(result, _texts(after) if result.changed_files else None)

    def _prepare_run(self, workspace: Path, action: Action, test_spec: TestSpec | None,
                     ) -> tuple[Plan, Snapshot | None, ClosedOnce]:
        """The plan, the before-snapshot and the action's cgroup, in one worker-thread trip
        made before the action queues for a slot: inside the slot only the spawn and the
        group's removal are left, so a busy event loop stretches a slot less."""
        plan = plan_action(action, workspace, self.limits, test_spec=test_spec,
                           allowlist=frozenset(self.binaries))
        if os.path.islink(workspace):  # noqa: PTH114 - the bind source must be a real directory
            raise ActionRejected("path_escape", "the workspace itself is a symlink")
        if not plan.writes:  # mounted read-only: checked and handed over, no diff to take
            admit(workspace, self.limits, self.owner)
            before = None
        else:
            before = snapshot(workspace, self.limits, self.owner)
        return plan, before, ClosedOnce(self.cgroups.create(self.limits))

    async def _spawn(self, workspace: Path, plan: Plan, group: ActionGroup,
                     trace: dict[str, Any]) -> RawRun:
        with self._fds(plan) as (data_files, seccomp):
            run = self._jail_run(workspace, plan, data_files, seccomp)
            argv = self.jail.build(run)
            trace["argv"] = argv
            fds = [d.fd for d in data_files] + ([seccomp] if seccomp is not None else [])
            try:
                raw = await run_process(argv, wall_s=plan.wall_s,
                                        output_bytes=self.limits.output_bytes, pass_fds=fds,
                                        cwd=self.jail.cwd(run), group=group,
                                        watch=self._quota_watch(workspace, plan, group))
            except OSError as exc:  # the jailer itself is missing or not executable
                raise JailUnavailableError(f"cannot start {argv[0]}: {exc.strerror}") from None
            trace["peak_memory_bytes"] = raw.peak_memory_bytes
            return raw

    def _quota_watch(self, workspace: Path, plan: Plan, group: ActionGroup) -> Watch | None:
        """For commands that can create files (tests), poll the disk quotas while they run
        (``agentd.sandbox.quota``), looking into every process of the action's cgroup."""
        if not plan.full_os:
            return None  # ast-grep only rewrites files that exist; RLIMIT_FSIZE bounds them

        def check() -> str | None:
            return quota_breach(workspace, self.limits, group.pids())

        async def watch() -> str | None:
            return await anyio.to_thread.run_sync(check)

        return watch

    @contextlib.contextmanager
    def _fds(self, plan: Plan) -> Iterator[tuple[list[DataFile], int | None]]:
        opened: list[int] = []
        copies = None if self.jail.name == "bwrap" or not plan.data else _DataDir()
        try:
            files = []
            for name, content in plan.data:
                opened.append(data_fd(content, name))
                host = copies.add(name, content) if copies else None
                files.append(DataFile(dest=f"{DATA_DIR}/{name}", fd=opened[-1], host_path=host))
            seccomp = None
            if self.config.seccomp and self.jail.name == "bwrap":
                seccomp = data_fd(seccomp_bpf(), "seccomp")
                opened.append(seccomp)
            yield files, seccomp
        finally:
            for fd in opened:
                os.close(fd)
            if copies is not None:
                copies.remove()

    def _jail_run(self, workspace: Path, plan: Plan, data_files: list[DataFile],
                  seccomp: int | None) -> JailRun:
        # Data names are paths below the data directory (a test spec's support files nest).
        by_name = {d.dest.removeprefix(f"{DATA_DIR}/"): self.jail.data_path(d)
                   for d in data_files}
        args = tuple(by_name[a.removeprefix(DATA)] if a.startswith(DATA) else a
                     for a in plan.args)
        args = tuple(_inline_data(a, by_name) for a in args)
        binary = self.binaries.get(plan.binary)
        if binary is None:
            raise JailUnavailableError(f"{plan.binary} is not installed on this host")
        return JailRun(
            command=(str(binary.path), *args),
            workspace=workspace.absolute(), limits=self.limits, ro_paths=binary.mounts,
            data_files=tuple(data_files), seccomp_fd=seccomp, seccomp=self.config.seccomp,
            uid=self.owner.uid, gid=self.owner.gid, full_os=plan.full_os,
            writable=plan.writes,
        )

    def _step_line(self, task_id: str, action: Action, result: SandboxResult,
                   trace: dict[str, Any]) -> dict[str, Any]:
        return {
            "ts": time.time(), "task_id": task_id, "tool": type(action).__name__,
            "jailer": self.jail.name, "cgroup": self.cgroups.name, "argv": trace.get("argv"),
            "peak_memory_bytes": trace.get("peak_memory_bytes", 0),
            "limits": self._limits_line, "exit_code": result.exit_code,
            "error_kind": result.error_kind, "error": result.error, "timed_out": result.timed_out,
            "killed_reason": result.killed_reason, "duration_ms": result.duration_ms,
            "changed_files": len(result.changed_files), "diff_bytes": len(result.diff),
            "matches": len(result.matches), "timings": trace.get("timings", {}),
        }

    # ------------------------------------------------------------------ introspection

    def statistics(self) -> SandboxStatistics:
        """A frozen snapshot of the counters."""
        return self._counters.snapshot(self._concurrency)

    @property
    def ast_grep_version(self) -> str:
        """``ast-grep --version`` of the allowlisted binary (resolved once)."""
        if self._sg_version is None:
            from agentd.sandbox.doctor import ast_grep_version

            self._sg_version = ast_grep_version(self.binaries.get("ast-grep"))
        return self._sg_version

    async def check(self) -> JailReport:
        """Run a probe through the real jail and report whether it is contained."""
        from agentd.sandbox.doctor import probe_jail

        return await probe_jail(self)


class _Clock:
    """Records the laps of one action into the step log's ``timings``."""

    def __init__(self, trace: dict[str, Any]) -> None:
        self.timings: dict[str, float] = trace.setdefault("timings", {})
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round((now - self._last) * 1000, 3)
        self._last = now


class _DataDir:
    """World-readable copies of data files for backends without file injection."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="agentd-data-"))
        self.path.chmod(0o755)

    def add(self, name: str, content: bytes) -> Path:
        target = self.path / name
        for parent in reversed(target.relative_to(self.path).parents[:-1]):
            (self.path / parent).mkdir(mode=0o755, exist_ok=True)
            (self.path / parent).chmod(0o755)  # the umask must not hide it from the sandbox uid
        target.write_bytes(content)
        target.chmod(0o444)
        return target

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _texts(snap: Snapshot) -> dict[str, str]:
    return {p: data.decode("utf-8", "replace") for p, data in snap.files.items()}


def _inline_data(arg: str, by_name: dict[str, str]) -> str:
    """Options carry data files as ``--opt=\\0data:NAME``; swap in the jail path."""
    head, sep, tail = arg.partition("=" + DATA)
    return f"{head}={by_name[tail]}" if sep else arg


def _with_duration(result: SandboxResult, ms: float) -> SandboxResult:
    import msgspec

    return msgspec.structs.replace(result, duration_ms=round(ms, 3))
