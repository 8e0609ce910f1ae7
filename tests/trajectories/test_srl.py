"""The SRL step reward: normalisation, similarity, broken formats, instance derivation."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from agentd.episode.similarity import BROKEN_FORMAT_REWARD, normalise_action, srl_similarity
from agentd.exports.srl import (
    TaskContext,
    episode_instances,
    group_episodes,
    is_expert_episode,
)
from agentd.records import AstGrepRule, AstGrepRun, ReadFile, Submit, TrajectoryRecord
from agentd.testing.hostile import huge_run_actions

EpisodeFactory = Callable[..., list[TrajectoryRecord]]

RULE = "id: r\nlanguage: python\nrule:\n  pattern: print($A)\nfix: log($A)\n"
RULE_REORDERED = "fix:   log($A)\nrule: {pattern: 'print($A)'}\nlanguage: python\nid: r\n\n"


class TestNormalise:
    def test_yaml_key_order_and_whitespace_do_not_matter(self) -> None:
        """Two spellings of the same rule normalise to the same text."""
        assert (normalise_action(AstGrepRule(rule_yaml=RULE))
                == normalise_action(AstGrepRule(rule_yaml=RULE_REORDERED)))

    def test_accepts_struct_dict_and_json_text(self) -> None:
        """An Action, its dict and its JSON all normalise alike."""
        action = AstGrepRun(pattern="print( $A )", lang="python", paths=["b.py", "a.py"])
        as_dict = {"tool": "ast_grep_run", "pattern": "print(  $A  )", "lang": "python",
                   "paths": ["a.py", "b.py"]}
        text = msgspec.json.encode(action)
        assert normalise_action(action) == normalise_action(as_dict) == normalise_action(text)

    def test_unparsable_yaml_still_normalises(self) -> None:
        """A broken rule is compared as collapsed text, not rejected."""
        out = normalise_action(AstGrepRule(rule_yaml="rule: [unclosed\n   x"))
        assert "rule: [unclosed x" in out

    def test_invalid_action_raises(self) -> None:
        """Something that is not an action cannot be normalised."""
        with pytest.raises(msgspec.ValidationError):
            normalise_action({"tool": "rm_rf", "path": "/"})


class TestSimilarity:
    def test_equivalent_actions_score_one(self) -> None:
        """Formatting differences earn the full reward."""
        assert srl_similarity(AstGrepRule(rule_yaml=RULE_REORDERED),
                              AstGrepRule(rule_yaml=RULE)) == 1.0

    def test_closer_actions_score_higher(self) -> None:
        """A near miss beats a different tool, and both are within [0, 1)."""
        expert = AstGrepRun(pattern="print($A)", rewrite="log($A)", lang="python")
        near = AstGrepRun(pattern="print($A)", rewrite="logger($A)", lang="python")
        far = ReadFile(path="setup.py")
        assert 0.0 <= srl_similarity(far, expert) < srl_similarity(near, expert) < 1.0

    @pytest.mark.parametrize("candidate", [
        None, "not json", '{"tool": "ast_grep_run"}', {"tool": "submit", "extra": 1}, b"\xff",
    ])
    def test_broken_format_scores_minus_one(self, candidate: object) -> None:
        """No action, bad JSON, missing fields or unknown fields: -1."""
        assert srl_similarity(candidate, Submit()) == BROKEN_FORMAT_REWARD  # type: ignore[arg-type]

    def test_hostile_sizes_are_capped(self) -> None:
        """A 60 KB pattern is capped before the quadratic matcher sees it: its tail is unseen.

        How long the capped comparison takes is measured in benchmarks/hostile_inputs.py.
        """
        huge, other = huge_run_actions()
        changed_tail, _ = huge_run_actions(tail="completely different")
        score = srl_similarity(huge, other)
        assert 0 <= score <= 1
        assert srl_similarity(changed_tail, other) == score


class TestInstances:
    def test_one_instance_per_expert_step_with_prior_steps_as_context(
        self, make_episode: EpisodeFactory
    ) -> None:
        """Step k's instance holds steps 0..k-1 as context and step k as target."""
        steps = make_episode(steps=3)
        task = TaskContext(instruction="use logging", files={"a.py": "print(1)\n"})
        instances = list(episode_instances(steps, task))
        assert [i.step for i in instances] == [0, 1, 2]
        assert [len(i.previous_steps) for i in instances] == [0, 1, 2]
        assert instances[2].previous_steps[1].action == msgspec.to_builtins(
            steps[1].model_output.action)
        assert instances[1].target_normalised == normalise_action(steps[1].model_output.action)
        assert instances[0].instruction == "use logging"
        assert instances[2].final_match

    def test_only_complete_final_matching_expert_episodes_qualify(
        self, make_episode: EpisodeFactory
    ) -> None:
        """An actor's episode, an unfinished one and a failed one are not expert data."""
        good = make_episode()
        assert is_expert_episode(good)
        actor = [msgspec.structs.replace(
            r, policy=msgspec.structs.replace(r.policy, kind="actor")) for r in good]
        failed = [*good[:-1], msgspec.structs.replace(
            good[-1], reward=msgspec.structs.replace(good[-1].reward, final_match=False))]
        assert not is_expert_episode(actor)
        assert not is_expert_episode(good[:-1])
        assert not is_expert_episode(failed)
        assert not is_expert_episode([good[0], good[2]])

    def test_group_episodes_handles_interleaving_and_late_steps(
        self, make_episode: EpisodeFactory
    ) -> None:
        """Interleaved episodes are regrouped; a done step seen early waits for the rest."""
        a, b = make_episode(task_id="a"), make_episode(task_id="b")
        stream = [a[0], b[2], a[1], b[0], a[2], b[1]]
        groups = list(group_episodes(stream))
        assert [[r.step for r in g] for g in groups] == [[0, 1, 2], [0, 1, 2]]
        assert [g[0].task_id for g in groups] == ["a", "b"]
