"""A ``submit`` request checked whole before anything is queued or committed.

The same checks serve the admin socket, ``agentd run`` and recovery: a run id becomes a
directory name, so it is validated where it enters; counts are bounded by the config's caps;
a tasks file must be a regular file under the configured data directories, below a size cap
(``/dev/zero``, a FIFO or any root-readable path is refused before it is opened for reading).
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentd.config import MAX_EPISODES_PER_TASK, Settings
from agentd.datasets import tasks_path
from agentd.errors import TrajectoryError, UsageError
from agentd.trajectories.shards import check_run_id

POLICIES = ("reference", "actor", "teacher")
MAX_LIMIT = 10_000_000
MAX_TASK_IDS = 10_000
MAX_TASK_ID_CHARS = 256
MAX_TASKS_FILE_BYTES = 4 << 30  # a large split is a few GiB; /dev/zero is never a file


@dataclass(frozen=True)
class SubmitRequest:
    """What a submission asks for, every field checked."""

    run_id: str
    policy: str
    split: str
    source: Path
    episodes: int
    limit: int | None
    task_ids: frozenset[str]
    route: str | None
    min_failures: int


def valid_run_id(run_id: object) -> str:
    """``run_id`` if it is a safe directory name; ``UsageError`` (one line) if not."""
    if not isinstance(run_id, str):
        raise UsageError(f"run_id must be a string, not {type(run_id).__name__}")
    try:
        return check_run_id(run_id)
    except TrajectoryError as exc:
        raise UsageError(f"{exc} ([A-Za-z0-9][A-Za-z0-9_.:-]{{0,127}})") from None


def bounded_int(args: dict[str, Any], name: str, default: int | None, low: int,
                high: int) -> int | None:
    """``args[name]`` as an int in ``[low, high]`` (absent or null: ``default``)."""
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be an integer, not {str(value)[:40]!r}")
    if not low <= value <= high:
        raise UsageError(f"{name} must be between {low} and {high}, not {value}")
    return value


def known_split(settings: Settings, split: object) -> str:
    """``split`` if the config names it; the error lists the known ones."""
    known = sorted(settings.datasets.build.split_ratios)
    if not isinstance(split, str) or split not in known:
        raise UsageError(f"unknown split {str(split)[:40]!r} (known: {', '.join(known)})")
    return split


def task_ids_arg(value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise UsageError("task_ids must be a list of task id strings")
    if len(value) > MAX_TASK_IDS:
        raise UsageError(f"more than {MAX_TASK_IDS} task_ids")
    if any(not t or len(t) > MAX_TASK_ID_CHARS for t in value):
        raise UsageError(f"a task id is empty or longer than {MAX_TASK_ID_CHARS} characters")
    return frozenset(value)


def _data_dirs(settings: Settings) -> list[Path]:
    paths = settings.agentd.paths
    return [settings.path(p).resolve() for p in (paths.processed_data, paths.raw_data)]


def tasks_file(settings: Settings, raw: object) -> Path:
    """A tasks file a submission may name: under the data directories, regular, capped."""
    if not isinstance(raw, str) or not raw or "\0" in raw:
        raise UsageError("tasks_file must be a non-empty path")
    path = settings.path(Path(raw)).resolve()
    dirs = _data_dirs(settings)
    if not any(path.is_relative_to(d) for d in dirs):
        raise UsageError(f"tasks_file {raw[:120]!r} is not under the data directories "
                         f"({', '.join(map(str, dirs))})")
    try:  # O_NONBLOCK: a FIFO must not block the check itself
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"tasks_file {raw[:120]!r}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"tasks_file {raw[:120]!r} is not a regular file")
    if st.st_size > MAX_TASKS_FILE_BYTES:
        raise UsageError(f"tasks_file {raw[:120]!r} is over {MAX_TASKS_FILE_BYTES} bytes")
    return path


def parse_submit(settings: Settings, args: dict[str, Any]) -> SubmitRequest:
    """Every argument of ``submit`` checked, or ``UsageError`` naming the first bad one."""
    ep = settings.agentd.episodes
    policy = args.get("policy") or ep.default_policy
    if policy not in POLICIES:
        raise UsageError(f"unknown policy {str(policy)[:40]!r} ({', '.join(POLICIES)})")
    route = args.get("route")
    if route not in (None, "actor_failed"):
        raise UsageError(f"unknown route {str(route)[:40]!r} (actor_failed)")
    split = known_split(settings, args.get("split") or ep.default_split)
    raw_file = args.get("tasks_file")
    source = tasks_file(settings, raw_file) if raw_file else tasks_path(settings, split)
    return SubmitRequest(
        run_id=valid_run_id(args.get("run_id") or new_run_id(str(policy))), policy=str(policy),
        split=split, source=source,
        episodes=bounded_int(args, "episodes", ep.episodes_per_task, 1,
                             MAX_EPISODES_PER_TASK) or 1,
        limit=bounded_int(args, "limit", None, 1, MAX_LIMIT),
        task_ids=task_ids_arg(args.get("task_ids")), route=route,
        min_failures=bounded_int(args, "min_failures", 2, 1, 1000) or 2,
    )


def new_run_id(policy: str) -> str:
    """A fresh run id: the start time, the policy and the process."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{policy}-{os.getpid() % 10000:04d}"
