"""Per-step rewards: progress over gold hunks, regressions, final match, SRL similarity, total."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentd.episode.diffs import gold_diff, gold_hunks, line_changes, present_hunks
from agentd.episode.reward import (
    BROKEN_FORMAT_TOTAL,
    RewardWeights,
    is_verified,
    progress,
    regression,
    score_step,
    total,
)
from agentd.records import (
    Action,
    AstGrepRule,
    AstGrepRun,
    AstGrepSearch,
    ReadFile,
    Reward,
    SandboxResult,
)

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


def score(current: dict[str, str], *, previous: dict[str, str] | None = None,
          action: Action | None = RUN, result: SandboxResult | None = OK,
          reference: Action | None = RUN) -> Reward:
    return score_step(before=BEFORE, gold=GOLD, previous=previous or BEFORE, current=current,
                      action=action, result=result, reference=reference)


class TestHunks:
    def test_two_hunks(self) -> None:
        """Changes more than six lines apart are two unified-diff hunks."""
        hunks = gold_hunks(BEFORE, GOLD)
        assert len(hunks) == 2
        assert hunks[0].after[:2] == ("import os", "log('a')")

    def test_nearby_changes_are_one_hunk(self) -> None:
        """Changes within the context distance form one hunk."""
        before = {"f": text(["a", "b", "c", "d"])}
        assert len(gold_hunks(before, {"f": text(["A", "b", "c", "D"])})) == 1

    def test_identical_gold_has_no_hunk(self) -> None:
        """A gold equal to the original has no hunks."""
        assert gold_hunks(BEFORE, {"m.py": BEFORE["m.py"]}) == []

    def test_new_file_is_one_hunk(self) -> None:
        """A gold file that did not exist is one hunk: the whole file."""
        hunks = gold_hunks({}, {"new.py": "a\nb\n"})
        assert [h.after for h in hunks] == [("a", "b")]
        assert present_hunks(hunks, {"new.py": "a\nb\n"}) == 1

    def test_in_order_matching(self) -> None:
        """Two identical hunks need two occurrences: one applied change counts once."""
        part = ["f"] * 8 + ["a", "b", "c"]
        before = {"f.py": text(part * 2 + ["f"] * 8)}
        gold = {"f.py": before["f.py"].replace("b", "B")}
        hunks = gold_hunks(before, gold)
        assert len(hunks) == 2
        assert hunks[0].after == hunks[1].after
        second_only = text(part + [*part[:-2], "B", "c"] + ["f"] * 8)
        assert present_hunks(hunks, {"f.py": second_only}) == 1
        assert present_hunks(hunks, gold) == 2

    def test_gold_diff_cached(self) -> None:
        """The gold diff of a task is computed once and reused for every step."""
        assert gold_diff(BEFORE, GOLD) is gold_diff(dict(BEFORE), dict(GOLD))

    def test_line_changes_multiset(self) -> None:
        """Line changes count removed and added lines with their text."""
        changes = line_changes("a\nb\n", "a\nc\nc\n")
        assert changes == {("-", "b"): 1, ("+", "c"): 2}


class TestProgress:
    def test_no_op(self) -> None:
        """An untouched workspace has no progress and no regression."""
        reward = score(dict(BEFORE), action=AstGrepSearch(lang="python", pattern="print($A)"))
        assert (reward.progress, reward.progress_delta, reward.regression) == (0.0, 0.0, 0.0)
        assert not reward.final_match

    def test_partial_progress(self) -> None:
        """One of two gold hunks applied is progress 0.5, with no regression."""
        reward = score(HALF)
        assert reward.progress == 0.5
        assert reward.progress_delta == 0.5
        assert reward.regression == 0.0
        assert not reward.final_match

    def test_delta_from_previous(self) -> None:
        """Progress delta is measured from the files the step started with."""
        reward = score(DONE, previous=HALF)
        assert (reward.progress, reward.progress_delta) == (1.0, 0.5)

    def test_full_match(self) -> None:
        """The gold workspace has progress 1, no regression and a final match."""
        reward = score(DONE)
        assert (reward.progress, reward.regression, reward.final_match) == (1.0, 0.0, True)

    def test_undoing_progress_is_negative(self) -> None:
        """Reverting an applied hunk gives a negative delta."""
        assert score(HALF, previous=DONE).progress_delta == -0.5

    def test_no_hunks_task(self) -> None:
        """With nothing to change, progress is 1 only while the workspace is untouched."""
        assert progress(BEFORE, {}, BEFORE) == 1.0
        assert progress(BEFORE, {}, HALF) == 0.0


class TestRegression:
    def test_unwanted_change_in_gold_file(self) -> None:
        """A change the gold does not make is a regression share of the changed lines."""
        current = {**DONE, "m.py": DONE["m.py"].replace("import os", "import sys")}
        reward = score(current)
        assert reward.progress == 0.5  # the first hunk's context is broken
        assert reward.regression == pytest.approx(2 / 6)
        assert not reward.final_match

    def test_change_to_other_file(self) -> None:
        """Editing a file outside the gold is all regression."""
        current = {**BEFORE, "other.py": "keep = 2\n"}
        assert regression(BEFORE, GOLD, current) == 1.0
        assert not score(current).final_match

    def test_deleted_and_added_files(self) -> None:
        """Deleting a file or adding one are regressions and break the final match."""
        deleted = {"m.py": GOLD["m.py"]}
        added = {**DONE, "junk.py": "x\n"}
        assert regression(BEFORE, GOLD, deleted) > 0
        assert regression(BEFORE, GOLD, added) > 0
        assert not score(deleted).final_match
        assert not score(added).final_match

    def test_bounded(self) -> None:
        """Regression stays in [0, 1] however much is changed."""
        current = {"m.py": "garbage\n" * 500, "other.py": "", "z.py": "z\n" * 100}
        assert 0.0 < regression(BEFORE, GOLD, current) <= 1.0


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
        """A write on a finished workspace that keeps it matching is verified."""
        assert is_verified(score(DONE, previous=DONE), OK, action=RUN)

    def test_read_only_verified(self) -> None:
        """A clean read-only step is verified even without progress."""
        search = AstGrepSearch(lang="python", pattern="print($A)")
        result = SandboxResult(exit_code=0)
        assert is_verified(score(dict(BEFORE), action=search, result=result), result,
                           action=search)

    def test_failures_not_verified(self) -> None:
        """Broken format, failed execution or any regression are never verified."""
        assert not is_verified(score(dict(BEFORE), action=None, result=None), None)
        failed = SandboxResult(exit_code=None, error_kind="path_escape")
        assert not is_verified(score(HALF, result=failed), failed, action=RUN)
        regressed = {**HALF, "other.py": "x\n"}
        assert not is_verified(score(regressed), OK, action=RUN)

    def test_without_action_infers_writes(self) -> None:
        """Without the action, a result that changed files counts as a write."""
        assert is_verified(score(HALF), OK)
        assert not is_verified(score(HALF, previous=HALF), OK)
        assert is_verified(score(HALF, previous=HALF), SandboxResult(exit_code=0))


line_lists = st.lists(st.sampled_from(["a", "b", "c", "print(x)", "log(x)", ""]), max_size=30)


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(before=line_lists, gold=line_lists, current=line_lists)
    def test_bounds(self, before: list[str], gold: list[str], current: list[str]) -> None:
        """Progress and regression stay in [0, 1] and the gold itself scores perfectly."""
        b, g, c = {"f": text(before)}, {"f": text(gold)}, {"f": text(current)}
        assert 0.0 <= progress(b, g, c) <= 1.0
        assert 0.0 <= regression(b, g, c) <= 1.0
        perfect = score_step(before=b, gold=g, previous=b, current=g, action=RUN, result=OK,
                             reference=RUN)
        assert (perfect.progress, perfect.regression, perfect.final_match) == (1.0, 0.0, True)
