"""Test specs from a test suite, validated in the real bwrap jail with the real interpreter:
attached only where the tests pass on the gold and fail on a mutant, kept through a task's
JSON round trip, and run by the verifier and by ``data verify``."""

from __future__ import annotations

import random
import sysconfig
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from agentd.config import SandboxConfig, TaskTestsConfig
from agentd.datasets.integrity import choose
from agentd.datasets.mutants import break_changed
from agentd.datasets.stdtests import RUNNER, Suite, runner_text
from agentd.datasets.testspecs import attach_specs, failfast
from agentd.datasets.verify import run_spec, verify_all
from agentd.records import AstGrepRule, Task, TaskMeta, TestSpec
from agentd.sandbox import Sandbox
from agentd.verify import Verifier

DATASET = "lib"
ALPHA = "def double(x):\n    return x * 2\n\n\ndef triple(x):\n    return x * 3\n"
SUITE = {
    # Tests double() only.
    "test_alpha.py": ("import unittest\nfrom alpha import double\n\n\n"
                      "class T(unittest.TestCase):\n    def test_double(self):\n"
                      "        self.assertEqual(double(4), 8)\n"),
    # Imports beta but checks nothing of it: its mutant passes, so it is no spec.
    "test_beta.py": ("import unittest\nimport beta\n\n\n"
                     "class T(unittest.TestCase):\n    def test_nothing(self):\n"
                     "        self.assertTrue(True)\n"),
    # Fails on the original module.
    "test_gamma.py": ("import unittest\nfrom gamma import g\n\n\n"
                      "class T(unittest.TestCase):\n    def test_g(self):\n"
                      "        self.assertEqual(g(), 2)\n"),
}
DOUBLE_GOLD = ALPHA.replace("x * 2", "2 * x")
MODULES = {"alpha.py": ALPHA, "beta.py": "def b():\n    return 1\n",
           "gamma.py": "def g():\n    return 1\n"}


def _task(name: str, path: str, gold: str, dataset: str = DATASET) -> Task:
    """A task on ``path``; its reference rule is the one that makes ``DOUBLE_GOLD``."""
    meta = TaskMeta(dataset, path, "recipe", "MIT", "0" * 64)
    rule = "id: r\nlanguage: python\nrule: {pattern: x * 2}\nfix: 2 * x\n"
    return Task(name, "", "python", "refactor", {path: MODULES[path]}, {path: gold},
                [AstGrepRule(rule_yaml=rule, paths=[path])], meta)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(SandboxConfig(), workspaces_dir=tmp_path / "ws", log_dir=tmp_path / "logs")


@pytest.fixture
def suite(tmp_path: Path) -> Suite:
    for rel, text in SUITE.items():
        (tmp_path / "suite" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "suite" / rel).write_text(text)
    return Suite(tmp_path / "suite", timeout_s=30, max_support_bytes=256 * 1024)


CONFIG = TaskTestsConfig(dataset=DATASET, max_seconds=20, timeout_s=30)


async def test_specs_are_attached_only_where_gold_passes_and_mutants_fail(
        sandbox: Sandbox, suite: Suite) -> None:
    tasks = [
        _task("edits-double", "alpha.py", DOUBLE_GOLD),
        _task("edits-untested", "alpha.py", ALPHA.replace("x * 3", "3 * x")),
        _task("breaks-double", "alpha.py", ALPHA.replace("x * 2", "x * 3")),
        _task("beta", "beta.py", "def b():\n    return 0 + 1\n"),
        _task("gamma", "gamma.py", "def g():\n    return 0 + 1\n"),
        _task("elsewhere", "alpha.py", DOUBLE_GOLD, dataset="other"),
    ]
    out, report = await attach_specs(sandbox, suite, CONFIG, tasks, MODULES, concurrency=2)
    with_spec = {t.task_id for t in out if t.test_spec is not None}
    assert with_spec == {"edits-double"}
    assert [t.task_id for t in out] == [t.task_id for t in tasks]
    assert report.modules == Counter({"with_spec": 1, "mutant_passes": 1, "fails": 1})
    assert report.tasks == Counter({"targeted": 1, "mutant_passes": 1, "fails": 1,
                                    "with_spec": 1})
    spec = out[0].test_spec
    assert spec is not None
    assert spec.argv == ["python", "-S", f"{{support}}/{RUNNER}", "test.test_alpha"]
    assert set(spec.files) == {RUNNER, "test/test_alpha.py"}
    assert spec.timeout_s == 30  # validation ran under max_seconds; the task keeps timeout_s


async def test_at_most_max_tasks_per_module_are_tried(sandbox: Sandbox, suite: Suite) -> None:
    tasks = [_task(f"t{i}", "alpha.py", DOUBLE_GOLD) for i in range(3)]
    config = CONFIG.model_copy(update={"max_tasks_per_module": 2})
    out, report = await attach_specs(sandbox, suite, config, tasks, MODULES, concurrency=2)
    assert [t.test_spec is not None for t in out] == [True, True, False]
    assert report.tasks["over_module_cap"] == 1


async def test_a_spec_survives_the_json_round_trip_and_judges_in_the_verifier(
        sandbox: Sandbox, suite: Suite) -> None:
    (task,), _ = await attach_specs(sandbox, suite, CONFIG,
                                    [_task("t", "alpha.py", DOUBLE_GOLD)], MODULES,
                                    concurrency=1)
    task = msgspec.json.decode(msgspec.json.encode(task), type=Task)
    assert task.test_spec is not None
    verifier = Verifier(sandbox)
    verdict = await verifier.verdict(task, {"alpha.py": DOUBLE_GOLD})
    checks = {c.name: c.ok for c in verdict.checks}
    assert verdict.accepted, verdict
    assert checks["tests"] and checks["unrelated_edit"]  # support files are no added files
    # The gold except that double() raises: only the tests can tell.
    mutant = break_changed(ALPHA, DOUBLE_GOLD)
    assert mutant is not None
    verdict = await verifier.verdict(task, {"alpha.py": mutant})
    assert not verdict.accepted
    assert verdict.decided_by == "tests", verdict


async def test_data_verify_runs_the_tests_of_tasks_that_have_them(
        sandbox: Sandbox, suite: Suite) -> None:
    (task,), _ = await attach_specs(sandbox, suite, CONFIG,
                                    [_task("t", "alpha.py", DOUBLE_GOLD)], MODULES,
                                    concurrency=1)
    assert task.test_spec is not None
    # A task whose gold no longer passes its tests (here: the shipped test changed).
    files = {**task.test_spec.files, "test/test_alpha.py": SUITE["test_alpha.py"].replace(
        "double(4), 8", "double(4), 9")}
    stale = msgspec.structs.replace(
        task, task_id="stale", test_spec=msgspec.structs.replace(task.test_spec, files=files))
    drops: Counter[str] = Counter()
    kept = await verify_all(sandbox, [task, stale], runs=1, concurrency=2, drops=drops)
    assert kept == [task]
    assert drops == Counter({"tests_failed": 1})


async def test_cpython_own_tests_check_the_workspace_copy_of_a_library_module(
        sandbox: Sandbox) -> None:
    """The real thing: Lib/bisect.py against Lib/test/test_bisect.py, through the overlay."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    if not (lib / "test" / "test_bisect.py").is_file():
        pytest.skip("this interpreter ships no Lib/test")
    text = (lib / "bisect.py").read_text()
    suite = Suite(lib / "test", timeout_s=60, max_support_bytes=512 * 1024)
    (cand, *_) = suite.candidates("bisect.py", 3)
    assert cand.name == "test.test_bisect"
    passed = await run_spec(sandbox, cand.spec, {"bisect.py": text}, "bisect")
    assert passed.passed, passed.stderr[-2000:]
    gold = text.replace("        lo = bisect_right(a, x, lo, hi)\n",
                        "        lo = bisect_right(a, x, lo, hi)  # where x goes\n", 1)
    mutant = break_changed(text, gold)
    assert gold != text and mutant is not None
    failed = await run_spec(sandbox, failfast(cand.spec), {"bisect.py": mutant}, "bisect")
    assert not failed.passed
    assert "agentd mutant" in failed.stderr


def test_data_verify_samples_tasks_with_tests_even_when_they_are_rare() -> None:
    plain = [_task(f"p{i}", "beta.py", "def b():\n    return 0 + 1\n") for i in range(50)]
    spec = TestSpec(argv=["python", "-c", "pass"])
    tested = [msgspec.structs.replace(_task(f"s{i}", "beta.py", "x = 1\n"), test_spec=spec)
              for i in range(3)]
    chosen = choose(plain + tested, 2, random.Random(1))
    assert sum(t.test_spec is not None for t in chosen) == 2
    assert len({t.task_id for t in chosen}) == len(chosen) <= 4


async def test_the_runner_serves_package_modules_from_the_workspace(sandbox: Sandbox) -> None:
    """A workspace holding only ``json/decoder.py`` (no ``__init__.py``) shadows that module
    inside the installed ``json`` package; the rest of the package stays the library's."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    decoder = (lib / "json" / "decoder.py").read_text() + "\nWORKSPACE_COPY = True\n"
    scanner = str(lib / "json" / "scanner.py")
    check = ("import os, unittest\nimport json, json.decoder, json.scanner\n\n\n"
             "class T(unittest.TestCase):\n    def test_overlay(self):\n"
             "        self.assertTrue(json.decoder.WORKSPACE_COPY)\n"
             "        self.assertEqual(json.loads('[1]'), [1])\n"
             f"        self.assertEqual(json.scanner.__file__, {scanner!r})\n"
             "        self.assertFalse(os.listdir('.'))  # tests run in a scratch directory\n")
    spec = TestSpec(argv=["python", "-S", f"{{support}}/{RUNNER}", "test.test_overlay"],
                    timeout_s=30, files={RUNNER: runner_text(), "test/test_overlay.py": check})
    result = await run_spec(sandbox, spec, {"json/decoder.py": decoder}, "overlay")
    assert result.passed, result.stderr[-2000:]
    plain = await run_spec(sandbox, spec, {"json/decoder.py": decoder.replace(
        "WORKSPACE_COPY = True", "WORKSPACE_COPY = False")}, "overlay")
    assert not plain.passed
