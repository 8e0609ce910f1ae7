"""Trajectories: the batched, crash-safe JSONL writer and the checks of its shards.

* ``writer``   — ``TrajectoryWriter`` (one task, bounded stream, batched writes, fsync policy)
* ``shards``   — the file side: shard names, appends, rotation, torn-line repair
* ``reader``   — ``iter_records`` streaming reads, ``last_record_key`` / ``existing_keys``
* ``verify``   — duplicates, gaps, schema errors, torn lines
* ``stats``    — counts per run, policy and split

The offline tools that turn shards into training data are ``agentd.exports``.
"""

from __future__ import annotations

from agentd.records import Key
from agentd.trajectories.reader import (
    SchemaError,
    TornLineError,
    existing_keys,
    iter_records,
    last_record_key,
)
from agentd.trajectories.writer import (
    TrajectorySink,
    TrajectoryWriter,
    WriterStatistics,
)

__all__ = [
    "Key", "SchemaError", "TornLineError", "TrajectorySink", "TrajectoryWriter",
    "WriterStatistics", "existing_keys", "iter_records", "last_record_key",
]
