"""Fixtures for the sandbox tests: a real Sandbox with small, fast limits under tmp_path."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from agentd.config import SandboxConfig
from agentd.records import RunTests, SandboxResult, TestSpec
from agentd.sandbox import Sandbox

from ._helpers import FAST_LIMITS


@pytest.fixture
def jailer() -> str:
    """The backend under test; modules that run real attacks override it with ``JAILERS``."""
    return "bwrap"


@pytest.fixture
def config(jailer: str) -> SandboxConfig:
    return SandboxConfig(jailer=jailer, limits=FAST_LIMITS)  # type: ignore[arg-type]


@pytest.fixture
def sandbox(config: SandboxConfig, tmp_path: Path) -> Sandbox:
    return Sandbox(config, workspaces_dir=tmp_path / "ws", log_dir=tmp_path / "logs")


@pytest.fixture
def marker() -> str:
    """A unique word put in attack commands, to find leftover processes with pgrep."""
    return f"agentdmark{uuid.uuid4().hex[:12]}"


@pytest.fixture
def run_code(sandbox: Sandbox, marker: str) -> Callable[..., object]:
    """Run Python code in the jail as a task's test command (how a hostile test would)."""

    async def run(workspace: Path, code: str, timeout_s: float = 4.0) -> SandboxResult:
        spec = TestSpec(argv=["python", "-c", f"# {marker}\n{code}"], timeout_s=timeout_s)
        return await sandbox.apply_action(workspace, RunTests(), test_spec=spec)

    return run
