"""Unit tests of the process runner with stand-in programs (no jail): time, output, cleanup."""

from __future__ import annotations

import anyio
import pytest

from agentd.sandbox.process import run_process

from ._helpers import processes_with

STUCK_S = 60  # only a run that truly hangs takes this long


class TestRunProcess:
    async def test_exit_code_and_output(self) -> None:
        """stdout, stderr and the exit code come back."""
        raw = await run_process(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
                                wall_s=5, output_bytes=1024)
        assert (raw.exit_code, raw.stdout, raw.stderr) == (3, b"out\n", b"err\n")
        assert not raw.timed_out and raw.killed_reason is None

    async def test_empty_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The child sees none of the daemon's environment."""
        monkeypatch.setenv("AGENTD_FAKE_SECRET", "hunter2-process")
        raw = await run_process(["/usr/bin/env"], wall_s=5, output_bytes=4096)
        assert raw.stdout == b""

    async def test_stdin_is_devnull(self) -> None:
        """stdin is /dev/null: a read gets EOF at once."""
        raw = await run_process(["/bin/cat"], wall_s=5, output_bytes=1024)
        assert raw.exit_code == 0 and raw.stdout == b""

    async def test_timeout_kills_group(self, marker: str) -> None:
        """On timeout the whole process group dies and the call returns (it never waits it out)."""
        with anyio.fail_after(STUCK_S):
            raw = await run_process(
                ["/bin/sh", "-c", f"sleep 100000 & sleep 100001 # {marker}\nwait"],
                wall_s=0.5, output_bytes=1024)
        assert raw.timed_out and raw.killed_reason == "timeout"
        assert processes_with(marker) == ""

    async def test_output_flood_killed(self) -> None:
        """Past output_bytes the tree is killed at once; output is capped exactly."""
        raw = await run_process(["/usr/bin/yes"], wall_s=10, output_bytes=100_000)
        assert raw.killed_reason == "output_limit" and not raw.timed_out
        assert len(raw.stdout) == 100_000

    async def test_both_pipes_drained(self) -> None:
        """A child writing a lot to stderr while stdout stays open does not deadlock."""
        code = "import sys; sys.stderr.write('e' * 500000); sys.stdout.write('done')"
        raw = await run_process(["/usr/bin/python3", "-c", code], wall_s=10,
                                output_bytes=1_000_000)
        assert raw.exit_code == 0 and raw.stdout == b"done" and len(raw.stderr) == 500000

    async def test_background_child_holding_pipe(self, marker: str) -> None:
        """A background child that keeps the pipe open is killed with the group."""
        with anyio.fail_after(STUCK_S):  # waiting for the child to close the pipe would hang
            raw = await run_process(["/bin/sh", "-c", f"(sleep 100000 # {marker}\n) & echo hi"],
                                    wall_s=STUCK_S * 2, output_bytes=1024)
        assert raw.exit_code == 0 and raw.stdout == b"hi\n" and not raw.timed_out
        assert processes_with(marker) == ""

    async def test_cancelled_caller_kills_tree(self, marker: str) -> None:
        """When the caller gives up (step timeout), the process tree dies too."""
        with anyio.move_on_after(0.5):
            await run_process(["/bin/sh", "-c", f"sleep 100 & sleep 101 # {marker}\nwait"],
                              wall_s=60, output_bytes=1024)
        assert processes_with(marker) == ""

    async def test_watch_kills(self, marker: str) -> None:
        """A watch that reports a reason kills the tree and the reason is kept."""
        polls: list[int] = []

        async def watch() -> str | None:
            polls.append(1)
            return "quota gone" if len(polls) >= 2 else None

        raw = await run_process(["/bin/sh", "-c", f"sleep 30 # {marker}"], wall_s=20,
                                output_bytes=1024, watch=watch)
        assert raw.killed_reason == "watchdog" and raw.kill_detail == "quota gone"
        assert processes_with(marker) == ""  # the watchdog, not the 20 s wall clock, ended it
