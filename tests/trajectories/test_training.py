"""SFT and GRPO-group exports of real runs, loaded with Hugging Face ``datasets``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentd.cli import main
from agentd.episode.prompts import flatten
from agentd.records import TrajectoryRecord
from agentd.testing import fake_shapes
from agentd.testing.export_runs import EPISODES, TASKS, actor_run, reference_run
from agentd.testing.fake_vllm import FakeVLLM
from agentd.testing.hf_datasets import load
from agentd.trajectories import iter_records


def records(*dirs: Path) -> dict[str, TrajectoryRecord]:
    out = {}
    for _, _, r in iter_records(list(dirs)):
        assert isinstance(r, TrajectoryRecord)
        out[f"{r.run_id}:{r.task_id}:{r.episode}:{r.step}"] = r
    return out


def export(project: Path, *args: str) -> None:
    """``agentd trajectories export`` with the project's config (its tasks give recipes)."""
    config = str(project / "configs" / "agentd.yaml")
    assert main(["trajectories", "export", "--config", config, *args]) == 0


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(model="qwen3-14b-awq") as f:
        yield f


class TestSftSteps:
    async def test_rows_are_the_verified_steps_as_sent_and_received(
            self, tmp_project: Path, tmp_path: Path) -> None:
        """One row per verified step; the assistant turn is the raw output and the messages
        before it flatten back to the recorded prompt; columns equal the record's fields."""
        run = await reference_run(tmp_project)
        out = tmp_path / "sft" / "sft.jsonl"
        export(tmp_project, str(run), "--format", "sft", "--out", str(out))
        ds, recs = load(out, tmp_path / "hf"), records(run)
        assert ds.num_rows == sum(r.verified for r in recs.values()) == TASKS * EPISODES * 2
        for row in ds:
            rec = recs[row["id"]]
            messages = row["messages"]
            assert [m["role"] for m in messages] == ["system", "user", "assistant"]
            assert messages[-1]["content"] == rec.model_output.raw
            assert flatten(messages[:-1]) == rec.prompt
            assert (row["task_id"], row["episode"], row["step"]) == (rec.task_id, rec.episode,
                                                                      rec.step)
            assert row["reward_total"] == rec.reward.total and row["verified"]
            assert row["recipe"] == "eq-none" and row["license"] == "MIT"
            assert row["config_hash"] == rec.provenance.config_hash != ""
            # The verifier writes its verdict on an episode's final step; every row of the
            # episode carries that one verdict.
            verdicts = [r.verdict for r in recs.values() if r.verdict is not None
                        and (r.task_id, r.episode) == (rec.task_id, rec.episode)]
            assert len(verdicts) == 1 and row["episode_accepted"]
            assert row["verdict_accepted"] is verdicts[0].accepted is True

    async def test_parquet_prompt_completion_and_filters(self, tmp_project: Path,
                                                         tmp_path: Path, fake: FakeVLLM) -> None:
        """Parquet in the prompt-completion shape; policy, recipe and minimum-reward filters
        keep exactly the rows they name."""
        ref = await reference_run(tmp_project)
        act = await actor_run(tmp_project, fake)
        out = tmp_path / "pc" / "sft.parquet"
        export(tmp_project, str(ref), str(act), "--format", "sft",
               "--sft-shape", "prompt-completion", "--policy", "actor", "--recipe", "eq-none",
               "--min-reward", "0.5", "--out", str(out))
        ds, recs = load(out, tmp_path / "hf"), records(ref, act)
        wanted = {k for k, r in recs.items() if r.policy.kind == "actor" and r.verified
                  and r.reward.total >= 0.5}
        assert wanted and set(ds["id"]) == wanted
        for row in ds:
            assert row["completion"] == [{"role": "assistant",
                                          "content": recs[row["id"]].model_output.raw}]
            assert flatten(row["prompt"]) == recs[row["id"]].prompt

    async def test_token_ids_come_from_the_server(self, tmp_project: Path, tmp_path: Path,
                                                  fake: FakeVLLM) -> None:
        """The endpoint's ids pass through untouched, the mask covers the completion only, and
        the prompt ids are the server's tokenisation of exactly the exported messages."""
        act = await actor_run(tmp_project, fake)
        out = tmp_path / "tok" / "sft.jsonl"
        export(tmp_project, str(act), "--format", "sft", "--out", str(out))
        ds = load(out, tmp_path / "hf")
        assert ds.num_rows == TASKS * 2  # the solved episode's two steps per task
        for row in ds:
            assert row["token_ids_source"] == "server"
            messages = row["messages"]
            sent = fake_shapes.prompt_text({"messages": messages[:-1]})
            assert row["prompt_token_ids"] == fake_shapes.token_ids(sent)
            assert row["completion_token_ids"] == fake_shapes.token_ids(messages[-1]["content"])
            n, m = len(row["prompt_token_ids"]), len(row["completion_token_ids"])
            assert row["loss_mask"] == [0] * n + [1] * m

    async def test_rows_without_ids_say_so(self, tmp_project: Path, tmp_path: Path) -> None:
        """The reference replay calls no endpoint: no ids and no source, never a guess."""
        run = await reference_run(tmp_project)
        out = tmp_path / "sft" / "sft.jsonl"
        export(tmp_project, str(run), "--format", "sft", "--out", str(out))
        ds = load(out, tmp_path / "hf")
        assert set(ds["token_ids_source"]) == {None} and set(map(str, ds["loss_mask"])) == {"None"}


class TestSftEpisodes:
    async def test_one_conversation_per_accepted_episode(self, tmp_project: Path,
                                                         tmp_path: Path, fake: FakeVLLM) -> None:
        """Only accepted episodes; each is the system message, then every step's user
        message and answer in order."""
        act = await actor_run(tmp_project, fake)
        out = tmp_path / "ep" / "sft.jsonl"
        export(tmp_project, str(act), "--format", "sft", "--sft-unit", "episode", "--out", str(out))
        ds, recs = load(out, tmp_path / "hf"), records(act)
        assert ds.num_rows == TASKS  # episode 0 of each task solved, episode 1 failed
        for row in ds:
            steps = [recs[f"{row['id']}:{k}"] for k in range(row["episode_steps"])]
            messages = row["messages"]
            assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 2
            for k, rec in enumerate(steps):
                user, answer = messages[1 + 2 * k], messages[2 + 2 * k]
                assert flatten([messages[0], user]) == rec.prompt
                assert answer["content"] == rec.model_output.raw
            assert row["step_rewards"] == [r.reward.total for r in steps]


class TestGroups:
    async def test_groups_keep_only_rollouts_that_differ(self, tmp_project: Path,
                                                         tmp_path: Path, fake: FakeVLLM,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
        """Task × policy groups: the reference's identical rollouts are dropped by the std
        filter, the actor's (one solved, one failed) are kept with the right statistics."""
        ref = await reference_run(tmp_project)
        act = await actor_run(tmp_project, fake)
        out = tmp_path / "groups" / "groups.jsonl"
        capsys.readouterr()
        export(tmp_project, str(ref), str(act), "--format", "groups", "--out", str(out))
        assert f"groups: {TASKS} of {2 * TASKS} kept" in capsys.readouterr().out
        ds, recs = load(out, tmp_path / "hf"), records(act)
        assert ds.num_rows == TASKS * EPISODES
        by_group: dict[str, list[dict[str, Any]]] = {}
        for row in ds:
            by_group.setdefault(row["group_id"], []).append(row)
            assert row["policy_kind"] == "actor"
            ep = [r for r in recs.values() if (r.task_id, r.episode) ==
                  (row["task_id"], row["episode"])]
            assert row["episode_reward"] == pytest.approx(sum(r.reward.total for r in ep))
            assert [s["reward_total"] for s in row["steps"]] == row["step_rewards"]
            assert [s["messages"][-1]["content"] for s in row["steps"]] == \
                [r.model_output.raw for r in sorted(ep, key=lambda r: r.step)]
        assert len(by_group) == TASKS
        for rows in by_group.values():
            rewards = [r["episode_reward"] for r in rows]
            mean = sum(rewards) / len(rewards)
            std = math.sqrt(sum((x - mean) ** 2 for x in rewards) / len(rewards))
            assert rows[0]["group_reward_mean"] == pytest.approx(mean)
            assert rows[0]["group_reward_std"] == pytest.approx(std) and std > 0
            assert sum(r["advantage"] for r in rows) == pytest.approx(0, abs=1e-9)

    async def test_parquet_groups_load(self, tmp_project: Path, tmp_path: Path,
                                       fake: FakeVLLM) -> None:
        """The same rollouts as Parquet, with the explicit schema."""
        act = await actor_run(tmp_project, fake)
        out = tmp_path / "g" / "groups.parquet"
        export(tmp_project, str(act), "--format", "groups", "--out", str(out))
        ds = load(out, tmp_path / "hf")
        assert ds.num_rows == TASKS * EPISODES
        assert {len(s) for s in ds["steps"]} == {2}

    def test_filters_that_do_not_apply_are_refused(self, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
        """--verified-only with groups is one line on stderr and exit 2."""
        (tmp_path / "x.jsonl").write_text("")
        code = main(["trajectories", "export", str(tmp_path / "x.jsonl"), "--format", "groups",
                     "--verified-only", "--tasks", str(tmp_path / "x.jsonl"),
                     "--out", str(tmp_path / "o.jsonl")])
        err = capsys.readouterr().err
        assert code == 2 and "groups keep failed rollouts" in err and len(err.splitlines()) == 1
