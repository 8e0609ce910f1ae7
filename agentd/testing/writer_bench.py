"""Writer throughput against the simplest possible baseline, for ``benchmarks/pipeline.py``.

The baseline is what one would write without the writer: ``json.dumps`` of each record's
dict plus a buffered ``write``, in one thread, with no batching policy, no durability callback
and one fsync at the end. The writer runs with its configured policy (default: fsync every
second) and pays for the stream hand-off, msgspec encoding and thread hops per batch.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec

from agentd.config import WriterConfig
from agentd.records import TrajectoryRecord
from agentd.testing.samples import sample_record
from agentd.trajectories.writer import TrajectoryWriter


def _records(n: int, run_id: str) -> list[TrajectoryRecord]:
    return [sample_record(run_id, f"task-{i // 8:05d}", 0, i % 8) for i in range(n)]


async def _run_writer(records: list[TrajectoryRecord], directory: Path,
                      config: WriterConfig) -> tuple[float, dict[str, Any]]:
    durable = 0

    async def on_durable(batch: list[TrajectoryRecord]) -> None:
        nonlocal durable
        durable += len(batch)

    started = time.perf_counter()
    async with TrajectoryWriter(directory, config, on_durable=on_durable) as writer:
        for record in records:
            await writer.put(record)
    elapsed = time.perf_counter() - started
    stats = writer.statistics()
    return elapsed, {"bytes": stats.bytes, "batches": stats.batches, "fsyncs": stats.fsyncs,
                     "durable": durable}


def _baseline(dicts: list[dict[str, Any]], path: Path) -> float:
    started = time.perf_counter()
    with path.open("w", encoding="utf-8") as f:
        for d in dicts:
            f.write(json.dumps(d) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - started


async def writer_throughput(
    n: int, tmp: Path, config: WriterConfig | None = None
) -> dict[str, Any]:
    """Records/s of ``TrajectoryWriter`` and of a plain ``json.dumps`` + ``write`` loop.

    Both write the same ``n`` realistic records (about 4 KB each) under ``tmp``.
    """
    config = config or WriterConfig()
    records = _records(n, "bench-writer")
    writer_s, info = await _run_writer(records, tmp / "writer", config)
    dicts = [msgspec.to_builtins(r) for r in records]  # a plain program already has dicts
    baseline_s = await anyio.to_thread.run_sync(_baseline, dicts, tmp / "baseline.jsonl")
    writer_rps, baseline_rps = n / writer_s, n / baseline_s
    return {
        "records": n, "fsync": config.fsync,
        "writer_records_per_s": round(writer_rps), "baseline_records_per_s": round(baseline_rps),
        "ratio": round(writer_rps / baseline_rps, 3),
        "writer_mb_per_s": round(info["bytes"] / writer_s / 1e6, 1), **info,
    }
