"""Many writers and hard crashes against one real database file."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

from agentd.config import StateConfig
from agentd.errors import StateConflictError
from agentd.state import SqliteStateStore, merge

CAPS = StateConfig()
WRITERS, KEYS, STEPS = 200, 50, 5

CHILD = '''
import asyncio, sys
from pathlib import Path
from agentd.state import SqliteStateStore, State

CALLER_ROWS = "CREATE TABLE IF NOT EXISTS caller_rows (step INTEGER NOT NULL, payload TEXT)"
PAD = "p" * 200

async def main(path: str) -> None:
    store = await SqliteStateStore.open(Path(path))
    await store.db.execute(CALLER_ROWS)
    version = (await store.load("r", "t", 0)).version
    while True:
        state = State(history=[str(version + 1)], decisions=[f"{k} {PAD}" for k in range(8)])
        async with store.db.transaction() as db:
            version = await store.save_in(db, "r", "t", 0, state, version)
            await db.executemany("INSERT INTO caller_rows VALUES (?, ?)", [(version, PAD * 4)] * 50)
        print(version, flush=True)

asyncio.run(main(sys.argv[1]))
'''


class BlockingCallWatch:
    """Records every sqlite3 call and ``time.sleep`` made on the thread that enters it.

    Entered on the event loop's thread, it proves the store never blocks the loop with
    database work, whatever the machine's speed (a profile hook, not a timer).
    """

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _hook(self, frame: object, event: str, arg: object) -> None:
        if event != "c_call":
            return
        owner = getattr(arg, "__self__", None)
        if type(owner).__module__ == "sqlite3" or arg is time.sleep:
            self.seen.append(getattr(arg, "__qualname__", repr(arg)))

    def __enter__(self) -> BlockingCallWatch:
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)


async def run_episode(store: SqliteStateStore, writer: int, conflicts: list[int]) -> None:
    key = ("run", f"task{writer % KEYS}", 0)
    for step in range(STEPS):
        mark = f"w{writer}s{step}"
        while True:
            current = await store.load(*key)
            new = merge(current.state, {"history": [mark], "next_focus": mark}, CAPS).state
            try:
                await store.save(*key, new, current.version)
                break
            except StateConflictError:
                conflicts.append(writer)
                await asyncio.sleep(0)


class TestConcurrentEpisodes:
    async def test_200_episodes_lose_no_update(self, tmp_path: Path) -> None:
        """200 episodes on 50 shared keys through two connections: every save survives."""
        path = tmp_path / "state.sqlite3"
        stores = [await SqliteStateStore.open(path, CAPS), await SqliteStateStore.open(path, CAPS)]
        conflicts: list[int] = []
        try:
            with BlockingCallWatch() as watch:
                await asyncio.gather(*(
                    run_episode(stores[w % 2], w, conflicts) for w in range(WRITERS)
                ))
            for k in range(KEYS):
                trail = await stores[0].history("run", f"task{k}", 0)
                writers = [w for w in range(WRITERS) if w % KEYS == k]
                expected = {f"w{w}s{s}" for w in writers for s in range(STEPS)}
                assert [s.version for s in trail] == list(range(1, len(expected) + 1))
                assert {s.state.next_focus for s in trail} == expected
                for before, after in itertools.pairwise(trail):
                    # each version was built on the one before it: nothing was overwritten
                    assert after.state.history[-2] == before.state.history[-1]
        finally:
            for s in stores:
                await s.close()
        assert conflicts, "the test must exercise compare-and-swap conflicts"
        assert watch.seen == [], f"blocking calls on the event loop: {sorted(set(watch.seen))}"


async def read_versions(proc: asyncio.subprocess.Process, n: int) -> int:
    assert proc.stdout is not None
    last = 0
    for _ in range(n):
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line, "child died early"
        last = int(line)
    return last


def check_store(path: Path) -> tuple[str, int, list[int]]:
    with sqlite3.connect(path) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        per_step = conn.execute(
            "SELECT count(*) FROM caller_rows GROUP BY step HAVING count(*) != 50"
        ).fetchall()
        steps = conn.execute("SELECT count(DISTINCT step) FROM caller_rows").fetchone()[0]
    return integrity, steps, [r[0] for r in per_step]


class TestCrashSafety:
    async def test_sigkill_mid_write_leaves_a_loadable_store(self, tmp_path: Path) -> None:
        """A writer SIGKILLed three times loses no acknowledged save and tears no transaction."""
        path = tmp_path / "state.sqlite3"
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        acknowledged = 0
        for round_ in range(3):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(script), str(path),
                stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            acknowledged = await read_versions(proc, 20 + round_ * 7)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            assert proc.returncode == -signal.SIGKILL
            async with await SqliteStateStore.open(path, CAPS) as store:
                got = await store.load("r", "t", 0)
                trail = await store.history("r", "t", 0, limit=100_000)
            assert got.version >= acknowledged
            assert got.state.history == [str(got.version)]
            assert [s.version for s in trail] == list(range(1, got.version + 1))
            integrity, steps, torn = await asyncio.to_thread(check_store, path)
            assert integrity == "ok"
            assert steps == got.version  # every committed step has its rows, and no other
            assert torn == []
