"""Per-step rewards: rule progress per recipe, unrelated edits, final match, SRL similarity,
total, and which steps are verified. Rule matches are made by hand here (a line holding the
pattern's call); ``tests/verify`` runs the real searches in the jail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentd.episode.reward import (
    BROKEN_FORMAT_TOTAL,
    RewardWeights,
    is_verified,
    score_step,
    step_kind,
    total,
)
from agentd.records import (
    Action,
    AstGrepRule,
    AstGrepRun,
    AstGrepSearch,
    Match,
    ReadFile,
    Reward,
    RunTests,
    SandboxResult,
    Submit,
    Task,
    TaskMeta,
)
from agentd.verify.measure import Measure, TaskFacts, measure, task_facts
from agentd.verify.rules import RuleMatches

FILLER = [f"x{i} = {i}" for i in range(10)]
BEFORE_LINES = ["import os", "print('a')", *FILLER, "print('b')", "done = True"]
GOLD_LINES = ["import os", "log('a')", *FILLER, "log('b')", "done = True"]


def text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


BEFORE = {"m.py": text(BEFORE_LINES), "other.py": "keep = 1\n"}
GOLD = {"m.py": text(GOLD_LINES)}
HALF = {**BEFORE, "m.py": text(BEFORE_LINES).replace("print('a')", "log('a')")}
DONE = {**BEFORE, **GOLD}
RUN = AstGrepRun(pattern="print($A)", rewrite="log($A)", lang="python")
OK = SandboxResult(exit_code=0, changed_files=["m.py"])
TASK = Task(task_id="t", split="dev", language="python", instruction="", files=BEFORE,
            gold=GOLD, reference_actions=[RUN],
            meta=TaskMeta(dataset="d", source_path="m.py", recipe="r", license="MIT",
                          source_sha256="0"))


def found(task: Task, files: dict[str, str]) -> RuleMatches:
    """What each rule's search would find: lines calling the rule's function."""
    calls = [a.pattern.split("(")[0] + "(" for a in task.reference_actions
             if isinstance(a, AstGrepRun)]
    return RuleMatches(tuple(tuple(
        Match(file=p, start_line=i, end_line=i, text=line)
        for p, t in sorted(files.items()) for i, line in enumerate(t.splitlines(), 1)
        if line.lstrip().startswith(call)) for call in calls))


def facts_of(task: Task = TASK) -> TaskFacts:
    return task_facts(task, found(task, task.files), found(task, {**task.files, **task.gold}))


def measured(files: dict[str, str], task: Task = TASK) -> Measure:
    return measure(task, facts_of(task), files, found(task, files))


def score(current: dict[str, str], *, previous: dict[str, str] | None = None,
          action: Action | None = RUN, result: SandboxResult | None = OK,
          reference: Action | None = RUN, task: Task = TASK) -> Reward:
    return score_step(facts=facts_of(task), previous=measured(previous or BEFORE, task),
                      current=measured(current, task), action=action, result=result,
                      reference=reference)


class TestProgress:
    def test_levels(self) -> None:
        """Progress is the share of the rule's matches gone: 0, one half, all."""
        assert score(dict(BEFORE)).progress == 0.0
        assert score(HALF).progress == 0.5
        assert score(DONE).progress == 1.0

    def test_delta(self) -> None:
        """The delta is progress now minus progress before the step."""
        assert score(DONE, previous=HALF).progress_delta == 0.5
        assert score(HALF, previous=DONE).progress_delta == -0.5

    def test_broken_file(self) -> None:
        """A target file that does not parse has no progress and full regression."""
        reward = score({**BEFORE, "m.py": "def (:\n"})
        assert (reward.progress, reward.regression, reward.final_match) == (0.0, 1.0, False)

    def test_multi_step_intermediate_counts(self) -> None:
        """Each recipe is measured against its own target: the first step of a two-recipe
        task makes progress even though the second recipe rewrites the same line again."""
        before = {"m.py": "print(a)\nx = 1\n"}
        step1 = {"m.py": "log(a)\nx = 1\n"}
        gold = {"m.py": "note(a)\nx = 1\n"}
        second = AstGrepRun(pattern="log($A)", rewrite="note($A)", lang="python")
        task = Task(task_id="m", split="dev", language="python", instruction="", files=before,
                    gold=gold, reference_actions=[RUN, second], meta=TASK.meta)
        first = score(step1, previous=before, task=task)
        assert first.progress_delta > 0 and first.regression == 0.0
        assert is_verified(first, OK, action=RUN)
        last = score(gold, previous=step1, action=second, task=task)
        assert last.progress == 1.0 and is_verified(last, OK, action=second)


class TestRegressionAndMatch:
    def test_reformatted_gold_is_final_match(self) -> None:
        """The gold written with other quotes and spacing is the gold's program."""
        reformatted = {**BEFORE, "m.py": GOLD["m.py"].replace("log('a')", 'log( "a" )')}
        reward = score(reformatted)
        assert reward.final_match and reward.regression == 0.0 and reward.progress == 1.0

    def test_unrelated_edit_is_regression(self) -> None:
        """Changing a statement no rule matches and the gold keeps is a regression."""
        current = {**HALF, "m.py": HALF["m.py"].replace("x3 = 3", "x3 = 4")}
        reward = score(current)
        assert reward.regression == 0.5 and not reward.final_match
        assert not is_verified(reward, OK, action=RUN)

    def test_added_file_is_regression(self) -> None:
        """A file the task does not have is an unrelated edit."""
        assert score({**DONE, "new.py": "x = 1\n"}).regression == 1.0

    def test_comment_is_not_a_change(self) -> None:
        """A new comment changes no statement."""
        current = {**DONE, "other.py": "keep = 1  # kept\n"}
        reward = score(current)
        assert reward.regression == 0.0 and reward.final_match


class TestSimilarityAndTotal:
    def test_broken_format(self) -> None:
        """A completion that did not parse scores -1 whatever the workspace holds."""
        reward = score(dict(BEFORE), action=None, result=None)
        assert not reward.format_ok
        assert not reward.exec_ok
        assert reward.srl_similarity == -1.0
        assert reward.total == BROKEN_FORMAT_TOTAL

    def test_reordered_yaml_is_identical(self) -> None:
        """A rule with reordered YAML keys and other spacing is similarity 1.0."""
        ref = AstGrepRule(rule_yaml="id: r\nlanguage: python\nrule:\n  pattern: print($A)\n"
                                    "fix: log($A)\n")
        cand = AstGrepRule(rule_yaml="fix:   log($A)\nrule: {pattern: print($A)}\n"
                                     "language: python\nid: r\n")
        assert score(HALF, action=cand, reference=ref).srl_similarity == 1.0

    def test_different_action_less_similar(self) -> None:
        """Another tool is less similar than the same tool with another pattern."""
        near = score(HALF, action=AstGrepRun(pattern="print($B)", rewrite="log($B)",
                                             lang="python")).srl_similarity
        far = score(HALF, action=ReadFile(path="m.py")).srl_similarity
        assert 0.0 <= far < near < 1.0

    def test_no_reference(self) -> None:
        """Without a reference action the similarity is 0."""
        assert score(HALF, reference=None).srl_similarity == 0.0

    def test_total_formula(self) -> None:
        """The total is the documented weighted sum."""
        reward = score(DONE)
        expected = 0.1 * 1 + 0.4 * 1.0 - 0.4 * 0.0 + 0.3 * 1 + 0.2 * 1.0
        assert reward.total == pytest.approx(expected)
        weights = RewardWeights(final_match=0.0)
        assert total(reward, weights) == pytest.approx(expected - 0.3)

    def test_total_range(self) -> None:
        """A well-formed step never scores as low as a broken one."""
        current = {"m.py": "garbage\n", "other.py": "x\n"}
        worst = score(current, previous=DONE, action=ReadFile(path="m.py"),
                      result=SandboxResult(exit_code=1, error_kind="tool_error"))
        assert BROKEN_FORMAT_TOTAL < worst.total < 0


class TestVerified:
    def test_progress_write_verified(self) -> None:
        """A clean write that makes progress without regressions is verified."""
        assert is_verified(score(HALF), OK, action=RUN)

    def test_write_without_progress_not_verified(self) -> None:
        """A write that changes nothing useful is not verified."""
        assert not is_verified(score(dict(BEFORE)), OK, action=RUN)
        assert not is_verified(score(HALF, previous=HALF), OK, action=RUN)

    def test_write_keeping_final_match_verified(self) -> None:
        """A write on a finished workspace that keeps it the gold's program is verified."""
        assert is_verified(score(DONE, previous=DONE), OK, action=RUN)

    def test_read_steps_are_neutral(self) -> None:
        """Searches, reads and test runs are never verified, however clean."""
        result = SandboxResult(exit_code=0)
        for action in (AstGrepSearch(lang="python", pattern="print($A)"),
                       ReadFile(path="m.py"), RunTests(),
                       AstGrepRun(pattern="print($A)", lang="python")):
            reward = score(dict(BEFORE), action=action, result=result)
            assert reward.step_kind == "read"
            assert not is_verified(reward, result, action=action)

    def test_submit_needs_an_accepted_state(self) -> None:
        """Submit is verified only when the final state is accepted (final_match)."""
        result = SandboxResult(exit_code=0)
        untouched = score(dict(BEFORE), previous=dict(BEFORE), action=Submit(), result=result)
        assert untouched.step_kind == "submit" and not is_verified(untouched, result)
        done = score(DONE, previous=DONE, action=Submit(), result=result)
        assert is_verified(done, result, action=Submit())

    def test_failures_not_verified(self) -> None:
        """Broken format, failed execution or any regression are never verified."""
        broken = score(dict(BEFORE), action=None, result=None)
        assert broken.step_kind == "write" and not is_verified(broken, None)
        failed = SandboxResult(exit_code=None, error_kind="path_escape")
        assert not is_verified(score(HALF, result=failed), failed, action=RUN)

    def test_legacy_records_infer_writes(self) -> None:
        """A record without step_kind counts as writing when its result changed files."""
        legacy = Reward(format_ok=True, exec_ok=True, progress_delta=0.5)
        assert is_verified(legacy, OK)
        assert not is_verified(legacy, SandboxResult(exit_code=0))

    def test_step_kinds(self) -> None:
        """Rules and rewrites write; a rule is a write even before it runs."""
        assert step_kind(AstGrepRule(rule_yaml="id: x")) == "write"
        assert step_kind(RUN) == "write"
        assert step_kind(None) == "write"


line_lists = st.lists(st.sampled_from(["a = 1", "b = 2", "print(x)", "log(x)", ""]),
                      max_size=30)


class TestProperties:
    @settings(max_examples=100, deadline=None)
    @given(before=line_lists, current=line_lists)
    def test_bounds(self, before: list[str], current: list[str]) -> None:
        """Progress and regression stay in [0, 1] and the gold itself scores perfectly."""
        b = {"f.py": text(before)}
        g = {"f.py": text(before).replace("print(", "log(")}
        task = Task(task_id="p", split="dev", language="python", instruction="", files=b,
                    gold=g, reference_actions=[RUN], meta=TASK.meta)
        reward = score({"f.py": text(current)}, previous=b, task=task)
        assert 0.0 <= reward.progress <= 1.0 and 0.0 <= reward.regression <= 1.0
        perfect = score(g, previous=b, task=task)
        assert (perfect.progress, perfect.regression, perfect.final_match) == (1.0, 0.0, True)
