"""The jailed sandbox: workspaces and model actions run confined (DESIGN.md §5).

``Sandbox`` is the public face; jail backends live side by side in ``jails/`` and the config
picks one in ``jails.select_jail``.
"""

from __future__ import annotations

from agentd.sandbox.sandbox import Applied, Sandbox
from agentd.sandbox.stats import JailReport, SandboxStatistics

__all__ = ["Applied", "JailReport", "Sandbox", "SandboxStatistics"]
