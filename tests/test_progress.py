"""Progress lines: throttled off a terminal, always a final line."""

from __future__ import annotations

import io

from agentd.progress import Progress


class TestProgress:
    def test_short_work_off_a_terminal_stays_quiet(self) -> None:
        """Off a terminal, work shorter than the interval prints nothing, even on close."""
        out = io.StringIO()
        bar = Progress("verify", total=4, stream=out, plain_interval_s=3600)
        for _ in range(4):
            bar.advance()
        bar.close()
        assert out.getvalue() == ""

    def test_plain_stream_prints_periodically(self) -> None:
        """With a zero interval every update is a full line (no carriage returns)."""
        out = io.StringIO()
        bar = Progress("episodes", total=2, stream=out, plain_interval_s=0)
        bar.update(1, detail="3 steps")
        bar.update(2)
        bar.close()
        lines = out.getvalue().splitlines()
        assert len(lines) == 3 and lines[0].startswith("episodes [") and "3 steps" in lines[0]
        assert "2/2" in lines[-1] and "\r" not in out.getvalue()

    def test_disabled_prints_nothing(self) -> None:
        """--no-progress: not even the final line."""
        out = io.StringIO()
        bar = Progress("x", total=1, stream=out, enabled=False, plain_interval_s=0)
        bar.advance()
        bar.close()
        assert out.getvalue() == ""
