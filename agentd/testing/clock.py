"""A clock for tests: time moves only when the test says so."""

from __future__ import annotations


class FakeClock:
    """A stand-in for ``time.monotonic`` that components take as their ``clock``."""

    def __init__(self, start: float = 1024.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
