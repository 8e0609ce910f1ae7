"""``agentd ctl``: the admin socket's client, human output by default, ``--json`` for scripts."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from agentd.config import load_settings
from agentd.errors import AdminError, DaemonNotRunningError, UsageError

_MAX_RESPONSE = 16 * 1024 * 1024
# Errors the daemon reports for a bad request: the caller's mistake, exit 2 like local ones.
_USAGE_ERRORS = frozenset({"UsageError", "ConfigError", "BadRequest", "UnknownCommand",
                           "RequestTooLarge", "ValueError", "TypeError", "KeyError"})


class AdminClient:
    """Async client for one admin connection: ``await client.request("status")``."""

    def __init__(self, socket_path: Path, *, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._stream: SocketStream | None = None
        self._reader: BufferedByteReceiveStream | None = None

    async def __aenter__(self) -> AdminClient:
        try:
            with anyio.fail_after(self.timeout):
                self._stream = await anyio.connect_unix(self.socket_path)
        except (FileNotFoundError, ConnectionRefusedError, TimeoutError):
            raise DaemonNotRunningError(
                f"no agentd answers on {self.socket_path} (is the daemon running?)"
            ) from None
        except PermissionError:
            raise UsageError(f"permission denied on {self.socket_path}") from None
        self._reader = BufferedByteReceiveStream(self._stream)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stream is not None:
            await self._stream.aclose()

    async def _send(self, cmd: str, args: dict[str, Any] | None) -> int:
        assert self._stream is not None
        req_id = next(self._ids)
        line = msgspec.json.encode({"id": req_id, "cmd": cmd, "args": args or {}}) + b"\n"
        await self._stream.send(line)
        return req_id

    async def _receive(self) -> dict[str, Any]:
        assert self._reader is not None
        try:
            line = await self._reader.receive_until(b"\n", _MAX_RESPONSE)
        except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError):
            raise DaemonNotRunningError("the daemon closed the connection") from None
        reply: dict[str, Any] = msgspec.json.decode(line)
        return reply

    async def request(self, cmd: str, args: dict[str, Any] | None = None) -> Any:
        """Send one command and return its result; raise ``AdminError`` on an error reply."""
        with anyio.fail_after(self.timeout):
            await self._send(cmd, args)
            return _unwrap(await self._receive())

    async def stream(self, cmd: str, args: dict[str, Any] | None = None) -> AsyncIterator[Any]:
        """Send a streaming command and yield its events until the daemon stops sending."""
        await self._send(cmd, args)
        while True:
            reply = await self._receive()
            if not reply.get("ok"):
                _unwrap(reply)
            yield reply.get("event")


def _unwrap(reply: dict[str, Any]) -> Any:
    if reply.get("ok"):
        return reply.get("result")
    err = reply.get("error") or {}
    error = AdminError(f"{err.get('class', 'Error')}: {err.get('message', '')}")
    error.remote_class = str(err.get("class", ""))
    raise error


def resolve_socket(explicit: Path | None, config: Path | None) -> Path:
    """``--socket``, else ``$AGENTD_SOCKET``, else the config's ``admin.socket``."""
    if explicit is not None:
        return explicit
    env = os.environ.get("AGENTD_SOCKET")
    if env:
        return Path(env)
    settings = load_settings(config)
    return settings.path(settings.agentd.admin.socket)


def parse_args(rest: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values that parse as JSON are typed (``limit=10``, ``ids=["a"]``)."""
    out: dict[str, Any] = {}
    for item in rest:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"expected key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def format_human(value: Any, indent: int = 0) -> str:
    """Indented ``key: value`` lines; lists of scalars on one line."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, dict | list) and v and not _scalar_list(v):
                lines.append(f"{pad}{k}:\n{format_human(v, indent + 1)}")
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
        return "\n".join(lines)
    if isinstance(value, list):
        return "\n".join(f"{pad}- {format_human(v, indent + 1).lstrip()}" for v in value)
    return f"{pad}{_scalar(value)}"


def _scalar_list(v: Any) -> bool:
    return isinstance(v, list) and all(not isinstance(x, dict | list) for x in v)


def _scalar(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or "[]"
    if isinstance(v, float):
        return f"{v:.4g}"
    return "{}" if v == {} else str(v)


async def _run(args: argparse.Namespace, socket_path: Path) -> int:
    cmd_args = parse_args(args.rest)
    async with AdminClient(socket_path, timeout=args.timeout) as client:
        if args.command == "tail":
            async for event in client.stream("tail", cmd_args):
                line = json.dumps(event) if args.json else format_event(event)
                print(line, flush=True)
            return 0
        result = await client.request(args.command, cmd_args)
    print(json.dumps(result, indent=2) if args.json else format_human(result))
    return 0


def format_event(event: dict[str, Any]) -> str:
    ts = str(event.get("ts", ""))[11:23]
    rest = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("ts", "level", "event"))
    return f"{ts} {event.get('level', ''):<7} {event.get('event', '')} {rest}".rstrip()


def ctl_command(args: argparse.Namespace) -> int:
    socket_path = resolve_socket(args.socket, args.config)
    try:
        return anyio.run(_run, args, socket_path)
    except AdminError as exc:
        print(f"agentd ctl {args.command}: {exc}", file=sys.stderr)
        return 2 if getattr(exc, "remote_class", "") in _USAGE_ERRORS else 1
    except TimeoutError:
        print(f"agentd ctl {args.command}: no answer within {args.timeout}s", file=sys.stderr)
        return 1
