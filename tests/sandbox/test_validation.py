"""Unit tests: everything refused before a process starts (paths, rules, sizes)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from agentd.records import AstGrepRule, AstGrepRun, AstGrepSearch, RunTests, TestSpec
from agentd.sandbox.paths import ActionRejected, check_paths, check_relative
from agentd.sandbox.plans import plan_action
from agentd.sandbox.rules import MAX_DEPTH, RuleRejected, parse_rules, render_rules

from ._helpers import FAST_LIMITS

GOOD_RULE = "id: plus-two\nlanguage: python\nrule:\n  pattern: $A + 1\nfix: $A + 2\n"
BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def kind_of(fn: object, *args: object) -> str:
    with pytest.raises(ActionRejected) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.kind


class TestRelativePaths:
    @pytest.mark.parametrize("raw", ["/etc/passwd", "../x", "a/../../x", "a/.."])
    def test_escapes(self, raw: str) -> None:
        """Absolute paths and '..' are path escapes."""
        assert kind_of(check_relative, raw) == "path_escape"

    @pytest.mark.parametrize("raw", ["-rf", "--update-all", "./-x", "a\nb.py", "a\x00b", "",
                                     "x" * 2000, "a\rb"])
    def test_malformed(self, raw: str) -> None:
        """Leading '-', NUL, line breaks, empty and huge paths are invalid."""
        assert kind_of(check_relative, raw) == "invalid_action"

    def test_normalises(self) -> None:
        """'./a//b' is 'a/b'."""
        assert check_relative("./a//b") == PurePosixPath("a/b")


class TestPathsInWorkspace:
    def test_symlink_component_is_escape(self, tmp_path: Path) -> None:
        """A path through a symlink (file or directory) is refused."""
        (tmp_path / "dir").symlink_to("/etc")
        (tmp_path / "f.py").symlink_to("/etc/hostname")
        assert kind_of(check_paths, tmp_path, ["dir/passwd"]) == "path_escape"
        assert kind_of(check_paths, tmp_path, ["f.py"]) == "path_escape"

    def test_missing_path(self, tmp_path: Path) -> None:
        """A path that does not exist is an invalid action."""
        assert kind_of(check_paths, tmp_path, ["nope.py"]) == "invalid_action"

    def test_default_and_sorted(self, tmp_path: Path) -> None:
        """No paths means the workspace; given paths are de-duplicated and sorted."""
        (tmp_path / "b.py").write_text("")
        (tmp_path / "a.py").write_text("")
        assert check_paths(tmp_path, None) == ["."]
        assert check_paths(tmp_path, ["b.py", "./a.py", "b.py"]) == ["a.py", "b.py"]

    def test_too_many_paths(self, tmp_path: Path) -> None:
        """More than 64 path arguments are refused."""
        assert kind_of(check_paths, tmp_path, ["a"] * 65) == "invalid_action"


class TestRules:
    def test_good_rule_round_trips(self) -> None:
        """A plain rule is accepted and rendered as JSON documents."""
        docs = parse_rules(GOOD_RULE)
        assert docs[0]["fix"] == "$A + 2"
        assert render_rules(docs).startswith('{"fix": "$A + 2", "id": "plus-two"')

    def test_billion_laughs(self) -> None:
        """Anchors and aliases are refused before anything is expanded."""
        with pytest.raises(RuleRejected, match="anchors"):
            parse_rules(BILLION_LAUGHS)

    def test_deep_nesting(self) -> None:
        """Nesting past the depth cap is refused without recursion."""
        deep = "rule: " + "{a: " * 5000 + "1" + "}" * 5000
        with pytest.raises(RuleRejected, match=f"deeper than {MAX_DEPTH}"):
            parse_rules(deep)
        block = "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v\n"
        with pytest.raises(RuleRejected, match="deeper"):
            parse_rules(block)

    @pytest.mark.parametrize("key", ["customLanguages", "ruleDirs", "languageGlobs",
                                     "testConfigs", "libraryPath"])
    def test_project_keys_refused(self, key: str) -> None:
        """Project-config keys (custom languages!) are not rule keys."""
        with pytest.raises(RuleRejected, match="unknown rule keys"):
            parse_rules(GOOD_RULE + f"{key}: {{}}\n")

    @pytest.mark.parametrize("text", ["!!python/object/apply:os.system ['id']",
                                      "%TAG ! tag:x\n---\nid: r", "[1, 2]", "id: r\n",
                                      "id: r\nlanguage: brainfuck\nrule: {pattern: a}\n",
                                      "id: 'a b'\nlanguage: python\nrule: {pattern: a}\n",
                                      "key: [unclosed"])
    def test_bad_rules(self, text: str) -> None:
        """Tags, directives, non-mappings, missing keys, bad language or id are refused."""
        with pytest.raises(RuleRejected):
            parse_rules(text)

    def test_many_documents(self) -> None:
        """At most 16 rule documents."""
        with pytest.raises(RuleRejected, match="more than"):
            parse_rules("\n---\n".join([GOOD_RULE] * 17))


class TestPlans:
    def plan(self, action: object, ws: Path, spec: TestSpec | None = None) -> object:
        return plan_action(action, ws, FAST_LIMITS, test_spec=spec,  # type: ignore[arg-type]
                           allowlist=frozenset({"ast-grep", "python"}))

    def test_oversized_action(self, tmp_path: Path) -> None:
        """Actions over action_bytes are refused."""
        big = AstGrepRun(pattern="x" * 20000, lang="python")
        assert kind_of(self.plan, big, tmp_path) == "invalid_action"

    def test_nul_in_pattern(self, tmp_path: Path) -> None:
        """A NUL byte cannot reach execve."""
        assert kind_of(self.plan, AstGrepRun(pattern="a\x00", lang="python"), tmp_path) \
            == "invalid_action"

    def test_language_allowlist(self, tmp_path: Path) -> None:
        """Unknown languages are refused."""
        assert kind_of(self.plan, AstGrepRun(pattern="a", lang="mylang"), tmp_path) \
            == "invalid_action"

    def test_search_needs_one_query(self, tmp_path: Path) -> None:
        """A search takes a pattern or a rule, not both, not neither."""
        both = AstGrepSearch(lang="python", pattern="a", rule_yaml=GOOD_RULE)
        assert kind_of(self.plan, both, tmp_path) == "invalid_action"
        assert kind_of(self.plan, AstGrepSearch(lang="python"), tmp_path) == "invalid_action"

    def test_rule_alias_bomb_refused(self, tmp_path: Path) -> None:
        """The billion-laughs rule never reaches ast-grep."""
        assert kind_of(self.plan, AstGrepRule(rule_yaml=BILLION_LAUGHS), tmp_path) \
            == "invalid_action"

    def test_tests_need_spec_and_allowlist(self, tmp_path: Path) -> None:
        """run_tests without a spec, or with a non-allowlisted program, is refused."""
        assert kind_of(self.plan, RunTests(), tmp_path) == "invalid_action"
        spec = TestSpec(argv=["/bin/sh", "-c", "id"])
        assert kind_of(self.plan, RunTests(), tmp_path, spec) == "invalid_action"

    def test_path_args_checked(self, tmp_path: Path) -> None:
        """Path arguments go through the workspace rules."""
        (tmp_path / "p.py").symlink_to("/etc/passwd")
        act = AstGrepRun(pattern="a", rewrite="b", lang="python", paths=["p.py"])
        assert kind_of(self.plan, act, tmp_path) == "path_escape"
