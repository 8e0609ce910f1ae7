"""The package table of DESIGN.md §2, checked against the imports the code really makes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agentd.errors import AgentdError

AGENTD = Path(__file__).resolve().parent.parent / "agentd"
BASE = frozenset({"agentd", "config", "errors", "logging", "fileio", "metrics", "progress",
                  "profiles"})
RECORDS = BASE | {"records"}
ENGINE = RECORDS | {"sandbox", "datasets", "verify", "state", "policies", "trajectories",
                   "episode"}
# What each package may import (besides itself). A package imports only rows above it.
ALLOWED: dict[str, frozenset[str]] = {
    **dict.fromkeys(BASE, BASE),
    "records": frozenset({"agentd"}),
    "sandbox": RECORDS,
    "datasets": RECORDS | {"sandbox"},
    "verify": RECORDS | {"sandbox"},
    "state": BASE,
    "policies": RECORDS,
    "trajectories": RECORDS,
    "episode": RECORDS | {"sandbox", "datasets", "verify", "state", "policies",
                          "trajectories"},
    "engine": ENGINE,
    "daemon": ENGINE | {"engine"},
    "exports": RECORDS | {"trajectories", "episode"},
    "reports": RECORDS | {"trajectories", "datasets", "exports", "state", "engine"},
    "viewer": RECORDS | {"trajectories", "exports"},
    "testing": RECORDS | {"sandbox", "datasets", "verify", "state", "policies", "trajectories",
                          "episode", "engine", "daemon", "exports", "reports", "viewer", "cli"},
    # The top row: the command handlers (the rest are imported lazily by name).
    "cli": ENGINE | {"engine", "daemon", "exports", "reports", "viewer"},
    "__main__": frozenset({"cli"}),
}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__init__" else "agentd"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(_package(n) for n in names if n == "agentd" or n.startswith("agentd."))
    return found


def _modules() -> list[Path]:
    return sorted(AGENTD.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(AGENTD)))
def test_imports_only_rows_above(path: Path) -> None:
    """Each module imports only the packages its row of the table allows."""
    package = _package(".".join(("agentd", *path.relative_to(AGENTD).with_suffix("").parts)))
    wrong = _imports(path) - ALLOWED[package] - {package}
    assert not wrong, f"{path.relative_to(AGENTD)} ({package}) imports {sorted(wrong)}"


def test_daemon_code_never_imports_testing() -> None:
    """agentd.testing is for tests and benchmarks; no production module reaches it."""
    offenders = [p for p in _modules() if "testing" in _imports(p)
                 and p.relative_to(AGENTD).parts[0] != "testing"]
    assert offenders == []


def _exception_classes(path: Path) -> list[tuple[str, list[str]]]:
    classes = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if node.name.endswith(("Error", "Rejected", "Exception")) or any(
                    b in ("Exception", "ValueError", "RuntimeError", "OSError") for b in bases):
                classes.append((node.name, bases))
    return classes


def test_every_exception_derives_from_agentd_error() -> None:
    """One exception root: every exception class the package defines is an AgentdError."""
    import importlib

    outside = []
    for path in _modules():
        if path.relative_to(AGENTD).parts[0] in ("testing", "__main__.py"):
            continue
        module = importlib.import_module(
            ".".join(("agentd", *path.relative_to(AGENTD).with_suffix("").parts)).removesuffix(
                ".__init__"))
        for name, _ in _exception_classes(path):
            cls = getattr(module, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException) and not issubclass(
                    cls, AgentdError):
                outside.append(f"{module.__name__}.{name}")
    assert outside == []


def test_the_runner_takes_no_callback_into_the_engine() -> None:
    """The runner is wired with typed parts (Protocols, an Event), never with a function."""
    import dataclasses
    import typing

    from agentd.engine.engine import Engine
    from agentd.engine.submission import SubmitRequest
    from agentd.episode import runner, wiring

    hints = typing.get_type_hints(runner.EpisodeRunner)
    fields = {f.name: hints[f.name] for f in dataclasses.fields(runner.EpisodeRunner)}
    callables = [name for name, hint in fields.items() if "Callable" in repr(hint)]
    assert callables == []
    assert fields["committer"] is wiring.StepCommitter
    assert typing.get_type_hints(Engine.submit)["req"] is SubmitRequest
