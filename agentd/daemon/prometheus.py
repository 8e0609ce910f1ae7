"""Optional Prometheus text exposition on a loopback port (``metrics.prometheus_port``).

Deliberately tiny: one ``GET /metrics`` per connection, bounded request size and time, bound
to 127.0.0.1 only — the admin socket stays the control plane.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from anyio.abc import SocketStream, TaskStatus

from agentd.errors import ConfigError
from agentd.logging import get_logger

log = get_logger(__name__)
_MAX_REQUEST = 8192


async def serve_metrics(port: int, render: Callable[[], str], *,
                        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    try:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    except OSError as exc:
        raise ConfigError(f"metrics.prometheus_port: cannot listen on 127.0.0.1:{port}: "
                          f"{exc.strerror or exc}") from None
    log.info("metrics.listening", port=port)
    task_status.started()

    async def handle(stream: SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(5):
                    head = await _read_head(stream)
                    ok = head.startswith(b"GET /metrics ")
                    body = render().encode() if ok else b"not found\n"
                    status = b"200 OK" if ok else b"404 Not Found"
                    await stream.send(
                        b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; version=0.0.4"
                        b"\r\nConnection: close\r\nContent-Length: "
                        + str(len(body)).encode() + b"\r\n\r\n" + body)
            except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return

    await listener.serve(handle)


async def _read_head(stream: SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < _MAX_REQUEST:
        data += await stream.receive()
    return data
