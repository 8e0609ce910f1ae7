"""``agentd eval``: pass@k, and two real runs side by side against counts taken from records."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentd.cli import main
from agentd.records import TrajectoryRecord
from agentd.reports.evaluation import Episode, RunEvaluation, pass_at_k
from agentd.testing.export_runs import EPISODES, TASKS, actor_run, reference_run
from agentd.testing.fake_vllm import FakeVLLM
from agentd.trajectories import iter_records


@pytest.mark.parametrize(("n", "c", "k"), [(n, c, k) for n in range(1, 7)
                                           for c in range(n + 1) for k in range(1, n + 1)])
def test_pass_at_k_is_the_share_of_k_subsets_with_a_success(n: int, c: int, k: int) -> None:
    """The estimator equals counting every k-subset of the n episodes outright."""
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(outcomes, k))
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_pass_at_k_refuses_impossible_counts() -> None:
    for n, c, k in ((2, 3, 1), (2, 1, 3), (2, 1, 0)):
        with pytest.raises(ValueError, match="pass@k"):
            pass_at_k(n, c, k)


def test_a_task_of_several_recipes_counts_under_each() -> None:
    def episode(task: str, recipe: str, accepted: bool) -> Episode:
        return Episode(task, "actor/m", "test", recipe, "2 steps", accepted, 3, 2, 1, 0)

    run = RunEvaluation("r", [episode("t1", "a+b", True), episode("t2", "b", False)])
    by_recipe = run.by("recipe")
    assert {k: (s.count, s.success) for k, s in by_recipe.items()} == {
        "a": (1, 1.0), "b": (2, 0.5)}
    assert run.overall.count == 2 and run.overall.precision == 0.5


def records(run: Path) -> list[TrajectoryRecord]:
    out = []
    for _, _, r in iter_records([run]):
        assert isinstance(r, TrajectoryRecord)
        out.append(r)
    return out


def by_episode(rs: list[TrajectoryRecord]) -> dict[tuple[str, int], list[TrajectoryRecord]]:
    episodes: dict[tuple[str, int], list[TrajectoryRecord]] = {}
    for r in sorted(rs, key=lambda r: r.step):
        episodes.setdefault((r.task_id, r.episode), []).append(r)
    return episodes


def expected(rs: list[TrajectoryRecord]) -> dict[str, Any]:
    """The overall numbers, counted straight from the records."""
    episodes = by_episode(rs)
    last = [steps[-1] for steps in episodes.values()]
    assert all(s.done and s.verdict is not None for s in last)
    solved = {t for (t, _), steps in episodes.items() if steps[-1].verdict.accepted}  # type: ignore[union-attr]
    writes = [r for r in rs if r.reward.step_kind == "write"]
    return {"episodes": len(episodes), "tasks": len({t for t, _ in episodes}),
            "success": sum(s.verdict.accepted for s in last) / len(last),  # type: ignore[union-attr]
            "pass@2": len(solved) / len({t for t, _ in episodes}),
            "precision": sum(r.verified for r in writes) / len(writes),
            "mean_steps": len(rs) / len(episodes),
            "parse_failure_rate": sum(r.parse_error is not None for r in rs) / len(rs)}


def run_eval(project: Path, *args: str) -> int:
    return main(["eval", "--config", str(project / "configs" / "agentd.yaml"), *args])


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(model="qwen3-14b-awq") as f:
        yield f


class TestEvalOverRuns:
    async def test_two_runs_side_by_side_match_their_records(
            self, tmp_project: Path, tmp_path: Path, fake: FakeVLLM,
            capsys: pytest.CaptureFixture[str]) -> None:
        """The reference solves every episode; the actor fails its odd-seeded one of each task,
        so its success is 1/2 and its pass@2 is 1. Every number in eval.json is the one counted
        from the records; the Markdown has both runs in one table and the chart is a PNG."""
        ref, act = await reference_run(tmp_project), await actor_run(tmp_project, fake)
        out = tmp_path / "eval"
        assert run_eval(tmp_project, "ref", "actor=act", "--k", "1,2,3", "--out", str(out)) == 0
        report = json.loads((out / "eval.json").read_text())
        runs = {r["label"]: r for r in report["runs"]}
        assert list(runs) == ["ref", "actor"] and report["k"] == [1, 2, 3]
        for label, shards in (("ref", ref), ("actor", act)):
            overall, want = runs[label]["overall"], expected(records(shards))
            assert overall["episodes"] == TASKS * EPISODES == want["episodes"]
            for key in ("tasks", "success", "pass@2", "precision", "mean_steps",
                        "parse_failure_rate"):
                assert overall[key] == pytest.approx(want[key]), (label, key)
            assert overall["pass@1"] == pytest.approx(want["success"])
            assert overall["pass@3"] is None  # no task has three episodes
            assert runs[label]["unfinished"] == 0
        assert runs["ref"]["overall"]["success"] == 1.0
        assert runs["actor"]["overall"]["success"] == 0.5
        assert runs["actor"]["overall"]["pass@2"] == 1.0
        # Each breakdown but recipe partitions the episodes; the test tasks carry eq-none.
        for dimension in ("policy", "split", "recipe", "difficulty"):
            slices = runs["actor"][f"by_{dimension}"]
            assert sum(s["episodes"] for s in slices.values()) == TASKS * EPISODES
        assert set(runs["actor"]["by_recipe"]) == {"eq-none"}
        assert set(runs["actor"]["by_difficulty"]) == {"1 step"}
        assert set(runs["actor"]["by_policy"]) == {"actor/qwen3-14b-awq"}
        text = (out / "eval.md").read_text()
        row = next(line for line in text.splitlines() if line.startswith("| `actor`"))
        assert row.split("|")[4].strip() == "0.500"  # the success column
        assert "| recipe | ref n | ref success" in text
        assert (out / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "| `ref` |" in capsys.readouterr().out

    async def test_unfinished_episodes_are_left_out_and_counted(
            self, tmp_project: Path, tmp_path: Path) -> None:
        """An episode whose last step never reached the shard is not judged a failure."""
        ref = await reference_run(tmp_project)
        cut = tmp_path / "cut"
        cut.mkdir()
        for shard in sorted(ref.iterdir()):
            kept = [line for line in shard.read_bytes().splitlines(keepends=True)
                    if not (json.loads(line)["episode"] == 0 and json.loads(line)["done"])]
            (cut / shard.name).write_bytes(b"".join(kept))
        out = tmp_path / "eval"
        assert run_eval(tmp_project, str(cut), "--out", str(out)) == 0
        run = json.loads((out / "eval.json").read_text())["runs"][0]
        assert run["unfinished"] == TASKS
        assert run["overall"]["episodes"] == TASKS * (EPISODES - 1)

    @pytest.mark.parametrize("args", [["nope"], ["ref", "--k", "0"], ["ref", "--k", "a"],
                                      ["ref", "ref"], ["a|b=ref"], ["ref", "--out", "FILE/e"]])
    async def test_bad_usage_is_one_line_and_exit_2(
            self, tmp_project: Path, tmp_path: Path, args: list[str],
            capsys: pytest.CaptureFixture[str]) -> None:
        await reference_run(tmp_project)
        (tmp_path / "FILE").write_text("a file, so nothing can be written below it")
        args = [a.replace("FILE", str(tmp_path / "FILE")) for a in args]
        if "--out" not in args:
            args += ["--out", str(tmp_path / "e")]
        assert run_eval(tmp_project, *args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("agentd: ") and "\n" not in err
