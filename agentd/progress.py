"""Progress for long work: a redrawn bar on a terminal, a plain line now and then elsewhere.

Off a terminal (systemd, CI, a pipe) a line every ``plain_interval_s`` keeps long work visibly
alive without flooding the log; ``close()`` prints the final state there only when a line was
already printed, so short work (a small download before its error line) stays quiet.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 28
_MIN_INTERVAL_S = 0.1


class Progress:
    """``Progress("verify", total=n)``; ``advance()`` per item (or ``update``); ``close()``."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 enabled: bool | None = None, unit: str = "",
                 plain_interval_s: float = 10.0) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.unit = unit
        self.detail = ""
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._enabled = True if enabled is None else enabled
        self._interval = _MIN_INTERVAL_S if self._tty else plain_interval_s
        self._start = self._last = time.monotonic()
        self._drawn = False

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def update(self, done: int, *, total: int | None = None, detail: str | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if detail is not None:
            self.detail = detail
        now = time.monotonic()
        if self._enabled and now - self._last >= self._interval:
            self._last = now
            self._draw()

    def render(self) -> str:
        """The current line (without carriage return)."""
        elapsed = time.monotonic() - self._start
        tail = f" | {self.detail}" if self.detail else ""
        if not self.total:
            return f"{self.label} {self.done}{self.unit} {elapsed:5.1f}s{tail}"
        frac = min(1.0, self.done / self.total)
        bar = "#" * int(frac * _WIDTH)
        return (f"{self.label} [{bar:<{_WIDTH}}] {self.done}/{self.total}{self.unit} "
                f"{frac:4.0%} {elapsed:5.1f}s{tail}")

    def _draw(self) -> None:
        self._drawn = True
        line = self.render()
        self._stream.write(f"\r{line}\033[K" if self._tty else line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._enabled and (self._tty or self._drawn):
            self._draw()
            if self._tty:
                self._stream.write("\n")
            self._stream.flush()
