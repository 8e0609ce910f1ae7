"""``agentd serve``: the long-running daemon.

``Daemon.run()`` reads top to bottom — startup → serve → drain → shutdown:

* startup: take the state-directory lock, open the engine (database, recovery of leases and of
  the trajectory outbox), bind the admin socket, then ``READY=1``;
* serve: episodes run until SIGTERM/SIGINT, ``ctl drain`` or ``ctl shutdown``; SIGHUP reloads;
* drain: stop leasing, let in-flight steps finish within ``daemon.drain_timeout_s`` (what is left
  is released back to the queue and logged), flush the writer;
* shutdown: close everything within ``daemon.shutdown_timeout_s``, release the lock.

A second SIGTERM/SIGINT stops at once: committed steps are safe in SQLite either way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from agentd.config import Settings, load_settings
from agentd.daemon.admin import AdminServer
from agentd.daemon.notify import Notifier, run_watchdog, watchdog_interval
from agentd.daemon.prometheus import serve_metrics
from agentd.engine.engine import Engine
from agentd.engine.lock import StateLock
from agentd.engine.preflight import preflight
from agentd.engine.submission import parse_submit, task_ids_arg, valid_run_id
from agentd.errors import AgentdError, ConfigError, UsageError
from agentd.logging import get_logger, log_context, setup_logging, shutdown_logging, subscribe

log = get_logger(__name__)


class Daemon:
    """Wires the engine, the admin socket, signals and systemd notify together."""

    def __init__(self, config_path: Path | None = None) -> None:
        self.config_path = config_path
        self.settings: Settings = load_settings(config_path)
        self.boot_id = uuid.uuid4().hex[:12]
        self.notifier = Notifier()
        self._lock = StateLock(self.settings.path(self.settings.agentd.paths.lock_file))
        self._stop_reason = ""
        self._admin: AdminServer | None = None

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> int:
        # anyio primitives belong to the running loop, so they are made here, not in __init__.
        self.engine = Engine(self.settings, boot_id=self.boot_id)
        self._stop = anyio.Event()
        self._lock.acquire()
        # The handlers stay installed until the process is done: a SIGTERM that arrives after
        # the drain (systemd or an operator repeating it) must not kill it mid-close with the
        # default action; it only queues here, unread.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
            try:
                async with anyio.create_task_group() as tg:
                    await self.startup(tg, sigs)
                    await self.serve()
                    await self.drain()
                    tg.cancel_scope.cancel()
            finally:
                await self.shutdown()
                self._lock.release()
        return 0

    async def startup(self, tg: TaskGroup, signals: AsyncIterator[int]) -> None:
        log.info("daemon.starting", pid=os.getpid(), boot_id=self.boot_id,
                 config=str(self.settings.config_path))
        tg.start_soon(self._signals, tg, signals)
        recovered = await self.engine.open()
        await self.engine.start(tg)
        self._admin = self._build_admin()
        await tg.start(self._admin.serve)
        interval = watchdog_interval()
        if interval is not None:
            tg.start_soon(run_watchdog, self.notifier, interval)
        tg.start_soon(self._status_loop)
        port = self.settings.agentd.metrics.prometheus_port
        if port is not None:
            await tg.start(serve_metrics, port, self._prometheus_text)
        self.notifier.ready(self._status_line())
        log.info("daemon.ready", socket=str(self._admin.socket_path), **recovered)

    async def serve(self) -> None:
        await self._stop.wait()
        log.info("daemon.stopping", reason=self._stop_reason)

    async def drain(self) -> None:
        # Not shielded: a second SIGTERM/SIGINT cancels the task group and cuts the drain short.
        self.notifier.stopping(f"draining: {self._stop_reason}")
        abandoned = await self.engine.drain(self.settings.agentd.daemon.drain_timeout_s)
        if abandoned:
            log.warning("daemon.drain_abandoned", episodes=abandoned)

    async def shutdown(self) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(
                self.settings.agentd.daemon.shutdown_timeout_s) as scope:
            await self.engine.close()
        if scope.cancelled_caught:
            log.error("daemon.shutdown_timeout", abandoned="engine close")
        log.info("daemon.stopped", boot_id=self.boot_id)
        self.notifier.close()

    def request_stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    # ---------------------------------------------------------------- signals and reload

    async def _signals(self, tg: TaskGroup, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            if signum == signal.SIGHUP:
                await self._reload_quietly()
            elif self._stop.is_set():
                log.warning("daemon.forced_stop", signal=signal.Signals(signum).name)
                tg.cancel_scope.cancel()
                return
            else:
                self.request_stop(signal.Signals(signum).name)

    async def _reload_quietly(self) -> None:
        try:
            changes = await self.reload()
            log.info("daemon.reloaded", **changes)
        except ConfigError as exc:
            log.error("daemon.reload_failed", error=str(exc))

    async def reload(self) -> dict[str, Any]:
        """Re-read the configs; apply what can change live, report what needs a restart."""
        self.notifier.send("RELOADING=1")
        try:
            new = load_settings(self.config_path)
            changes = self.engine.reload(new)
            lg = new.agentd.logging
            setup_logging(new.path(lg.file), level=lg.level, max_bytes=lg.max_bytes,
                          backups=lg.backups)
            self.settings = new
            return changes
        finally:
            self.notifier.send("READY=1")

    # ---------------------------------------------------------------- status

    def _prometheus_text(self) -> str:
        q = self.engine.quick_status()
        return self.engine.metrics.prometheus({"episodes_in_flight": q["in_flight"]})

    def _status_line(self) -> str:
        s = self.engine.quick_status()
        return (f"{s['state']}: {s['in_flight']} episodes in flight, {s['steps']} steps, "
                f"{s['verified_steps']} verified")

    async def _status_loop(self) -> None:
        while True:
            await anyio.sleep(self.settings.agentd.daemon.status_interval_s)
            self.notifier.status(self._status_line())

    # ---------------------------------------------------------------- admin commands

    @property
    def socket_path(self) -> Path:
        """The admin socket: ``AGENTD_SOCKET`` (systemd) or ``admin.socket``."""
        env_socket = os.environ.get("AGENTD_SOCKET")
        if env_socket:
            return Path(env_socket)
        return self.settings.path(self.settings.agentd.admin.socket)

    def _build_admin(self) -> AdminServer:
        admin = AdminServer(self.settings.agentd.admin, self.socket_path)
        admin.register("status", "daemon, queue, episodes and writer status", self._cmd_status)
        admin.register("stats", "counters and latency histograms", self._cmd_stats)
        admin.register("pause", "stop leasing new episodes", self._cmd_pause)
        admin.register("resume", "lease episodes again", self._cmd_resume)
        admin.register("drain", "finish in-flight work, then exit", self._cmd_drain)
        admin.register("reload", "re-read the configuration files", self._cmd_reload)
        admin.register("shutdown", "drain and exit", self._cmd_shutdown)
        admin.register("submit", "queue tasks: split=, task_ids=, tasks_file=, episodes=, "
                       "policy=, run_id=, limit=", self._cmd_submit)
        admin.register("cancel", "cancel queued episodes: run_id=, task_ids=", self._cmd_cancel)
        admin.register("actors", "probe every actor; pool and teacher statistics",
                       self._cmd_actors)
        admin.register_stream("tail", "stream log events: level=", self._cmd_tail)
        return admin

    async def _cmd_status(self, _: dict[str, Any]) -> dict[str, Any]:
        status = await self.engine.status()
        assert self._admin is not None
        status["daemon"] = {"pid": os.getpid(), "boot_id": self.boot_id,
                            "config": str(self.settings.config_path),
                            "config_hash": self.settings.config_hash,
                            "stopping": self._stop.is_set(), "stop_reason": self._stop_reason}
        status["admin"] = vars(self._admin.statistics())
        return status

    async def _cmd_submit(self, args: dict[str, Any]) -> dict[str, Any]:
        # Every argument is checked before anything is committed (engine/submission.py).
        req = await anyio.to_thread.run_sync(parse_submit, self.settings, args)
        done = await self.engine.submit(req)
        return {"run_id": done.run_id, "tasks": done.tasks, "episodes_added": done.episodes,
                "policy": done.policy, "route": done.route}

    async def _cmd_cancel(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("run_id"):
            raise UsageError("cancel needs run_id=")
        run_id = valid_run_id(args["run_id"])
        task_ids = sorted(task_ids_arg(args.get("task_ids")))
        return {"cancelled": await self.engine.cancel(run_id, task_ids)}

    async def _cmd_stats(self, _: dict[str, Any]) -> dict[str, Any]:
        return self.engine.metrics.snapshot()

    async def _cmd_pause(self, _: dict[str, Any]) -> dict[str, Any]:
        self.engine.pause()
        return {"paused": True}

    async def _cmd_resume(self, _: dict[str, Any]) -> dict[str, Any]:
        self.engine.resume()
        return {"paused": False}

    async def _cmd_drain(self, _: dict[str, Any]) -> dict[str, Any]:
        self.request_stop("ctl drain")
        return {"draining": True}

    async def _cmd_shutdown(self, _: dict[str, Any]) -> dict[str, Any]:
        self.request_stop("ctl shutdown")
        return {"stopping": True}

    async def _cmd_reload(self, _: dict[str, Any]) -> dict[str, Any]:
        changes = await self.reload()
        log.info("daemon.reloaded", source="ctl", **changes)
        return changes

    async def _cmd_actors(self, _: dict[str, Any]) -> Any:
        return await self.engine.actors_report()

    async def _cmd_tail(self, args: dict[str, Any]):  # type: ignore[no-untyped-def]
        levels = ("debug", "info", "warning", "error")
        wanted = str(args.get("level", "info"))
        minimum = levels.index(wanted) if wanted in levels else 1
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](1000)
        loop = asyncio.get_running_loop()

        def deliver(event: dict[str, Any]) -> None:
            with contextlib.suppress(anyio.WouldBlock, anyio.ClosedResourceError):
                send.send_nowait(event)  # a slow tail client loses lines, the daemon goes on

        def on_event(event: dict[str, Any]) -> None:
            if levels.index(event.get("level", "info")) >= minimum:
                loop.call_soon_threadsafe(deliver, event)

        unsubscribe = subscribe(on_event)
        # Say so once subscribed: whatever happens after this line reaches the client.
        yield {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
               "level": "info", "event": "tail.subscribed", "min_level": levels[minimum]}
        try:
            async with receive:
                async for event in receive:
                    yield event
        finally:
            unsubscribe()
            send.close()


def serve_command(args: argparse.Namespace) -> int:
    daemon = Daemon(args.config)
    preflight(daemon.settings, socket_path=daemon.socket_path)  # a bad path: one line, exit 2
    lg = daemon.settings.agentd.logging
    setup_logging(daemon.settings.path(lg.file), level=lg.level, max_bytes=lg.max_bytes,
                  backups=lg.backups)
    try:
        with log_context(boot_id=daemon.boot_id):
            return anyio.run(daemon.run, backend="asyncio", backend_options={"use_uvloop": True})
    except AgentdError as exc:
        log.error("daemon.failed", error=str(exc))
        raise
    finally:
        shutdown_logging()
