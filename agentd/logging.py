"""Structured logging: one JSON object per line to a size-rotated file, a short line on a TTY.

Every line carries ``ts``, ``level``, ``event`` and, where known, ``run_id``, ``task_id``,
``episode`` and ``step`` (bound with ``log_context``). File writes happen on a listener
thread behind a bounded queue, so a slow disk never blocks the event loop; when that queue is
full the line is dropped and counted rather than stalling an episode.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import logging.handlers
import queue
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec

CONTEXT_KEYS = ("run_id", "task_id", "episode", "step")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "agentd_log_context", default=_EMPTY
)
_FIELDS = "agentd_fields"
_ROOT = "agentd"
_encoder = msgspec.json.Encoder()


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind ``run_id``/``task_id``/``episode``/``step`` (or anything) to lines logged inside."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class EventLogger:
    """``log.info("event.name", key=value)``: an event name plus structured fields."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={_FIELDS: fields}, stacklevel=3)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)


def get_logger(name: str) -> EventLogger:
    short = name.removeprefix("agentd.")
    return EventLogger(logging.getLogger(f"{_ROOT}.{short}"))


def event_dict(record: logging.LogRecord) -> dict[str, Any]:
    """The JSON object for one log record."""
    out: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "event": record.getMessage(),
        "logger": record.name,
    }
    ctx: Mapping[str, Any] = getattr(record, "agentd_context", None) or _context.get()
    out.update({k: v for k, v in ctx.items() if v is not None})
    out.update(getattr(record, _FIELDS, None) or {})
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        out["exc"] = f"{type(exc).__name__}: {exc}"
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _encoder.encode(event_dict(record)).decode()


class HumanFormatter(logging.Formatter):
    """``12:00:01 info  daemon.ready run_id=… socket=…`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        d = event_dict(record)
        ts = d.pop("ts")[11:19]
        level, event = d.pop("level"), d.pop("event")
        d.pop("logger", None)
        rest = " ".join(f"{k}={v}" for k, v in d.items())
        return f"{ts} {level:<7} {event} {rest}".rstrip()


class _ContextQueueHandler(logging.handlers.QueueHandler):
    """Captures the context vars at emit time: the listener thread cannot see them."""

    dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.agentd_context = dict(_context.get())
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


class _Runtime:
    listener: logging.handlers.QueueListener | None = None


_subscribers: list[Callable[[dict[str, Any]], None]] = []


class _BroadcastHandler(logging.Handler):
    """Feeds ``agentd ctl tail`` subscribers; they must not block."""

    def emit(self, record: logging.LogRecord) -> None:
        if not _subscribers:
            return
        d = event_dict(record)
        for fn in list(_subscribers):
            with contextlib.suppress(Exception):
                fn(d)


def subscribe(fn: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
    """Call ``fn(event_dict)`` for every log line; returns the unsubscribe function."""
    _subscribers.append(fn)
    return lambda: _subscribers.remove(fn) if fn in _subscribers else None


def setup_logging(
    file: Path | None,
    *,
    level: str = "info",
    max_bytes: int = 20 * 1024 * 1024,
    backups: int = 5,
    stderr: bool | None = None,
) -> None:
    """Configure the ``agentd`` logger tree; safe to call again (reload, tests)."""
    shutdown_logging()
    root = logging.getLogger(_ROOT)
    root.handlers.clear()
    root.setLevel(level.upper())
    root.propagate = False
    handlers: list[logging.Handler] = []
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(
            file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        fh.setFormatter(JsonFormatter())
        handlers.append(fh)
    if stderr if stderr is not None else sys.stderr.isatty():
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(HumanFormatter())
        handlers.append(sh)
    q: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=10_000)
    # Broadcast in the emitting thread: subscribers hand events to their own loop.
    root.addHandler(_BroadcastHandler())
    root.addHandler(_ContextQueueHandler(q))
    listener = logging.handlers.QueueListener(q, *handlers, respect_handler_level=False)
    listener.start()
    _Runtime.listener = listener


def shutdown_logging() -> None:
    """Flush and stop the listener thread (idempotent)."""
    listener, _Runtime.listener = _Runtime.listener, None
    if listener is not None:
        listener.stop()
        for h in listener.handlers:
            h.close()
