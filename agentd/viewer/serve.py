"""``agentd view --serve``: the site over HTTP on 127.0.0.1 only, until Ctrl-C.

A plain threaded ``http.server`` rooted at the site directory (it refuses paths outside it).
The viewer is a foreground command, not the daemon, so a blocking server is fine here.
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

from agentd.errors import UsageError

HOST = "127.0.0.1"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a viewer's page loads are not worth a line each."""


def make_server(root: Path, port: int) -> http.server.ThreadingHTTPServer:
    """A server bound to 127.0.0.1:``port`` (0: any free port) serving ``root``."""
    handler = functools.partial(_Handler, directory=str(root))
    try:
        return http.server.ThreadingHTTPServer((HOST, port), handler)
    except OSError as exc:
        raise UsageError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None


def serve(root: Path, port: int) -> None:
    """Serve until interrupted."""
    server = make_server(root, port)
    print(f"serving {root} on http://{HOST}:{server.server_address[1]}/  (Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
