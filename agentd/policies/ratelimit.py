"""``RateLimiter``: stay under an endpoint's requests-per-minute and tokens-per-minute limits.

Two token buckets, refilled continuously (a full bucket is one minute's allowance, so a burst
never exceeds what the provider allows per minute). A request takes one request and its
estimated tokens (prompt estimate plus the reserved ``max_tokens``) before it is sent and
waits, in arrival order, while either bucket is short; ``settle`` corrects the estimate with
the usage the server reported. The clock and the sleep are injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Bucket:
    capacity: float
    level: float
    per_s: float

    def refill(self, elapsed: float) -> None:
        self.level = min(self.capacity, self.level + elapsed * self.per_s)

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is available (0 when it is now)."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing / self.per_s


class RateLimiter:
    """Requests and tokens per minute; ``None`` for a limit that does not apply."""

    def __init__(
        self, *, rpm: int | None, tpm: int | None, clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self._requests = _Bucket(rpm, rpm, rpm / 60) if rpm else None
        self._tokens = _Bucket(tpm, tpm, tpm / 60) if tpm else None
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = anyio.Lock()
        self.waited_s = 0.0  # total time requests spent waiting here (for statistics)

    @property
    def active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    async def acquire(self, tokens: int) -> None:
        """Wait until one request and ``tokens`` tokens fit, then take them."""
        if not self.active:
            return
        async with self._lock:  # one waiter at a time: arrival order, no thundering herd
            while (wait := self._wait(tokens)) > 0:
                self.waited_s += wait
                await self._sleep(wait)
            self._take(tokens)

    def settle(self, estimated: int, actual: int) -> None:
        """Give back (or charge) the difference between the estimate and the real usage."""
        if self._tokens is not None and actual > 0:
            self._tokens.level = min(self._tokens.capacity,
                                     self._tokens.level + estimated - actual)

    def _wait(self, tokens: int) -> float:
        now = self._clock()
        elapsed, self._last = max(0.0, now - self._last), now
        waits = [0.0]
        if self._requests is not None:
            self._requests.refill(elapsed)
            waits.append(self._requests.wait_for(1))
        if self._tokens is not None:
            self._tokens.refill(elapsed)
            waits.append(self._tokens.wait_for(min(tokens, self._tokens.capacity)))
        return max(waits)

    def _take(self, tokens: int) -> None:
        if self._requests is not None:
            self._requests.level -= 1
        if self._tokens is not None:
            self._tokens.level -= min(tokens, self._tokens.capacity)
