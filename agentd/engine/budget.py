"""``RunBudget``: per-run caps on money and tokens (``agentd.yaml: budget``).

Every committed step charges its run with the step's ``usage`` (cost and prompt + completion
tokens). When a run reaches a cap the step committer pauses intake (``IntakeGate``): steps in
flight finish, no new episode starts, and ``ctl status`` shows the reason; ``ctl resume``
(after raising the cap with ``ctl reload``) goes on. The spend is durable: it is added up in
SQLite in each step's commit transaction (``run_spend``), so a restarted daemon or a resumed
run goes on from what the run has really spent, and the first step it commits past the cap
pauses intake again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentd.config import BudgetConfig
from agentd.engine.results import Spend


@dataclass
class RunBudget:
    """The caps and what each run active in this process has spent (its durable totals)."""

    config: BudgetConfig
    _runs: dict[str, Spend] = field(default_factory=dict)

    def observe(self, run_id: str, spend: Spend) -> str | None:
        """A run's totals after a commit; the reason when it is now at a cap, else ``None``."""
        self._runs[run_id] = spend
        return self.exceeded(run_id)

    def exceeded(self, run_id: str) -> str | None:
        spend = self._runs.get(run_id)
        if spend is None:
            return None
        cap_cost, cap_tokens = self.config.max_cost_usd, self.config.max_tokens
        if cap_cost is not None and spend.cost_usd >= cap_cost:
            return (f"budget: run {run_id} spent ${spend.cost_usd:.4f}, "
                    f"the cap is ${cap_cost:g} (budget.max_cost_usd)")
        if cap_tokens is not None and spend.tokens >= cap_tokens:
            return (f"budget: run {run_id} used {spend.tokens} tokens, "
                    f"the cap is {cap_tokens} (budget.max_tokens)")
        return None

    def statistics(self) -> dict[str, dict[str, float | int]]:
        return {run: {"cost_usd": round(s.cost_usd, 6), "tokens": s.tokens}
                for run, s in self._runs.items()}
