"""Which of CPython's own test modules test a library module, as candidate ``TestSpec``s.

The fetched suite (catalog entry ``cpython-stdlib-tests``, the tree of ``Lib/test``) is
searched by name, most specific first: ``json/decoder.py`` → ``test_decoder``, then
``test_json/test_decoder.py``, ``test_json_decoder``, the whole ``test_json`` package. Only
candidates are made here; whether one really tests the module (passes on the gold, fails on
a mutant, in time) is decided in the jail by ``agentd.datasets.testspecs``.

A spec ships the test modules it runs, the helper modules of the suite they import (one
``test.X`` at a time, transitively, within ``max_support_bytes``) and the runner
(``agentd.datasets.testrunner``) as support files; ``test.support`` itself is the jailed
interpreter's own, the library version the corpus was taken from.
"""

from __future__ import annotations

import ast
import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agentd.records import TestSpec

RUNNER = "run_tests.py"
PACKAGE = "test"  # the suite's package name: its files ship under test/
_MAX_HELPERS = 64  # helper modules followed per spec, whatever their size


@dataclass(frozen=True)
class Candidate:
    """A spec that may test one module, and its name (the cache key of its validation)."""

    name: str  # e.g. ``test.test_json`` or ``test.test_asyncio.test_events``
    spec: TestSpec


@functools.cache
def runner_text() -> str:
    """The source of ``agentd.datasets.testrunner``, shipped as the spec's runner."""
    return (Path(__file__).parent / "testrunner.py").read_text(encoding="utf-8")


def name_variants(stem: str) -> list[str]:
    """``_pydecimal`` → ``_pydecimal``, ``pydecimal``, ``decimal`` (C-accelerated twins)."""
    out = [stem, stem.lstrip("_")]
    if out[1].startswith("py") and len(out[1]) > 2:
        out.append(out[1].removeprefix("py"))
    return [n for n in dict.fromkeys(out) if n]


class Suite:
    """The fetched test suite: turns a library path into candidate specs (blocking reads:
    call it from a worker thread)."""

    def __init__(self, tree: Path, *, timeout_s: float, max_support_bytes: int) -> None:
        self.tree = tree
        self.timeout_s = timeout_s
        self.max_support_bytes = max_support_bytes
        # rel path -> (text, suite modules it imports); bounded by the fetched tree's size
        self._files: dict[str, tuple[str, list[str]] | None] = {}

    def candidates(self, source_path: str, limit: int) -> list[Candidate]:
        """Up to ``limit`` distinct candidates for the library file ``source_path``."""
        out: dict[str, Candidate] = {}
        for entry, names in self._entries(source_path):
            key = " ".join(names)
            if key in out:
                continue
            spec = self._spec(entry, names)
            if spec is not None:
                out[key] = Candidate(key, spec)
            if len(out) >= limit:
                break
        return list(out.values())

    def _entries(self, source_path: str) -> Iterator[tuple[str, list[str]]]:
        """(suite entry to ship, test module names to run), most specific first."""
        parts = list(PurePosixPath(source_path).with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts:
            return
        top = parts[0]
        for stem in name_variants(parts[-1]):
            yield from self._module_or_package(f"test_{stem}")
        if len(parts) > 1:
            for stem in name_variants(parts[-1]):
                sub = f"test_{top}/test_{stem}.py"
                if (self.tree / sub).is_file():
                    yield sub, [_module_name(sub)]
            yield from self._module_or_package("test_" + "_".join(parts[:-1]))
            yield from self._module_or_package(f"test_{top}")

    def _module_or_package(self, stem: str) -> Iterator[tuple[str, list[str]]]:
        if (self.tree / f"{stem}.py").is_file():
            yield f"{stem}.py", [_module_name(f"{stem}.py")]
        elif (self.tree / stem / "__init__.py").is_file():
            tests = sorted(p.name for p in (self.tree / stem).glob("test_*.py") if p.is_file())
            if tests:
                yield f"{stem}/", [_module_name(f"{stem}/{t}") for t in tests]

    def _spec(self, entry: str, names: list[str]) -> TestSpec | None:
        files = {RUNNER: runner_text()}
        budget = self.max_support_bytes - len(files[RUNNER].encode("utf-8"))
        wanted = self._entry_files(entry, names)
        helpers = 0
        while wanted:
            rel = wanted.pop(0)
            key = f"{PACKAGE}/{rel}"
            if key in files:
                continue
            read = self._read(rel)
            if read is None:
                return None
            text, deps = read
            budget -= len(text.encode("utf-8"))
            if budget < 0:
                return None  # too big to carry in every task of the module
            files[key] = text
            for dep in deps:
                found = self._helper_files(dep)
                helpers += len(found)
                if helpers > _MAX_HELPERS:
                    return None
                wanted += [f for f in found if f"{PACKAGE}/{f}" not in files]
        argv = ["python", "-S", f"{{support}}/{RUNNER}", *names]
        return TestSpec(argv=argv, timeout_s=self.timeout_s, files=files)

    def _entry_files(self, entry: str, names: list[str]) -> list[str]:
        """The test modules to run and, inside a test package, its ``__init__`` and helpers
        (every module that is not itself a ``test_*`` module)."""
        if "/" not in entry:
            return [entry]
        package = entry.split("/", 1)[0]
        run = [n.removeprefix(f"{PACKAGE}.").replace(".", "/") + ".py" for n in names]
        return [*run, *self._package_helpers(package)]

    def _package_helpers(self, package: str) -> list[str]:
        root = self.tree / package
        return sorted(p.relative_to(self.tree).as_posix() for p in root.rglob("*.py")
                      if p.is_file() and not p.is_symlink() and not p.name.startswith("test_"))

    def _helper_files(self, module: str) -> list[str]:
        """The suite files behind ``test.<module>`` (a module, or a package's helpers)."""
        head = module.split(".", 1)[0]
        if head == "support":
            return []  # the interpreter's own (see the module docstring)
        rel = module.replace(".", "/")
        if (self.tree / f"{rel}.py").is_file():
            return [f"{rel}.py"]
        if (self.tree / head / "__init__.py").is_file():
            return self._package_helpers(head)
        return []

    def _read(self, rel: str) -> tuple[str, list[str]] | None:
        if rel not in self._files:
            self._files[rel] = self._load(rel)
        return self._files[rel]

    def _load(self, rel: str) -> tuple[str, list[str]] | None:
        path = self.tree / rel
        if path.is_symlink() or not path.is_file():
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return text, _suite_imports(text)


def _module_name(rel: str) -> str:
    return f"{PACKAGE}." + rel.removesuffix(".py").replace("/", ".")


def _suite_imports(text: str) -> list[str]:
    """Modules of the suite that ``text`` imports, as names below ``test.``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out: list[str] = []
    prefix = f"{PACKAGE}."
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name.removeprefix(prefix) for a in node.names if a.name.startswith(prefix)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == PACKAGE:
                out += [a.name for a in node.names]
            elif node.module.startswith(prefix):
                out.append(node.module.removeprefix(prefix))
    return sorted(set(out))
