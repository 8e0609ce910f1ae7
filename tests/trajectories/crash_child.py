"""Writes records of one episode forever until killed: ``crash_child.py DIR FIRST_STEP``.

Prints ``ready`` once the first batch is on disk. Records of 1 MiB in 32 MiB batches make each
``write`` long enough that the crash test, watching the shard's last byte, can see one in
progress and SIGKILL the writer in the middle of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import msgspec

from agentd.config import WriterConfig
from agentd.records import TrajectoryRecord
from agentd.testing.samples import sample_record
from agentd.trajectories import TrajectoryWriter

CONFIG = WriterConfig(fsync="never", flush_interval_s=0.001, batch_max_records=4096,
                      batch_max_bytes=32 << 20, rotate_bytes=256 << 20, queue_size=64)


async def main(directory: Path, first: int) -> None:
    told = False

    async def on_durable(batch: list[TrajectoryRecord]) -> None:
        nonlocal told
        if not told:
            print("ready", flush=True)
            told = True

    template = sample_record("crash", "task-0", 0, 0, prompt_bytes=1 << 20)
    async with TrajectoryWriter(directory, CONFIG, on_durable=on_durable) as writer:
        step = first
        while True:
            await writer.put(msgspec.structs.replace(template, step=step))
            step += 1


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), int(sys.argv[2]))
