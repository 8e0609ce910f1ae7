"""The intake gate: whether the engine leases new episodes, and why not.

The operator closes it (``ctl pause``), and so does the step committer when a run reaches a
budget cap; the dispatcher waits on it. Episodes already leased go on either way: a pause
stops intake, it does not cut steps short.
"""

from __future__ import annotations

import anyio

from agentd.logging import get_logger

log = get_logger(__name__)


class IntakeGate:
    """Open or paused with a reason; ``wait_open`` blocks while paused."""

    def __init__(self) -> None:
        self.reason = ""
        self._open = anyio.Event()
        self._open.set()

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    def pause(self, reason: str = "paused by the operator") -> None:
        if not self.paused:
            self._open = anyio.Event()
        self.reason = reason

    def pause_for_budget(self, reason: str) -> None:
        """A cap was reached: pause once (a later cap keeps the first reason)."""
        if not self.paused:
            log.warning("engine.budget_paused", reason=reason)
            self.pause(reason)

    def resume(self) -> None:
        self.reason = ""
        self._open.set()

    async def wait_open(self) -> None:
        await self._open.wait()
