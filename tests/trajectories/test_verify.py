"""`agentd trajectories verify`: duplicates, gaps, schema errors and torn lines, as file:line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agentd.cli import main
from agentd.records import TrajectoryRecord
from agentd.trajectories.verify import MAX_PROBLEMS, verify_paths

from .helpers import write_records

Factory = Callable[..., TrajectoryRecord]
EpisodeFactory = Callable[..., list[TrajectoryRecord]]


class TestVerify:
    def test_clean_files_pass(self, tmp_path: Path, make_episode: EpisodeFactory) -> None:
        """Complete episodes without repeats are OK."""
        write_records(tmp_path / "r" / "part-000000.jsonl",
                      make_episode(task_id="a") + make_episode(task_id="b", steps=5))
        report = verify_paths([tmp_path])
        assert report.ok
        assert (report.records, report.episodes) == (8, 2)

    def test_finds_a_duplicate_where_it_is(
        self, tmp_path: Path, make_episode: EpisodeFactory
    ) -> None:
        """A key written twice is reported at the second copy's file and line."""
        episode = make_episode()
        shard = tmp_path / "r" / "part-000001.jsonl"
        write_records(tmp_path / "r" / "part-000000.jsonl", episode)
        write_records(shard, [episode[1]])
        report = verify_paths([tmp_path])
        assert report.counts == {"duplicate": 1}
        assert (report.problems[0].path, report.problems[0].line) == (shard, 1)
        assert "step 1" in report.problems[0].detail

    def test_finds_a_gap(self, tmp_path: Path, make_episode: EpisodeFactory) -> None:
        """Step 2 without step 1 in the same episode is a gap naming the missing step."""
        episode = make_episode(steps=3)
        write_records(tmp_path / "a.jsonl", [episode[0], episode[2]])
        report = verify_paths([tmp_path])
        assert report.counts == {"gap": 1}
        assert "missing step(s) 1" in report.problems[0].detail

    def test_gap_check_is_per_episode(self, tmp_path: Path, make_record: Factory) -> None:
        """Steps of different episodes, tasks or runs do not fill each other's gaps."""
        write_records(tmp_path / "a.jsonl", [
            make_record(step=0), make_record(step=1, episode=1), make_record(step=1, run_id="x"),
        ])
        report = verify_paths([tmp_path])
        assert report.counts == {"gap": 2}

    def test_a_huge_step_number_is_reported_cheaply(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """A corrupt step of 10**12 is a gap with a count, not a billion-element scan."""
        write_records(tmp_path / "a.jsonl", [make_record(step=10**12)])
        report = verify_paths([tmp_path])
        assert "(+999999999990 more)" in report.problems[0].detail

    def test_finds_schema_errors_and_torn_lines(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Invalid JSON, invalid records and a missing final newline each count."""
        path = tmp_path / "a.jsonl"
        write_records(path, [make_record(step=0)],
                      tail=b'{"run_id": 3}\nnot json\n\n{"run_id": "r')
        report = verify_paths([tmp_path])
        assert report.counts == {"schema": 3, "torn_line": 1}
        assert [p.line for p in report.problems] == [2, 3, 4, 5]
        assert not report.ok

    def test_lists_only_the_first_problems(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Problem details are bounded; the counts are not."""
        write_records(tmp_path / "a.jsonl", [], tail=b"x\n" * (MAX_PROBLEMS + 5))
        report = verify_paths([tmp_path])
        assert report.counts["schema"] == MAX_PROBLEMS + 5
        assert len(report.problems) == MAX_PROBLEMS


class TestVerifyCommand:
    def test_exit_code_zero_when_clean(
        self, tmp_path: Path, make_episode: EpisodeFactory, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A clean directory prints OK and exits 0."""
        write_records(tmp_path / "r" / "part-000000.jsonl", make_episode())
        assert main(["trajectories", "verify", str(tmp_path)]) == 0
        assert capsys.readouterr().out.startswith("OK: 1 files, 3 lines, 3 records")

    def test_exit_code_one_with_file_and_line(
        self, tmp_path: Path, make_episode: EpisodeFactory, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Problems make it exit 1 and print file:line for each."""
        path = tmp_path / "a.jsonl"
        episode = make_episode()
        write_records(path, [*episode, episode[0]], tail=b"{")
        assert main(["trajectories", "verify", str(path)]) == 1
        out = capsys.readouterr().out
        assert out.startswith("FAILED")
        assert f"{path}:4: duplicate" in out
        assert f"{path}:5: torn_line" in out

    def test_missing_path_exits_two(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A path that does not exist is a usage error: one line, exit 2."""
        assert main(["trajectories", "verify", str(tmp_path / "nope")]) == 2
        assert "no such file" in capsys.readouterr().err
