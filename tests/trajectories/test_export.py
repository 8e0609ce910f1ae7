"""Exports: filtered JSONL, a lossless Parquet round trip, SRL step data, atomic output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec
import pyarrow.parquet as pq
import pytest

from agentd.cli import main
from agentd.episode.similarity import srl_similarity
from agentd.exports.export import Filter, export_jsonl, export_parquet, export_srl
from agentd.exports.parquet import (
    SCHEMA,
    ParquetSink,
    flatten,
    read_parquet_records,
    row_to_record,
)
from agentd.exports.srl import SrlInstance
from agentd.exports.tasks import TaskIndex
from agentd.records import (
    PolicyInfo,
    Reward,
    Task,
    TaskMeta,
    TrajectoryRecord,
)

from .helpers import read_lines, write_records

Factory = Callable[..., TrajectoryRecord]
EpisodeFactory = Callable[..., list[TrajectoryRecord]]


def _mixed(make_record: Factory, make_episode: EpisodeFactory) -> list[TrajectoryRecord]:
    """Reference and teacher episodes, an actor step with a parse error, a train split."""
    teacher = PolicyInfo(kind="teacher", model="MiniMax-M2", endpoint="https://t", seed=None)
    return [
        *make_episode(task_id="t1"),
        *make_episode(task_id="t2", steps=2, policy=teacher, split="train"),
        make_record(task_id="t3", policy=PolicyInfo(kind="actor", model="qwen"),
                    parse_error="no <action> tag", verified=False, sandbox_result=None,
                    model_output=msgspec.structs.replace(
                        make_record().model_output, action=None, state_update=None),
                    reward=Reward(total=-1.0)),
    ]


@pytest.fixture
def records(make_record: Factory, make_episode: EpisodeFactory) -> list[TrajectoryRecord]:
    return _mixed(make_record, make_episode)


@pytest.fixture
def src(tmp_path: Path, records: list[TrajectoryRecord]) -> Path:
    write_records(tmp_path / "raw" / "run-1" / "part-000000.jsonl", records, tail=b"{torn")
    return tmp_path / "raw"


class TestJsonl:
    @pytest.mark.parametrize(("flt", "tasks"), [
        (Filter(), ["t1", "t1", "t1", "t2", "t2", "t3"]),
        (Filter(verified_only=True), ["t1", "t1", "t1", "t2", "t2"]),
        (Filter(policy="teacher"), ["t2", "t2"]),
        (Filter(policy="actor/qwen"), ["t3"]),
        (Filter(split="train"), ["t2", "t2"]),
    ])
    def test_filters(self, src: Path, tmp_path: Path, flt: Filter, tasks: list[str]) -> None:
        """verified-only, policy (kind or kind/model) and split keep the right records."""
        out = tmp_path / "out.jsonl"
        result = export_jsonl([src], out, flt)
        got = [msgspec.json.decode(x, type=TrajectoryRecord).task_id for x in read_lines(out)]
        assert got == tasks
        assert (result.written, result.skipped_lines) == (len(tasks), 1)

    def test_lines_are_copied_byte_for_byte(self, src: Path, tmp_path: Path) -> None:
        """The export does not re-encode: kept lines are the shard's own bytes."""
        out = tmp_path / "out.jsonl"
        export_jsonl([src], out, Filter())
        shard = (src / "run-1" / "part-000000.jsonl").read_bytes()
        assert out.read_bytes() == shard[: shard.rindex(b"\n") + 1]


class TestParquet:
    def test_flatten_is_lossless(self, records: list[TrajectoryRecord]) -> None:
        """Every record survives flatten -> row_to_record, including None results and actions."""
        assert [row_to_record(flatten(r)) for r in records] == records

    def test_columns_are_exactly_the_schema(self, records: list[TrajectoryRecord]) -> None:
        """A record field without a column (or a stale column) breaks this test."""
        assert sorted(flatten(records[0])) == sorted(SCHEMA.names)

    def test_round_trip_same_rows_same_rewards(
        self, src: Path, tmp_path: Path, records: list[TrajectoryRecord]
    ) -> None:
        """Read back with pyarrow: the same rows in order, the same reward columns."""
        out = tmp_path / "t.parquet"
        export_parquet([src], out, Filter())
        table = pq.read_table(out)
        assert table.schema.equals(SCHEMA)
        assert table.column("step").to_pylist() == [r.step for r in records]
        assert table.column("reward_total").to_pylist() == [r.reward.total for r in records]
        assert table.column("reward_progress").to_pylist() == [r.reward.progress for r in records]
        assert table.column("action_tool").to_pylist()[-1] is None
        assert list(read_parquet_records(out)) == records

    def test_row_groups_bound_memory(self, tmp_path: Path, make_record: Factory) -> None:
        """Rows are flushed in groups as they come, not held until the end."""
        out = tmp_path / "t.parquet"
        with out.open("wb") as f, ParquetSink(f, row_group=4) as sink:
            for k in range(10):
                sink.add(make_record(step=k))
        assert pq.ParquetFile(out).metadata.num_row_groups == 3


def _task(task_id: str) -> Task:
    return Task(task_id=task_id, split="dev", language="python",
                instruction=f"instruction of {task_id}", files={"m.py": "print(1)\n"},
                gold={"m.py": "log(1)\n"}, reference_actions=[],
                meta=TaskMeta(dataset="d", source_path="m.py", recipe="r", license="MIT",
                              source_sha256="0" * 64))


class TestSrl:
    def test_round_trip_instances_from_expert_episodes(
        self, src: Path, tmp_path: Path, records: list[TrajectoryRecord]
    ) -> None:
        """One instance per expert step, with task context, targets and the same rewards."""
        tasks = tmp_path / "tasks.jsonl"
        tasks.write_bytes(msgspec.json.encode(_task("t1")) + b"\n"
                          + msgspec.json.encode(_task("t2")) + b"\n")
        out = tmp_path / "srl.jsonl"
        result = export_srl([src], out, Filter(), TaskIndex([tasks]))
        instances = [msgspec.json.decode(x, type=SrlInstance) for x in read_lines(out)]
        experts = [r for r in records if r.task_id != "t3"]
        assert result.written == len(instances) == len(experts)
        assert [(i.task_id, i.step) for i in instances] == [(r.task_id, r.step) for r in experts]
        assert [i.reward_total for i in instances] == [r.reward.total for r in experts]
        assert [i.expert_kind for i in instances] == ["reference"] * 3 + ["teacher"] * 2
        assert instances[4].instruction == "instruction of t2"
        assert instances[4].files == {"m.py": "print(1)\n"}
        for inst, rec in zip(instances, experts, strict=True):
            assert srl_similarity(inst.target_action, rec.model_output.action) == 1.0
            assert [s.step for s in inst.previous_steps] == list(range(rec.step))

    def test_without_tasks_the_prompt_is_the_context(self, src: Path, tmp_path: Path) -> None:
        """No task file: instruction and files are empty, the recorded prompt remains."""
        out = tmp_path / "srl.jsonl"
        export_srl([src], out, Filter(policy="teacher"))
        instances = [msgspec.json.decode(x, type=SrlInstance) for x in read_lines(out)]
        assert len(instances) == 2
        assert instances[0].instruction == ""
        assert instances[0].prompt.startswith("Refactor print calls")


class TestAtomicOutput:
    def test_a_failed_export_leaves_nothing_behind(
        self, src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An error mid-export removes the temporary file and never creates --out."""
        out_dir = tmp_path / "out"
        out_dir.mkdir()
        (out_dir / "t.parquet").write_bytes(b"previous export")

        def boom(record: TrajectoryRecord) -> dict[str, object]:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr("agentd.exports.parquet.flatten", boom)
        with pytest.raises(RuntimeError):
            export_parquet([src], out_dir / "t.parquet", Filter())
        assert [p.name for p in out_dir.iterdir()] == ["t.parquet"]
        assert (out_dir / "t.parquet").read_bytes() == b"previous export"


class TestExportCommand:
    @pytest.mark.parametrize("fmt", ["jsonl", "parquet", "srl"])
    def test_each_format_from_the_command_line(
        self, src: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`agentd trajectories export` writes --out and says how many it wrote."""
        out = tmp_path / f"o.{fmt}"
        argv = ["trajectories", "export", str(src), "--format", fmt, "--out", str(out),
                "--verified-only", "--tasks", str(tmp_path / "raw")]
        assert main(argv) == 0
        assert out.stat().st_size > 0
        said = capsys.readouterr().out
        assert f"{out}: 5 " in said
        assert "1 bad lines skipped" in said
