"""The engine: queue → episode workers → trajectory writer, shared by ``serve`` and ``run``.

It owns the database and its repositories (state, queue, results, outbox), the sandbox, the
policies and the writer; it wires them once — one ``EpisodeRunner`` and one ``StepCommitter``
per engine — leases episodes up to the configured concurrency and hands each to the runner;
steps are committed exactly once by the committer (``commit.py``).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup

from agentd.config import Settings
from agentd.datasets import corpus_version
from agentd.engine.budget import RunBudget
from agentd.engine.commit import LeaseLostError, Replay, StepCommitter
from agentd.engine.gate import IntakeGate
from agentd.engine.intake import Selection, chunks
from agentd.engine.outbox import Outbox
from agentd.engine.policies import PolicyRegistry
from agentd.engine.queue import TaskQueue
from agentd.engine.results import Results, Submission
from agentd.engine.submission import SubmitRequest
from agentd.episode.lease import Lease
from agentd.episode.runner import EpisodeRunner, Outcome
from agentd.episode.wiring import EpisodeConfig
from agentd.errors import (
    AgentdError,
    EpisodeTimeoutError,
    PolicyError,
    PromptTooLongError,
    UsageError,
)
from agentd.logging import get_logger, log_context
from agentd.metrics import Metrics
from agentd.sandbox import Sandbox
from agentd.state import Database, EstimateCounter, SqliteStateStore
from agentd.state.counters import counter_for
from agentd.trajectories import TrajectoryWriter
from agentd.verify import Verifier

log = get_logger(__name__)


class Engine:
    """Owns the database, queue, sandbox, policies, writer and the episode workers."""

    def __init__(self, settings: Settings, *, boot_id: str | None = None,
                 only_run: str | None = None) -> None:
        """``only_run``: lease that run's episodes only (``agentd run``)."""
        self.settings = settings
        self.boot_id = boot_id or uuid.uuid4().hex[:12]
        self.only_run = only_run
        self.metrics = Metrics()
        self.db: Database | None = None
        self.queue: TaskQueue | None = None
        self.results: Results | None = None
        self.writer: TrajectoryWriter | None = None
        self._committer: StepCommitter | None = None
        self._runner: EpisodeRunner | None = None
        self.sandbox = Sandbox(settings.sandbox, workspaces_dir=self._path("workspaces"),
                               log_dir=settings.path(settings.sandbox.log_dir))
        self.verifier = Verifier(self.sandbox)  # one per engine: its task cache is shared
        self.policies = PolicyRegistry(settings, EstimateCounter())
        self._slots = anyio.CapacityLimiter(settings.agentd.episodes.concurrency)
        self._in_flight: dict[str, Lease] = {}
        self.gate = IntakeGate()
        self.budget = RunBudget(settings.agentd.budget)
        self._stopping = anyio.Event()  # set by drain(): runners hand unfinished episodes back
        self._pending: list[Replay] = []
        self._drained = anyio.Event()  # set when draining and the last episode has left
        self._ended = anyio.Event()  # set (and replaced) each time an episode leaves
        self._episodes_scope = anyio.CancelScope()
        self._started = time.time()

    def _path(self, name: str) -> Path:
        path: Path = getattr(self.settings.agentd.paths, name)
        return self.settings.path(path)

    # ---------------------------------------------------------------- lifecycle

    async def open(self) -> dict[str, int]:
        """Open the database, requeue stale leases and recover the outbox; returns counts."""
        self.db = db = await Database.open(self._path("database"), self.settings.agentd.state)
        self.policies = PolicyRegistry(self.settings, await counter_for(self.settings.agentd.state))
        q = self.settings.agentd.queue
        self.queue = TaskQueue(db, boot_id=self.boot_id, lease_s=q.lease_s,
                               max_attempts=q.max_attempts)
        self.results = Results(db)
        requeued = await self.queue.recover()
        outbox = Outbox(db)
        self.writer = TrajectoryWriter(self._path("trajectories"), self.settings.agentd.writer,
                                       on_durable=outbox.on_durable)
        self._committer = committer = StepCommitter(
            db, SqliteStateStore(db), self.queue, self.results, outbox, self.writer,
            budget=self.budget, gate=self.gate)
        self._runner = self._build_runner()
        pending = await committer.recover(self.writer)
        poisoned = committer.poisoned
        log.info("engine.recovered", requeued_leases=requeued, outbox_pending=len(pending),
                 outbox_poisoned=poisoned)
        self._pending = pending
        return {"requeued_leases": requeued, "outbox_pending": len(pending),
                "outbox_poisoned": poisoned}

    async def start(self, tg: TaskGroup) -> None:
        """Start the writer (replaying the outbox first), the dispatcher and the watchdog."""
        assert self.writer is not None
        await tg.start(self.writer.run)
        for record, encoded in self._pending:
            await self.writer.put(record, encoded)
        self._pending = []
        self.policies.start(tg)
        tg.start_soon(self._dispatch, tg)
        tg.start_soon(self._watchdog)

    async def drain(self, deadline_s: float) -> int:
        """Stop leasing, let in-flight steps finish; returns how many episodes were cut off."""
        self._stopping.set()
        with anyio.move_on_after(deadline_s):
            if self._in_flight:
                await self._drained.wait()
        abandoned = len(self._in_flight)
        self._episodes_scope.cancel()
        for lease in list(self._in_flight.values()):
            await self._release(lease)
        if self.writer is not None:
            # Flush while the writer task still runs: everything committed reaches the shards.
            with anyio.CancelScope(shield=True):
                await self.writer.close()
        return abandoned

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        await self.policies.aclose()
        if self.db is not None:
            await self.db.close()

    def reload(self, new: Settings) -> dict[str, Any]:
        """Apply what can change live (concurrency); list what needs a restart."""
        old = self.settings
        changes: dict[str, Any] = {}
        if new.agentd.budget != old.agentd.budget:
            self.budget.config = new.agentd.budget
            changes["budget"] = new.agentd.budget.model_dump()
        if new.agentd.episodes.concurrency != old.agentd.episodes.concurrency:
            self._slots.total_tokens = new.agentd.episodes.concurrency
            changes["episodes.concurrency"] = new.agentd.episodes.concurrency
        restart = [name for name in ("paths", "admin", "writer", "state")
                   if getattr(new.agentd, name) != getattr(old.agentd, name)]
        if new.sandbox != old.sandbox:
            restart.append("sandbox")
        self.settings = self.policies.settings = new
        if self._runner is not None:  # new episodes read the new prompts, caps and sampling
            self._runner = self._build_runner()
        changes["needs_restart"] = restart
        changes["config_hash"] = new.config_hash
        return changes

    # ---------------------------------------------------------------- control

    def pause(self, reason: str = "paused by the operator") -> None:
        self.gate.pause(reason)

    def resume(self) -> None:
        self.gate.resume()

    @property
    def pause_reason(self) -> str:
        """Why intake is paused (the operator, or a budget cap); empty when it is not."""
        return self.gate.reason if self.gate.paused else ""

    async def submit(self, req: SubmitRequest) -> Submission:
        """Queue a checked submission (``submission.parse_submit``): tasks × episodes, under
        the corpus version of the moment (their records' provenance)."""
        assert self.queue is not None and self.results is not None
        selection = await self._selection(req)
        processed = self.settings.path(self.settings.agentd.paths.processed_data)
        version = await anyio.to_thread.run_sync(corpus_version, processed)
        tasks = added = 0
        batches = chunks(selection)
        while (batch := await anyio.to_thread.run_sync(next, batches, None)) is not None:
            added += await self.queue.submit(req.run_id, batch, episodes=req.episodes,
                                             policy=req.policy, corpus_version=version)
            tasks += len(batch)
        done = Submission(run_id=req.run_id, policy=req.policy, split=req.split, tasks=tasks,
                          episodes=added, route=req.route,
                          min_failures=req.min_failures if req.route else None)
        await self.results.record_submission(done)
        log.info("engine.submitted", run_id=req.run_id, tasks=tasks, episodes=added)
        return done

    async def _selection(self, req: SubmitRequest) -> Selection:
        """The tasks a submission asks for; difficulty routing keeps the actor's failures."""
        assert self.results is not None
        if not req.source.exists():
            raise UsageError(f"no tasks at {req.source} (run `agentd data build` first)")
        only = None
        if req.route is not None:
            only = frozenset(await self.results.failed_by("actor", req.min_failures))
        return Selection(req.source, req.task_ids, req.limit, only)

    @property
    def episodes_in_flight(self) -> int:
        """Episodes leased to a worker right now."""
        return len(self._in_flight)

    async def episode_ended(self, timeout_s: float) -> bool:
        """Wait until an episode leaves its worker (finished, failed or handed back), at most
        ``timeout_s``; whether one did. Lets a caller watch a run without polling the queue."""
        ended = self._ended
        with anyio.move_on_after(timeout_s):
            await ended.wait()
        return ended.is_set()

    async def cancel(self, run_id: str, task_ids: list[str] | None = None) -> int:
        """Cancel a run's queued episodes (all, or those of ``task_ids``); how many."""
        assert self.queue is not None
        return await self.queue.cancel(run_id, task_ids)

    # ---------------------------------------------------------------- dispatch

    async def _dispatch(self, tg: TaskGroup) -> None:
        assert self.queue is not None
        poll = self.settings.agentd.queue.poll_interval_s
        with self._episodes_scope:
            async with anyio.create_task_group() as episodes:
                while not self._stopping.is_set():
                    if self.gate.paused:
                        await self._until_open_or_stopping()
                        continue
                    slot = object()  # the limiter counts borrowers; each episode is one
                    await self._slots.acquire_on_behalf_of(slot)
                    leases = [] if self._stopping.is_set() else await self.queue.lease(
                        1, run_id=self.only_run)
                    if not leases:
                        self._slots.release_on_behalf_of(slot)
                        await anyio.sleep(poll)
                        continue
                    self._in_flight[_key(leases[0])] = leases[0]
                    episodes.start_soon(self._episode, leases[0], slot)

    async def _until_open_or_stopping(self) -> None:
        async with anyio.create_task_group() as tg:
            async def first(wait: Callable[[], Awaitable[object]]) -> None:
                await wait()
                tg.cancel_scope.cancel()

            tg.start_soon(first, self.gate.wait_open)
            tg.start_soon(first, self._stopping.wait)

    async def _episode(self, lease: Lease, slot: object) -> None:
        assert self.queue is not None
        with log_context(run_id=lease.run_id, task_id=lease.task_id, episode=lease.episode):
            try:
                outcome = await self._run_in_time(lease)
            except LeaseLostError:
                log.warning("episode.lease_lost")
                return
            except PromptTooLongError as exc:  # the same prompt would overflow again: no retry
                self.metrics.inc("prompts_too_long")
                await self._fail(lease, f"prompt_too_long: {exc}", retry=False)
            except (PolicyError, TimeoutError, AgentdError) as exc:
                await self._fail(lease, f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a bug in one episode must not stop the others
                log.error("episode.crashed", error=repr(exc))
                await self._fail(lease, f"internal error: {type(exc).__name__}: {exc}")
            else:
                if outcome == "released":
                    await self.queue.release(lease)
                else:
                    await self.queue.finish(lease)
                    self.metrics.inc("episodes_done")
            finally:
                self._forget(lease)
                self._slots.release_on_behalf_of(slot)

    async def _run_in_time(self, lease: Lease) -> Outcome:
        """The lease's episode, cut off at ``episode_timeout_s`` (its committed steps stay)."""
        limit = self.settings.agentd.episodes.episode_timeout_s
        with anyio.move_on_after(limit):
            assert self._runner is not None
            return await self._runner.run(lease)
        self.metrics.inc("episodes_timed_out")
        raise EpisodeTimeoutError(f"the episode ran past episodes.episode_timeout_s ({limit} s)")

    async def _fail(self, lease: Lease, error: str, *, retry: bool = True) -> None:
        assert self.queue is not None
        with anyio.CancelScope(shield=True):
            status = await self.queue.finish(lease, error=error[:500], retry=retry)
        self.metrics.inc(f"episodes_{status}")
        log.warning("episode.failed", error=error[:500], status=status)

    def _forget(self, lease: Lease) -> None:
        self._in_flight.pop(_key(lease), None)
        self._ended.set()
        self._ended = anyio.Event()
        if self._stopping.is_set() and not self._in_flight:
            self._drained.set()

    def _build_runner(self) -> EpisodeRunner:
        assert self._committer is not None
        config = EpisodeConfig.from_settings(self.settings,
                                             ast_grep_version=self.sandbox.ast_grep_version)
        return EpisodeRunner(config=config, sandbox=self.sandbox, verifier=self.verifier,
                             store=self._committer.store, policies=self.policies,
                             committer=self._committer, metrics=self.metrics,
                             stopping=self._stopping)

    async def _watchdog(self) -> None:
        assert self.queue is not None
        while True:
            await anyio.sleep(max(5.0, self.settings.agentd.queue.lease_s / 10))
            n = await self.queue.requeue_expired()
            if n:
                self.metrics.inc("leases_expired", n)
                log.warning("engine.requeued_stalled", episodes=n)

    async def _release(self, lease: Lease) -> None:
        assert self.queue is not None
        with anyio.CancelScope(shield=True):
            await self.queue.release(lease)
        self._forget(lease)

    # ---------------------------------------------------------------- status

    def quick_status(self) -> dict[str, Any]:
        c = self.metrics.counters
        state = "draining" if self._stopping.is_set() else "paused" if self.gate.paused \
            else "running"
        return {"state": state, "paused_reason": self.pause_reason,
                "in_flight": len(self._in_flight), "steps": c["steps"],
                "verified_steps": c["verified_steps"]}

    async def status(self) -> dict[str, Any]:
        assert self.queue is not None and self.writer is not None
        counts = await self.queue.counts()
        c = self.metrics.counters
        return {
            "state": self.quick_status()["state"],
            "paused_reason": self.pause_reason,
            "budget": {"caps": self.settings.agentd.budget.model_dump(),
                       "runs": self.budget.statistics()},
            "uptime_s": round(time.time() - self._started, 1),
            "queue": counts,
            "episodes": {"in_flight": len(self._in_flight),
                         "concurrency": self._slots.total_tokens,
                         "done": c["episodes_done"], "failed": c["episodes_queued"],
                         "dead": c["episodes_dead"]},
            "steps": {"total": c["steps"], "verified": c["verified_steps"],
                      "parse_failures": c["parse_failures"],
                      "prompts_shrunk": c["prompts_shrunk"],
                      "prompts_too_long": c["prompts_too_long"],
                      "sandbox_failures": c["sandbox_failures"],
                      "final_matches": c["final_matches"]},
            "dead_letters": await self.queue.dead_letters(5),
            "writer": _as_dict(self.writer.statistics()),
            "sandbox": _as_dict(self.sandbox.statistics()),
            "latency_ms": self.metrics.snapshot()["histograms"],
        }

    async def actors_report(self) -> dict[str, Any]:
        """For ``ctl actors``: a probe of every configured actor now, and the statistics of
        each policy in use (per-actor state, in-flight, latency, errors; teacher totals)."""
        from agentd.policies.factory import probe_actors

        out: dict[str, Any] = {"probe": await probe_actors(self.settings)}
        out.update({name: _as_dict(stats) for name, stats in self.policies.statistics().items()})
        return out


def _key(lease: Lease) -> str:
    return f"{lease.run_id}/{lease.task_id}/{lease.episode}"


def _as_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, msgspec.Struct):
        return msgspec.to_builtins(obj)
    return obj
