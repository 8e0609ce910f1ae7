"""The verifier: judges a workspace by behaviour, not bytes (docs/episode.md, "Verification").

``Verifier`` is the public face, shared by the engine (every writing step and every episode
end) and ``agentd verify``. Pure parts: ``syntax`` (parse, AST equivalence, statement units),
``regions`` (which statements an edit touched), ``measure`` (a workspace against its task),
``verdict`` (the checks and the decision); ``rules`` runs the task's rules in the jail.
"""

from __future__ import annotations

from agentd.verify.measure import Measure, TaskFacts, progress
from agentd.verify.verifier import Verifier

__all__ = ["Measure", "TaskFacts", "Verifier", "progress"]
