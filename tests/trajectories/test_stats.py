"""`agentd trajectories stats` and the writer benchmark."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agentd.cli import main
from agentd.config import WriterConfig
from agentd.records import PolicyInfo, Reward, TrajectoryRecord
from agentd.testing.writer_bench import writer_throughput
from agentd.trajectories.stats import collect_stats

from .helpers import write_records

Factory = Callable[..., TrajectoryRecord]
EpisodeFactory = Callable[..., list[TrajectoryRecord]]


@pytest.fixture
def src(tmp_path: Path, make_record: Factory, make_episode: EpisodeFactory) -> Path:
    actor = PolicyInfo(kind="actor", model="qwen")
    records = [
        *make_episode(task_id="a"),                        # totals 1.0, 1.25, 1.5
        *make_episode(task_id="b", run_id="run-2", split="train"),
        make_record(task_id="c", policy=actor, parse_error="no action", verified=False,
                    reward=Reward(total=-1.0)),
    ]
    write_records(tmp_path / "raw" / "part-000000.jsonl", records, tail=b"oops\n")
    return tmp_path / "raw"


class TestStats:
    def test_counts_per_run_policy_and_split(self, src: Path) -> None:
        """Steps, episodes, verified, final matches, parse failures and mean reward add up."""
        stats = collect_stats([src])
        assert stats.total.as_dict() == {
            "steps": 7, "episodes": 3, "verified_steps": 6, "final_matches": 2,
            "parse_failures": 1, "mean_reward": round((3.75 * 2 - 1.0) / 7, 4)}
        assert set(stats.by["run"]) == {"run-1", "run-2"}
        assert stats.by["policy"]["actor/qwen"].parse_failures == 1
        assert stats.by["policy"]["reference/replay"].as_dict()["mean_reward"] == 1.25
        assert stats.by["split"]["train"].steps == 3
        assert stats.bad_lines == 1

    def test_command_prints_a_table(
        self, src: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The command prints one section per dimension and mentions bad lines."""
        assert main(["trajectories", "stats", str(src)]) == 0
        out = capsys.readouterr().out
        assert "reference/replay" in out
        assert "run-2" in out
        assert "1 lines were not valid records" in out


class TestBench:
    async def test_writer_throughput_reports_both_rates(self, tmp_path: Path) -> None:
        """The benchmark writes n records both ways and reports records/s and their ratio."""
        result = await writer_throughput(300, tmp_path, WriterConfig(fsync="never"))
        assert result["records"] == result["durable"] == 300
        assert result["writer_records_per_s"] > 0
        assert result["baseline_records_per_s"] > 0
        assert result["ratio"] > 0
        assert (tmp_path / "baseline.jsonl").read_bytes().count(b"\n") == 300
