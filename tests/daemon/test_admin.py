"""The admin socket against real clients on a real Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentd.cli.ctl import AdminClient, format_human, parse_args
from agentd.config import AdminConfig
from agentd.daemon.admin import AdminServer
from agentd.errors import AdminError, DaemonNotRunningError, UsageError


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[AdminServer]:
    config = AdminConfig(idle_timeout_s=0.5, max_clients=4, max_request_bytes=2048)
    admin = AdminServer(config, tmp_path / "run" / "admin.sock")

    async def echo(args: dict[str, Any]) -> dict[str, Any]:
        return {"echo": args}

    async def boom(_: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    admin.register("echo", "echo the args", echo)
    admin.register("boom", "always fails", boom)
    async with serving(admin):
        yield admin


class _Started:
    def __init__(self) -> None:
        self.event = asyncio.Event()

    def started(self, value: object = None) -> None:
        self.event.set()


@contextlib.asynccontextmanager
async def serving(admin: AdminServer) -> AsyncIterator[None]:
    """Serve in a plain asyncio task: fixture setup and teardown run in different tasks."""
    status = _Started()
    task = asyncio.ensure_future(admin.serve(task_status=status))  # type: ignore[arg-type]
    await status.event.wait()
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def raw_exchange(path: Path, payload: bytes, *, read: bool = True) -> list[dict[str, Any]]:
    async with await anyio.connect_unix(path) as stream:
        await stream.send(payload)
        if not read:
            return []
        data = b""
        with anyio.move_on_after(3):
            while True:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
                if data.endswith(b"\n") and data.count(b"\n") >= payload.count(b"\n"):
                    break
    return [json.loads(line) for line in data.splitlines() if line.strip()]


class TestProtocol:
    async def test_request_gets_result_with_same_id(self, server: AdminServer) -> None:
        """A well-formed request is answered with ok=true and its own id."""
        [reply] = await raw_exchange(server.socket_path,
                                     b'{"id": 7, "cmd": "echo", "args": {"a": 1}}\n')
        assert reply == {"id": 7, "ok": True, "result": {"echo": {"a": 1}}}

    async def test_several_requests_on_one_connection(self, server: AdminServer) -> None:
        """Requests on one connection are answered in order."""
        async with AdminClient(server.socket_path) as client:
            assert (await client.request("ping"))["pong"] is True
            assert await client.request("echo", {"x": "y"}) == {"echo": {"x": "y"}}

    async def test_help_lists_registered_commands(self, server: AdminServer) -> None:
        """help lists every command in the table, including ones added later."""
        async with AdminClient(server.socket_path) as client:
            table = await client.request("help")
        assert {"ping", "help", "echo", "boom"} <= set(table)

    async def test_unknown_command_is_an_error(self, server: AdminServer) -> None:
        """An unknown command gets UnknownCommand and the connection stays usable."""
        async with AdminClient(server.socket_path) as client:
            with pytest.raises(AdminError, match="UnknownCommand"):
                await client.request("nope")
            assert (await client.request("ping"))["pong"] is True

    async def test_malformed_json_is_an_error(self, server: AdminServer) -> None:
        """Malformed JSON gets BadRequest."""
        [reply] = await raw_exchange(server.socket_path, b"{not json\n")
        assert reply["ok"] is False and reply["error"]["class"] == "BadRequest"

    async def test_non_object_request_is_an_error(self, server: AdminServer) -> None:
        """A JSON value that is not a request object gets BadRequest."""
        [reply] = await raw_exchange(server.socket_path, b"[1, 2, 3]\n")
        assert reply["error"]["class"] == "BadRequest"

    async def test_handler_crash_is_reported_not_fatal(self, server: AdminServer) -> None:
        """A crashing handler answers InternalError and the server keeps serving."""
        async with AdminClient(server.socket_path) as client:
            with pytest.raises(AdminError, match="InternalError"):
                await client.request("boom")
            assert (await client.request("ping"))["pong"] is True


class TestHostileClients:
    async def test_oversized_request_is_refused(self, server: AdminServer) -> None:
        """A request over the size cap is refused and the connection closed."""
        replies = await raw_exchange(server.socket_path, b"x" * 5000 + b"\n")
        assert replies[0]["error"]["class"] == "RequestTooLarge"

    async def test_idle_client_is_dropped(self, server: AdminServer) -> None:
        """A client that sends half a line and stalls is dropped after the idle timeout."""
        async with await anyio.connect_unix(server.socket_path) as stream:
            await stream.send(b'{"id": 1, "cmd": "pi')
            with anyio.fail_after(3):
                data = await stream.receive()
        assert json.loads(data)["error"]["class"] == "IdleTimeout"

    async def test_too_many_clients_are_refused_others_served(self, server: AdminServer) -> None:
        """Beyond max_clients new connections are refused while existing ones still work."""
        streams = [await anyio.connect_unix(server.socket_path) for _ in range(4)]
        with anyio.fail_after(60):  # wait until the server has admitted all four
            while server.statistics().connections_active < 4:
                await anyio.sleep(0.01)
        [reply] = await raw_exchange(server.socket_path, b'{"id":1,"cmd":"ping"}\n')
        assert reply["error"]["class"] == "Busy"
        await streams[0].send(b'{"id":2,"cmd":"ping"}\n')
        assert json.loads(await streams[0].receive())["ok"] is True
        for s in streams:
            await s.aclose()

    async def test_many_concurrent_clients(self, server: AdminServer) -> None:
        """Many clients one after another in parallel bursts all get answers."""
        results: list[bool] = []

        async def one() -> None:
            async with AdminClient(server.socket_path) as client:
                results.append((await client.request("ping"))["pong"])

        for _ in range(5):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(one)
        assert results == [True] * 20

    async def test_client_vanishing_midway_does_not_hurt(self, server: AdminServer) -> None:
        """A client that disconnects before reading its answer leaves the server healthy."""
        await raw_exchange(server.socket_path, b'{"id":1,"cmd":"ping"}\n', read=False)
        async with AdminClient(server.socket_path) as client:
            assert (await client.request("ping"))["pong"] is True


class TestPermissions:
    async def test_socket_and_directory_modes(self, server: AdminServer) -> None:
        """The socket is 0660 inside a 0750 directory."""
        assert stat.S_IMODE(server.socket_path.stat().st_mode) == 0o660
        assert stat.S_IMODE(server.socket_path.parent.stat().st_mode) == 0o750

    @pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another uid")
    async def test_peer_with_another_uid_is_refused(self) -> None:
        """SO_PEERCRED: a client running as another uid gets PermissionDenied."""
        # tmp_path's ancestors are 0700; the other uid needs a path it can traverse.
        base = Path(tempfile.mkdtemp(prefix="agentd-peer-", dir="/tmp"))
        base.chmod(0o711)
        try:
            admin = AdminServer(AdminConfig(), base / "run" / "admin.sock")
            async with serving(admin):
                # The file system would let the other uid in; only SO_PEERCRED stops it.
                os.chown(admin.socket_path.parent, -1, 65534)
                os.chown(admin.socket_path, -1, 65534)
                reply = await self._ping_as_nobody(admin.socket_path)
        finally:
            shutil.rmtree(base)
        assert reply["error"]["class"] == "PermissionDenied"

    async def _ping_as_nobody(self, socket_path: Path) -> dict[str, Any]:
        code = (
            "import os, socket, sys\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "print(s.recv(4096).decode())\n"  # refused at once, before any request
        )
        proc = await anyio.run_process([sys.executable, "-c", code, str(socket_path)],
                                       check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        reply: dict[str, Any] = json.loads(proc.stdout)
        return reply


class TestClient:
    async def test_no_daemon_is_a_clear_error(self, tmp_path: Path) -> None:
        """Connecting where no daemon listens raises DaemonNotRunningError."""
        with pytest.raises(DaemonNotRunningError):
            async with AdminClient(tmp_path / "nothing.sock", timeout=1):
                pass

    def test_parse_args_types_values(self) -> None:
        """key=value arguments become typed JSON values where they parse."""
        assert parse_args(["limit=10", "split=dev", 'ids=["a"]']) == {
            "limit": 10, "split": "dev", "ids": ["a"]}

    def test_parse_args_rejects_bare_words(self) -> None:
        """An argument without '=' is a usage error."""
        with pytest.raises(UsageError):
            parse_args(["oops"])

    def test_format_human_nests(self) -> None:
        """Human output indents nested mappings and joins scalar lists."""
        text = format_human({"queue": {"queued": 3}, "tags": ["a", "b"]})
        assert text == "queue:\n  queued: 3\ntags: a, b"

    def test_ctl_without_daemon_exits_2(self, tmp_path: Path) -> None:
        """`agentd ctl status` without a daemon prints one line and exits 2."""
        proc = subprocess.run(
            [sys.executable, "-m", "agentd", "ctl", "--socket", str(tmp_path / "x.sock"),
             "status"], capture_output=True, text=True, check=False)
        assert proc.returncode == 2
        assert "no agentd answers" in proc.stderr and "Traceback" not in proc.stderr


def test_socket_family_is_unix(tmp_path: Path) -> None:
    """Sanity: the platform supports SO_PEERCRED (Linux)."""
    assert hasattr(socket, "SO_PEERCRED")
