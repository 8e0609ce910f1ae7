"""SqliteStateStore throughput next to a plain synchronous sqlite3 loop doing the same writes.

    .venv/bin/python benchmarks/state_store.py [--episodes 200] [--steps 10] [--synchronous NORMAL]

The store runs ``episodes`` concurrent coroutines, each saving ``steps`` versions of one
realistic state by compare-and-swap (own transaction per save, audit row by trigger), then
loading it ``steps`` times. The baseline does the same statements in one thread with the
``sqlite3`` module: one autocommit INSERT-or-UPDATE per save (the store's own ``save`` is
the same single statement), one SELECT per load.
Both use the same schema, WAL mode and synchronous level, on fresh files in one temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from agentd.config import StateConfig
from agentd.state import SqliteStateStore, State, decode_state, encode_state
from agentd.state.store import _INSERT, _UPDATE, SCHEMA


def sample_state(step: int) -> State:
    pad = "x" * 120
    return State(
        goals=[f"goal {i} {pad}" for i in range(3)],
        constraints=[f"constraint {i} {pad}" for i in range(2)],
        decisions=[f"decision {i} {pad}" for i in range(4)],
        hypotheses=[f"hypothesis {i} {pad}" for i in range(3)],
        history=[f"step {step - i} {pad}" for i in range(3)],
        open_issues=[f"issue {i} {pad}" for i in range(2)],
        next_focus=f"focus {step}",
    )


async def bench_store(
    path: Path, cfg: StateConfig, episodes: int, steps: int
) -> tuple[float, float]:
    store = await SqliteStateStore.open(path, cfg)
    states = [sample_state(s) for s in range(steps)]

    async def saver(ep: int) -> None:
        version = 0
        for s in range(steps):
            version = await store.save("bench", f"task{ep}", 0, states[s], version)

    async def loader(ep: int) -> None:
        for _ in range(steps):
            await store.load("bench", f"task{ep}", 0)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(saver(ep) for ep in range(episodes)))
        t1 = time.perf_counter()
        await asyncio.gather(*(loader(ep) for ep in range(episodes)))
        t2 = time.perf_counter()
    finally:
        await store.close()
    n = episodes * steps
    return n / (t1 - t0), n / (t2 - t1)


def bench_sqlite3(path: Path, cfg: StateConfig, episodes: int, steps: int) -> tuple[float, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {cfg.sqlite_synchronous}")
    conn.executescript(SCHEMA)
    blobs = [encode_state(sample_state(s)).decode() for s in range(steps)]
    t0 = time.perf_counter()
    for s in range(steps):  # the same interleaving the concurrent episodes produce
        for ep in range(episodes):
            if s == 0:
                conn.execute(_INSERT, ("bench", f"task{ep}", 0, blobs[s], time.time()))
            else:
                conn.execute(_UPDATE, (blobs[s], time.time(), "bench", f"task{ep}", 0, s))
    t1 = time.perf_counter()
    sql = "SELECT state, version, updated_at FROM states WHERE run_id=? AND task_id=? AND episode=?"
    for _ in range(steps):
        for ep in range(episodes):
            row = conn.execute(sql, ("bench", f"task{ep}", 0)).fetchone()
            decode_state(row[0])  # the store decodes each load, so the baseline does too
    t2 = time.perf_counter()
    conn.close()
    n = episodes * steps
    return n / (t1 - t0), n / (t2 - t1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--synchronous", default="NORMAL", choices=["OFF", "NORMAL", "FULL"])
    args = parser.parse_args()
    cfg = StateConfig(sqlite_synchronous=args.synchronous)
    with tempfile.TemporaryDirectory() as tmp:
        store_saves, store_loads = asyncio.run(
            bench_store(Path(tmp) / "store.sqlite3", cfg, args.episodes, args.steps)
        )
        base_saves, base_loads = bench_sqlite3(
            Path(tmp) / "plain.sqlite3", cfg, args.episodes, args.steps
        )
    n = args.episodes * args.steps
    print(f"{n} saves and {n} loads, {args.episodes} concurrent episodes, "
          f"synchronous={args.synchronous}")
    print(f"{'':<22}{'saves/s':>10}{'loads/s':>10}")
    print(f"{'StateStore (aiosqlite)':<22}{store_saves:>10.0f}{store_loads:>10.0f}")
    print(f"{'sqlite3 sync loop':<22}{base_saves:>10.0f}{base_loads:>10.0f}")
    print(f"{'ratio store/sqlite3':<22}{store_saves / base_saves:>10.2f}"
          f"{store_loads / base_loads:>10.2f}")


if __name__ == "__main__":
    main()
