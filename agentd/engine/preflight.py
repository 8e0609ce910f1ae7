"""Before the daemon or ``agentd run`` opens anything: can every configured path be used?

Each problem is a ``ConfigError`` naming the config key and the path (one line, exit 2),
instead of a traceback from deep inside the engine, the writer or the admin socket — or, for
a trajectories directory that cannot be written, a daemon that starts and fails later.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from agentd.config import Settings
from agentd.errors import ConfigError

# sockaddr_un.sun_path is 108 bytes, the terminating NUL included.
MAX_SOCKET_PATH = 107


def writable_dir(path: Path, key: str) -> None:
    """``path`` exists (created if need be) as a directory we can write."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{key}: cannot create {path}: {exc.strerror}") from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}: {path} is not a writable directory")


def check_file_target(path: Path, key: str) -> None:
    """``path`` can be a file: not a directory, and its directory is writable."""
    if path.is_dir():
        raise ConfigError(f"{key}: {path} is a directory, not a file")
    writable_dir(path.parent, key)


def check_socket_path(path: Path, key: str = "admin.socket") -> None:
    """The admin socket's path fits a ``sockaddr_un`` and its directory can be made."""
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH:
        raise ConfigError(f"{key}: {path} is {size} bytes; a Unix socket path may have at "
                          f"most {MAX_SOCKET_PATH}")
    check_file_target(path, key)


def check_port(port: int | None, key: str = "metrics.prometheus_port") -> None:
    """The port is free on loopback right now (bound and released at once)."""
    if port is None:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigError(f"{key}: cannot listen on 127.0.0.1:{port}: "
                              f"{exc.strerror}") from None


def preflight(settings: Settings, *, socket_path: Path | None = None) -> None:
    """Every path the engine (and, with ``socket_path``, the daemon) will write."""
    paths = settings.agentd.paths
    for key in ("state_dir", "workspaces", "trajectories", "logs"):
        writable_dir(settings.path(getattr(paths, key)), f"paths.{key}")
    check_file_target(settings.path(paths.database), "paths.database")
    check_file_target(settings.path(paths.lock_file), "paths.lock_file")
    check_file_target(settings.path(settings.agentd.logging.file), "logging.file")
    if socket_path is not None:
        check_socket_path(socket_path)
        check_port(settings.agentd.metrics.prometheus_port)
