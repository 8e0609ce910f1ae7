"""A tiny Chrome DevTools Protocol client for headless Debian ``chromium``.

It speaks CDP over ``--remote-debugging-pipe``: chromium reads commands from fd 3 and writes
answers and events to fd 4, each a JSON object ended by a NUL byte. No websocket, no driver,
no new dependency. One page target is attached in flat mode; every call names its session.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe")
DEADLINE_S = 60.0  # a stuck browser fails the test instead of hanging it


def _high(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class CDPError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Browser:
    """One headless chromium with one page; ``close()`` ends the process."""

    def __init__(self, user_data_dir: Path, *, width: int = 1280, height: int = 1000) -> None:
        binary = shutil.which("chromium")
        if binary is None:
            raise CDPError("chromium is not installed (make browser-deps)")
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        # Above 9, so moving one end to fd 3 or 4 cannot overwrite the other before it moves.
        cmd_r, out_w = _high(cmd_r), _high(out_w)
        # bash (dash takes one-digit fds only) moves the pipe ends to the fds chromium
        # expects, then execs it.
        script = 'exec "$@" 3<&"$CDP_IN" 4>&"$CDP_OUT"'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, "bash", binary, *FLAGS, f"--user-data-dir={user_data_dir}",
             f"--window-size={width},{height}"],
            pass_fds=(cmd_r, out_w), env={**os.environ, "CDP_IN": str(cmd_r),
                                          "CDP_OUT": str(out_w)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self._next_id = 0
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable", session=self.session)
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                  "deviceScaleFactor": 1, "mobile": False}, session=self.session)

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._out_r, "rb", buffering=0) as f:
            while chunk := f.read(65536):
                buf += chunk
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    self._dispatch(json.loads(raw))

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._lock:
            if "id" in message and message["id"] in self._replies:
                self._replies[message["id"]].put(message)
            else:
                self.events.append(message)

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            box: queue.Queue[dict[str, Any]] = queue.Queue()
            self._replies[ident] = box
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        try:
            reply = box.get(timeout=DEADLINE_S)
        except queue.Empty:
            raise CDPError(f"{method}: no answer in {DEADLINE_S} s") from None
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    # ------------------------------------------------------------ page helpers

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                           session=self.session)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str) -> Any:
        """Poll ``expression`` until it is truthy (a page load, a navigation), or fail."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except CDPError:
                value = None  # the page is being replaced mid-navigation
            if value:
                return value
            time.sleep(0.05)
        raise CDPError(f"still false after {DEADLINE_S} s: {expression}")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", {"url": url}, session=self.session)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === "
                      "'complete'")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed + released) at the middle of the first match."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()")
        if box is None:
            raise CDPError(f"nothing matches {selector}")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"],
                      "button": "left", "clickCount": 1}, session=self.session)

    def screenshot(self) -> bytes:
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=self.session)
        return base64.b64decode(data["data"])

    def requested_urls(self) -> list[str]:
        with self._lock:
            return [e["params"]["request"]["url"] for e in self.events
                    if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:  # ask politely without waiting for an answer the browser may never send
            os.write(self._cmd_w, b'{"id": 0, "method": "Browser.close"}\0')
        except OSError:
            pass
        finally:
            os.close(self._cmd_w)
            try:
                self.proc.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
