"""The admin socket: newline-delimited JSON requests on a Unix socket.

``{"id": 1, "cmd": "status", "args": {}}`` → ``{"id": 1, "ok": true, "result": {…}}`` or
``{"id": 1, "ok": false, "error": {"class": "…", "message": "…"}}``. Streaming commands (``tail``)
answer with one ``{"id": …, "ok": true, "event": {…}}`` line per event until the client leaves.

Every client is hostile until proven otherwise: peers are checked with ``SO_PEERCRED`` (root,
the daemon's uid, or a member of the configured admin group); requests over the size cap,
malformed JSON, unknown commands, idle or half-open clients and too many clients each get an
error or are dropped, and the others keep being served.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from agentd.config import AdminConfig
from agentd.errors import AdminError, AgentdError, ConfigError
from agentd.logging import get_logger

log = get_logger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
StreamHandler = Callable[[dict[str, Any]], AsyncIterator[Any]]
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class AdminCommand:
    name: str
    help: str
    handler: Handler | None = None
    stream: StreamHandler | None = None


@dataclass(frozen=True)
class AdminStatistics:
    socket: str
    connections_total: int
    connections_active: int
    requests: int
    errors: int
    refused: int


@dataclass(frozen=True)
class PeerCred:
    pid: int
    uid: int
    gid: int


class _Refused(AdminError):
    def __init__(self, cls: str, message: str) -> None:
        super().__init__(message)
        self.cls = cls


def peer_cred(stream: SocketStream) -> PeerCred:
    raw: socket.socket = stream.extra(SocketAttribute.raw_socket)
    data = raw.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", data)
    return PeerCred(pid, uid, gid)


def _group_members(group: str) -> tuple[int, set[str]]:
    entry = grp.getgrnam(group)
    return entry.gr_gid, set(entry.gr_mem)


class AdminServer:
    """Serves the command table on ``socket_path`` until cancelled."""

    def __init__(self, config: AdminConfig, socket_path: Path) -> None:
        self.config = config
        self.socket_path = socket_path
        self._commands: dict[str, AdminCommand] = {}
        self._active = 0
        self._counts = {"connections": 0, "requests": 0, "errors": 0, "refused": 0}
        self._admin_gid: int | None = None
        self._admin_members: set[str] = set()
        self.register("ping", "liveness check", self._ping)
        self.register("help", "list the commands", self._help)

    # ---------------------------------------------------------------- command table

    def register(self, name: str, help_: str, handler: Handler) -> None:
        self._commands[name] = AdminCommand(name, help_, handler=handler)

    def register_stream(self, name: str, help_: str, stream: StreamHandler) -> None:
        self._commands[name] = AdminCommand(name, help_, stream=stream)

    async def _ping(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True, "pid": os.getpid()}

    async def _help(self, _: dict[str, Any]) -> dict[str, str]:
        return {name: cmd.help for name, cmd in sorted(self._commands.items())}

    def statistics(self) -> AdminStatistics:
        c = self._counts
        return AdminStatistics(str(self.socket_path), c["connections"], self._active,
                               c["requests"], c["errors"], c["refused"])

    # ---------------------------------------------------------------- serving

    def _prepare_path(self) -> None:
        directory = self.socket_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o750)
        # We hold the state lock, so a socket file left here is from a dead daemon.
        if self.socket_path.exists() or self.socket_path.is_symlink():
            self.socket_path.unlink()
        if self.config.admin_group:
            try:
                self._admin_gid, self._admin_members = _group_members(self.config.admin_group)
            except KeyError:
                log.warning("admin.group_unknown", group=self.config.admin_group)

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind (0660 socket in a 0750 directory), report started, then serve forever."""
        try:
            self._prepare_path()
            listener = await anyio.create_unix_listener(self.socket_path, mode=0o660)
        except OSError as exc:
            raise ConfigError(f"admin.socket: cannot listen on {self.socket_path}: "
                              f"{exc.strerror or exc}") from None
        if self._admin_gid is not None:
            os.chown(self.socket_path.parent, -1, self._admin_gid)
            os.chown(self.socket_path, -1, self._admin_gid)
        log.info("admin.listening", socket=str(self.socket_path))
        task_status.started()
        try:
            await listener.serve(self._handle)
        finally:
            await listener.aclose()
            self.socket_path.unlink(missing_ok=True)

    def _allowed(self, cred: PeerCred) -> bool:
        if cred.uid in (0, os.getuid()):
            return True
        if self._admin_gid is None:
            return False
        if cred.gid == self._admin_gid:
            return True
        try:
            return pwd.getpwuid(cred.uid).pw_name in self._admin_members
        except KeyError:
            return False

    async def _handle(self, stream: SocketStream) -> None:
        try:
            await self._handle_client(stream)
        except Exception as exc:  # one broken client must never stop the listener
            log.error("admin.client_crashed", error=repr(exc))

    async def _handle_client(self, stream: SocketStream) -> None:
        self._counts["connections"] += 1
        async with stream:
            try:
                self._admit(stream)
            except _Refused as exc:
                self._counts["refused"] += 1
                await self._send_quietly(stream, _error(None, exc.cls, str(exc)))
                return
            self._active += 1
            try:
                await self._session(stream)
            finally:
                self._active -= 1

    def _admit(self, stream: SocketStream) -> None:
        if self._active >= self.config.max_clients:
            raise _Refused("Busy", f"too many admin clients (max {self.config.max_clients})")
        cred = peer_cred(stream)
        if not self._allowed(cred):
            log.warning("admin.refused", uid=cred.uid, pid=cred.pid)
            raise _Refused("PermissionDenied", f"uid {cred.uid} may not use the admin socket")

    async def _session(self, stream: SocketStream) -> None:
        reader = BufferedByteReceiveStream(stream)
        while True:
            try:
                line = await self._read_line(reader)
            except _Refused as exc:
                self._counts["errors"] += 1
                await self._send_quietly(stream, _error(None, exc.cls, str(exc)))
                return
            if line is None:
                return
            if not line.strip():
                continue
            if not await self._answer(stream, line):
                return

    async def _read_line(self, reader: BufferedByteReceiveStream) -> bytes | None:
        limit = self.config.max_request_bytes
        try:
            with anyio.fail_after(self.config.idle_timeout_s):
                line = await reader.receive_until(b"\n", limit)
        except TimeoutError:
            raise _Refused("IdleTimeout", "no complete request in time; closing") from None
        except anyio.DelimiterNotFound:
            raise _Refused("RequestTooLarge", f"request over {limit} bytes") from None
        except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            return None
        # A long line that arrived in one chunk is returned whole by receive_until.
        if len(line) > limit:
            raise _Refused("RequestTooLarge", f"request over {limit} bytes")
        return line

    async def _answer(self, stream: SocketStream, line: bytes) -> bool:
        """Answer one request; False when the connection should close."""
        self._counts["requests"] += 1
        try:
            req_id, command, args = self._parse(line)
        except _Refused as exc:
            self._counts["errors"] += 1
            return await self._send_quietly(stream, _error(None, exc.cls, str(exc)))
        if command.stream is not None:
            await self._stream(stream, req_id, command.stream, args)
            return False
        return await self._send_quietly(stream, await self._call(req_id, command, args))

    def _parse(self, line: bytes) -> tuple[Any, AdminCommand, dict[str, Any]]:
        try:
            req = msgspec.json.decode(line)
        except msgspec.DecodeError:
            raise _Refused("BadRequest", "request is not valid JSON") from None
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            raise _Refused("BadRequest", 'expected {"id": …, "cmd": "…", "args": {…}}')
        args = req.get("args") or {}
        if not isinstance(args, dict):
            raise _Refused("BadRequest", "args must be an object")
        command = self._commands.get(req["cmd"])
        if command is None:
            known = ", ".join(sorted(self._commands))
            name = req["cmd"][:64]
            raise _Refused("UnknownCommand", f"unknown command {name!r} (known: {known})")
        return req.get("id"), command, args

    async def _call(self, req_id: Any, command: AdminCommand, args: dict[str, Any]) -> bytes:
        assert command.handler is not None
        try:
            result = await command.handler(args)
            return _encode({"id": req_id, "ok": True, "result": result})
        except (AgentdError, ValueError, TypeError, KeyError) as exc:
            self._counts["errors"] += 1
            return _error(req_id, type(exc).__name__, str(exc))
        except Exception as exc:  # a bug in a handler must not take the daemon down
            self._counts["errors"] += 1
            log.error("admin.handler_crashed", cmd=command.name, error=repr(exc))
            return _error(req_id, "InternalError", f"{type(exc).__name__}: {exc}")

    async def _stream(self, stream: SocketStream, req_id: Any, handler: StreamHandler,
                      args: dict[str, Any]) -> None:
        events = handler(args)
        try:
            async for event in events:
                if not await self._send_quietly(stream, _encode({"id": req_id, "ok": True,
                                                                  "event": event})):
                    return
        except AgentdError as exc:
            await self._send_quietly(stream, _error(req_id, type(exc).__name__, str(exc)))
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _send_quietly(self, stream: SocketStream, data: bytes) -> bool:
        """Send, giving up on clients that do not read (half-open) or went away."""
        try:
            with anyio.fail_after(self.config.idle_timeout_s):
                await stream.send(data)
        except (TimeoutError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return False
        return True


def _encode(obj: Any) -> bytes:
    try:
        return _encoder.encode(obj) + b"\n"
    except (TypeError, msgspec.EncodeError) as exc:
        raise AdminError(f"result is not JSON-serialisable: {exc}") from exc


def _error(req_id: Any, cls: str, message: str) -> bytes:
    return _encode({"id": req_id, "ok": False, "error": {"class": cls, "message": message}})
