"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30
_MIN_INTERVAL_S = 0.1


class Progress:
    """``Progress("verify", total=n)``; ``advance()`` per item; ``close()`` ends the line.

    Redraws are throttled so a tight loop never spends its time writing to the terminal.
    """

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 enabled: bool | None = None, unit: str = "") -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.unit = unit
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._start = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self._enabled and now - self._last >= _MIN_INTERVAL_S:
            self._last = now
            self._draw()

    def render(self) -> str:
        """The current line (without carriage return)."""
        elapsed = time.monotonic() - self._start
        if not self.total:
            return f"{self.label} {self.done}{self.unit} {elapsed:5.1f}s"
        frac = min(1.0, self.done / self.total)
        bar = "#" * int(frac * _WIDTH)
        return (f"{self.label} [{bar:<{_WIDTH}}] {self.done}/{self.total}{self.unit} "
                f"{frac:4.0%} {elapsed:5.1f}s")

    def _draw(self) -> None:
        self._stream.write("\r" + self.render())
        self._stream.flush()

    def close(self) -> None:
        if self._enabled:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()
