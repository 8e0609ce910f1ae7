"""systemd notify protocol without libsystemd: datagrams to ``$NOTIFY_SOCKET``.

Best effort by contract: an unset, missing or broken socket is logged at debug and ignored —
a daemon must never fail because its supervisor went away.
"""

from __future__ import annotations

import os
import socket

import anyio

from agentd.logging import get_logger

log = get_logger(__name__)


class Notifier:
    """Sends ``READY=1``, ``STATUS=…``, ``WATCHDOG=1`` and ``STOPPING=1``."""

    def __init__(self, address: str | None = None) -> None:
        raw = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        # A leading '@' names a socket in the abstract namespace (a NUL byte on the wire).
        self._address = "\0" + raw[1:] if raw.startswith("@") else raw
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, message: str) -> bool:
        """Send one message; returns whether it was sent. Never raises."""
        if not self._address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:
            log.debug("notify.failed", message=message.split("=", 1)[0], error=str(exc))
            return False
        return True

    def ready(self, status: str = "") -> None:
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def stopping(self, status: str = "") -> None:
        self.send("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval() -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, when the watchdog is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000


async def run_watchdog(notifier: Notifier, interval: float) -> None:
    """Pet the watchdog from an event-loop task: a stuck loop stops the pings, as it should."""
    while True:
        notifier.send("WATCHDOG=1")
        await anyio.sleep(interval)
