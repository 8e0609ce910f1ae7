"""agentd: a daemon that collects verified trajectories for an ast-grep refactoring agent."""

from __future__ import annotations

__version__ = "0.1.0"
