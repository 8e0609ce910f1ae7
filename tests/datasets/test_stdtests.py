"""Which suite modules are candidate tests of a library module, and what a spec ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.datasets.stdtests import RUNNER, Suite, name_variants

TREE = {
    "test_decoder.py": "import unittest\n",
    "test_json/__init__.py": "from test import support\n",
    "test_json/test_decoder.py": "from test.test_json import PyTest\n",
    "test_json/test_encoder.py": "from test.test_json import PyTest\n",
    "test_json/helpers.py": "X = 1\n",
    "test_bisect.py": "from test import seq_tests\nfrom test.support import import_helper\n",
    "seq_tests.py": "import unittest\n",
    "test_decimal.py": "import unittest\n",
}


@pytest.fixture
def suite(tmp_path: Path) -> Suite:
    for rel, text in TREE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return Suite(tmp_path, timeout_s=60, max_support_bytes=64 * 1024)


def test_most_specific_candidates_come_first(suite: Suite) -> None:
    names = [c.name for c in suite.candidates("json/decoder.py", 5)]
    assert names == ["test.test_decoder", "test.test_json.test_decoder",
                     "test.test_json.test_decoder test.test_json.test_encoder"]
    assert [c.name for c in suite.candidates("json/decoder.py", 1)] == ["test.test_decoder"]
    assert [c.name for c in suite.candidates("_pydecimal.py", 5)] == ["test.test_decimal"]
    assert suite.candidates("nothing/here.py", 5) == []


def test_a_spec_ships_its_package_helpers_and_imported_suite_modules(suite: Suite) -> None:
    (_, sub, _) = suite.candidates("json/decoder.py", 5)
    assert set(sub.spec.files) == {RUNNER, "test/test_json/test_decoder.py",
                                   "test/test_json/__init__.py", "test/test_json/helpers.py"}
    (bisect,) = suite.candidates("bisect.py", 5)
    # test.support is the interpreter's own; the suite's other helpers travel with the spec.
    assert set(bisect.spec.files) == {RUNNER, "test/test_bisect.py", "test/seq_tests.py"}
    assert bisect.spec.argv == ["python", "-S", f"{{support}}/{RUNNER}", "test.test_bisect"]


def test_a_spec_over_the_support_budget_is_no_candidate(tmp_path: Path) -> None:
    (tmp_path / "test_big.py").write_text("x = 1\n" * 20_000)
    assert Suite(tmp_path, timeout_s=60, max_support_bytes=64 * 1024).candidates(
        "big.py", 3) == []


def test_name_variants() -> None:
    assert name_variants("_pydecimal") == ["_pydecimal", "pydecimal", "decimal"]
    assert name_variants("os") == ["os"]
