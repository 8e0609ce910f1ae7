"""systemd notify on a real datagram socket, and the state-directory lock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.daemon.notify import Notifier, watchdog_interval
from agentd.engine.lock import StateLock
from agentd.errors import AlreadyRunningError


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        sock.settimeout(2)
        yield sock


class TestNotifier:
    def test_messages_arrive_in_order(self, notify_socket: socket.socket) -> None:
        """READY, STATUS and STOPPING arrive as datagrams in the order sent."""
        n = Notifier(notify_socket.getsockname())
        n.ready("up")
        n.status("busy")
        n.stopping()
        n.close()
        got = [notify_socket.recv(4096).decode() for _ in range(3)]
        assert got == ["READY=1\nSTATUS=up", "STATUS=busy", "STOPPING=1"]

    def test_abstract_socket_address(self) -> None:
        """An address starting with '@' reaches an abstract-namespace socket."""
        name = f"agentd-test-{os.getpid()}"
        notifier = Notifier("@" + name)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind("\0" + name)
            sock.settimeout(2)
            assert notifier.send("WATCHDOG=1")
            notifier.close()
            assert sock.recv(100) == b"WATCHDOG=1"

    def test_unset_socket_is_a_no_op(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without NOTIFY_SOCKET nothing is sent and nothing raises."""
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
        assert Notifier().send("READY=1") is False

    def test_broken_socket_never_raises(self, tmp_path: Path) -> None:
        """A socket path that does not exist is reported as not sent, never raised."""
        notifier = Notifier(str(tmp_path / "gone.sock"))
        assert notifier.send("READY=1") is False
        notifier.close()

    def test_watchdog_interval_is_half_of_usec(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """WATCHDOG_USEC=10s gives a 5 s ping interval; a foreign WATCHDOG_PID disables it."""
        monkeypatch.setenv("WATCHDOG_USEC", "10000000")
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        assert watchdog_interval() == 5.0
        monkeypatch.setenv("WATCHDOG_PID", "1")
        assert watchdog_interval() is None


class TestStateLock:
    def test_second_holder_is_refused(self, tmp_path: Path) -> None:
        """A second process cannot take the lock while the first holds it."""
        lock = StateLock(tmp_path / "agentd.lock")
        lock.acquire()
        code = ("import sys; from pathlib import Path; from agentd.engine.lock import StateLock\n"
                "StateLock(Path(sys.argv[1])).acquire()")
        proc = subprocess.run([sys.executable, "-c", code, str(lock.path)],
                              capture_output=True, text=True, check=False)
        lock.release()
        assert proc.returncode != 0 and "AlreadyRunningError" in proc.stderr
        assert str(os.getpid()) in proc.stderr

    def test_lock_is_reusable_after_release(self, tmp_path: Path) -> None:
        """Releasing lets the next daemon start."""
        first = StateLock(tmp_path / "agentd.lock")
        first.acquire()
        with pytest.raises(AlreadyRunningError):
            StateLock(tmp_path / "agentd.lock").acquire()
        first.release()
        second = StateLock(tmp_path / "agentd.lock")
        second.acquire()
        second.release()
