"""The durable task queue: leasing, fencing, recovery, dead letters."""

from __future__ import annotations

import aiosqlite
import msgspec

from agentd.engine.queue import TaskQueue
from agentd.engine.results import Results
from agentd.state import SqliteStateStore
from agentd.testing.tasks import make_task


class TestIntake:
    async def test_submit_is_idempotent_per_run(self, queue: TaskQueue) -> None:
        """Submitting the same tasks to the same run twice adds them once."""
        tasks = [make_task(i) for i in range(3)]
        assert await queue.submit("r1", tasks, episodes=2, policy="reference") == 6
        assert await queue.submit("r1", tasks, episodes=2, policy="reference") == 0
        assert (await queue.counts("r1"))["queued"] == 6

    async def test_cancel_only_touches_queued(self, queue: TaskQueue) -> None:
        """cancel moves queued episodes of a run to cancelled; leased ones are left alone."""
        await queue.submit("r1", [make_task(i) for i in range(3)], episodes=1, policy="reference")
        [leased] = await queue.lease(1)
        assert await queue.cancel("r1") == 2
        counts = await queue.counts("r1")
        assert counts["cancelled"] == 2 and counts["leased"] == 1
        assert leased.task.task_id == "task0000"


class TestLeasing:
    async def test_lease_returns_task_and_progress(self, queue: TaskQueue) -> None:
        """A lease carries the full task, its attempt count and the next step."""
        await queue.submit("r1", [make_task(1)], episodes=1, policy="reference")
        [lease] = await queue.lease(5)
        assert lease.task == make_task(1) and lease.attempts == 1 and lease.next_step == 0
        assert await queue.lease(5) == []

    async def test_lease_can_be_limited_to_one_run(self, queue: TaskQueue) -> None:
        """`agentd run` leases only its own run's episodes."""
        await queue.submit("old", [make_task(1)], episodes=1, policy="reference")
        await queue.submit("new", [make_task(2)], episodes=1, policy="reference")
        leases = await queue.lease(5, run_id="new")
        assert [lease.run_id for lease in leases] == ["new"]

    async def test_advance_is_fenced_by_lease(self, queue: TaskQueue,
                                              store: SqliteStateStore) -> None:
        """A worker whose lease was requeued and re-leased cannot commit progress."""
        await queue.submit("r1", [make_task(1)], episodes=1, policy="reference")
        [first] = await queue.lease(1)
        async with store.db.transaction() as db:
            assert await queue.advance_in(db, first, step=0, files={"a": "b"}, done=False)
        async with store.db.transaction() as db:
            await db.execute("UPDATE queue SET lease_expires=0")
        assert await queue.requeue_expired() == 1
        [second] = await queue.lease(1)
        assert second.next_step == 1 and second.files == {"a": "b"}
        async with store.db.transaction() as db:
            assert not await queue.advance_in(db, first, step=1, files={}, done=True)
            assert await queue.advance_in(db, second, step=1, files={}, done=True)

    async def test_advance_refuses_a_step_out_of_order(self, queue: TaskQueue,
                                                       store: SqliteStateStore) -> None:
        """Committing a step twice (or skipping one) is refused."""
        await queue.submit("r1", [make_task(1)], episodes=1, policy="reference")
        [lease] = await queue.lease(1)
        async with store.db.transaction() as db:
            assert await queue.advance_in(db, lease, step=0, files={}, done=False)
            assert not await queue.advance_in(db, lease, step=0, files={}, done=False)
            assert not await queue.advance_in(db, lease, step=2, files={}, done=False)


    async def test_the_row_keeps_only_changed_files_and_resume_rebuilds_them(
        self, queue: TaskQueue, store: SqliteStateStore
    ) -> None:
        """Progress stores the files that differ from the task's (and deletions); a step that
        left the workspace alone keeps them; a re-lease gets the whole workspace back."""
        task = make_task(1)
        [path] = task.files
        await queue.submit("r1", [task], episodes=1, policy="reference")
        [lease] = await queue.lease(1)
        edited = {path: task.files[path], "pkg1/new.py": "y = 2\n"}
        async with store.db.transaction() as db:
            assert await queue.advance_in(db, lease, step=0, files=edited, done=False)
            assert await queue.advance_in(db, lease, step=1, files=None, done=False)
        [stored] = await store.db.fetch_all("SELECT files FROM queue")
        assert msgspec.json.decode(stored[0]) == {"pkg1/new.py": "y = 2\n"}
        async with store.db.transaction() as db:  # the task's own file deleted
            assert await queue.advance_in(db, lease, step=2, files={}, done=False)
        [stored] = await store.db.fetch_all("SELECT files FROM queue")
        assert msgspec.json.decode(stored[0]) == {path: None}
        async with store.db.transaction() as db:
            await db.execute("UPDATE queue SET lease_expires=0")
        await queue.requeue_expired()
        [again] = await queue.lease(1)
        assert again.next_step == 3 and again.files == {}


class TestRecovery:
    async def test_leases_of_an_earlier_boot_are_requeued(self, store: SqliteStateStore,
                                                          queue: TaskQueue) -> None:
        """On start, every lease held by a dead boot goes back to the queue."""
        await queue.submit("r1", [make_task(i) for i in range(2)], episodes=1, policy="reference")
        await queue.lease(2)
        reborn = TaskQueue(store.db, boot_id="boot-b", lease_s=60, max_attempts=2)
        assert await reborn.recover() == 2
        assert (await reborn.counts())["queued"] == 2

    async def test_failures_end_in_dead_letter(self, queue: TaskQueue) -> None:
        """An episode that keeps failing goes to dead with its last error."""
        await queue.submit("r1", [make_task(1)], episodes=1, policy="reference")
        [lease] = await queue.lease(1)
        assert await queue.finish(lease, error="boom 1") == "queued"
        [lease] = await queue.lease(1)
        assert await queue.finish(lease, error="boom 2") == "dead"
        [dead] = await queue.dead_letters()
        assert dead["last_error"] == "boom 2" and dead["attempts"] == 2

    async def test_release_does_not_count_as_attempt(self, queue: TaskQueue) -> None:
        """A lease handed back on drain keeps its attempt budget."""
        await queue.submit("r1", [make_task(1)], episodes=1, policy="reference")
        [lease] = await queue.lease(1)
        await queue.release(lease)
        [again] = await queue.lease(1)
        assert again.attempts == 1


class TestRouting:
    async def test_failed_by_counts_actor_failures(self, queue: TaskQueue,
                                                   store: SqliteStateStore) -> None:
        """Tasks the actor failed k times are found for difficulty-aware teacher routing."""
        await queue.submit("r1", [make_task(1), make_task(2)], episodes=2, policy="actor")
        leases = await queue.lease(4)
        results = Results(store.db)
        async with store.db.transaction() as db:
            for lease in leases:
                solved = lease.task_id == "task0002" and lease.episode == 0
                await results.record_result_in(db, lease, final_match=solved, steps=3)
        assert await results.failed_by("actor", 2) == {"task0001"}
        assert await results.failed_by("actor", 1) == {"task0001", "task0002"}


async def test_schema_is_shared_with_state_store(store: SqliteStateStore, queue: TaskQueue) -> None:
    """Queue tables live in the state store's database file."""
    async with aiosqlite.connect(store.db.path) as db:
        cur = await db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        names = {row[0] for row in await cur.fetchall()}
    assert {"queue", "tasks", "outbox", "episode_results"} <= names
