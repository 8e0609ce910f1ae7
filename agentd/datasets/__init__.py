"""Datasets: catalog, secure fetch, safe extraction, recipes, verified tasks and splits.

The engine reads tasks with ``load_tasks(tasks_path(settings, split))``; everything else
here runs behind ``agentd data fetch|build|stats|verify`` (handlers in ``agentd.cli.data``).
"""

from __future__ import annotations

from agentd.datasets.store import corpus_version, load_tasks, tasks_path, write_tasks

__all__ = ["corpus_version", "load_tasks", "tasks_path", "write_tasks"]
