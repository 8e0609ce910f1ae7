"""Provenance joins up: every record names the corpus version it came from, and so do the
Parquet export and `agentd report` (real engine, real jail, real shards)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from agentd.config import Settings
from agentd.datasets import corpus_version, write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.exports.export import Filter, export_parquet
from agentd.reports.teacher import build_report
from agentd.testing.tasks import make_task
from agentd.trajectories import iter_records


def build_corpus(settings: Settings, first: int) -> str:
    processed = settings.path(settings.agentd.paths.processed_data)
    (processed / "dev").mkdir(parents=True, exist_ok=True)
    write_tasks(processed / "dev" / "tasks.jsonl", [make_task(first + i, "dev") for i in range(2)])
    return corpus_version(processed)


async def run(settings: Settings, run_id: str) -> Path:
    summary = await run_foreground(settings, RunOptions(
        split="dev", policy="reference", limit=None, episodes=1, run_id=run_id, progress=False))
    return Path(summary["trajectories"])


async def test_records_exports_and_report_name_the_corpus(settings: Settings,
                                                          tmp_path: Path) -> None:
    v1 = build_corpus(settings, 0)
    dir1 = await run(settings, "corpus-a")
    v2 = build_corpus(settings, 10)  # a rebuild between two runs
    dir2 = await run(settings, "corpus-b")
    assert v1 and v2 and v1 != v2

    for directory, version in ((dir1, v1), (dir2, v2)):
        records = [r for _, _, r in iter_records([directory])]
        assert records and all(not isinstance(r, Exception) for r in records)
        assert {r.provenance.corpus_version for r in records} == {version}  # type: ignore[union-attr]

    out = tmp_path / "all.parquet"
    export_parquet([dir1, dir2], out, Filter())
    table = pq.read_table(out, columns=["run_id", "provenance_corpus_version"]).to_pylist()
    assert {(row["run_id"], row["provenance_corpus_version"]) for row in table} == \
        {("corpus-a", v1), ("corpus-b", v2)}

    report, steps, _ = await build_report(settings, None)
    text = report.read_text()
    assert steps == len(table)
    assert f"| corpus-a | {v1} |" in text and f"| corpus-b | {v2} |" in text
