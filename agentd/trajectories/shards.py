"""The file side of the trajectory writer: shards, appends, fsync, rotation, torn-line repair.

Everything here is synchronous and blocking; the writer calls it through
``anyio.to_thread.run_sync`` so the event loop never waits on a disk. A run's records live in
``<directory>/<run_id>/part-000000.jsonl``, ``part-000001.jsonl``…: a shard is only ever
appended to, and rotation opens the next index instead of renaming, so a reader never sees a
file change its name under it. Crash safety rests on three rules:

* a batch is appended with one ``write`` of whole ``\\n``-terminated lines, and a failed write
  is truncated back to where it started;
* a shard is fsynced before the next one is created, and the directory is fsynced after a
  shard is created, so a shard that exists after a crash has a durable name;
* on open, a torn last line (a crash mid-``write``) is cut back to the last ``\\n``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agentd.errors import TrajectoryError
from agentd.fileio import fsync_dir
from agentd.logging import get_logger

log = get_logger(__name__)

SHARD_RE = re.compile(r"^part-(\d{6,})\.jsonl$")
_TAIL_CHUNK = 64 * 1024
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def shard_name(index: int) -> str:
    """``part-000042.jsonl``: fixed width so names sort in write order."""
    return f"part-{index:06d}.jsonl"


def list_shards(run_dir: Path) -> list[tuple[int, Path]]:
    """The run's shards as ``(index, path)``, oldest first; empty when the directory is absent."""
    try:
        names = [p.name for p in run_dir.iterdir()]
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), run_dir / n) for n in names if (m := SHARD_RE.match(n))]
    return sorted(found)


def check_run_id(run_id: str) -> str:
    """A run id becomes a directory name: refuse anything that could leave ``directory``."""
    if not _RUN_ID_RE.match(run_id):
        raise TrajectoryError(f"run_id {run_id!r} is not a safe directory name")
    return run_id


def last_newline_end(fd: int, size: int) -> int:
    """Offset just past the last ``\\n`` in the first ``size`` bytes of ``fd`` (0 if none)."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        chunk = os.pread(fd, end - start, start)
        pos = chunk.rfind(b"\n")
        if pos >= 0:
            return start + pos + 1
        end = start
    return 0


def repair_tail(path: Path) -> int:
    """Cut a torn last line off ``path``; return the number of bytes removed (0: intact)."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        keep = last_newline_end(fd, size)
        if keep == size:
            return 0
        os.ftruncate(fd, keep)
        os.fsync(fd)
    finally:
        os.close(fd)
    log.warning("trajectories.torn_line_repaired", path=str(path), bytes_cut=size - keep,
                kept_bytes=keep)
    return size - keep


@dataclass
class _RunShard:
    """The open, newest shard of one run."""

    run_dir: Path
    index: int
    fd: int
    size: int
    dirty: bool = False

    @property
    def path(self) -> Path:
        return self.run_dir / shard_name(self.index)


@dataclass
class ShardCounters:
    """Totals since the shard set was created (read by the writer's ``statistics()``)."""

    bytes: int = 0
    writes: int = 0
    fsyncs: int = 0
    dir_fsyncs: int = 0
    shards_opened: int = 0
    rotations: int = 0
    torn_lines_repaired: int = 0
    open_shards: int = 0


@dataclass
class ShardSet:
    """The open shards of every run a writer has seen, bounded by ``max_open`` (LRU)."""

    directory: Path
    rotate_bytes: int
    max_open: int = 8
    counters: ShardCounters = field(default_factory=ShardCounters)
    _open: OrderedDict[str, _RunShard] = field(default_factory=OrderedDict)

    def append(self, run_id: str, lines: list[bytes]) -> None:
        """Append whole lines to the run's newest shard, rotating so shards stay under size."""
        shard = self._shard(run_id)
        for rotate, data in plan_chunks(lines, shard.size, self.rotate_bytes):
            if rotate:
                shard = self._rotate(run_id, shard)
            self._write(shard, data)

    def ensure_open(self, run_id: str) -> None:
        """Open (and repair) the run's newest shard without writing anything."""
        self._shard(run_id)

    def fsync_dirty(self) -> int:
        """fsync every shard written since its last fsync; return how many were synced."""
        synced = 0
        for shard in self._open.values():
            if shard.dirty:
                self._fsync(shard)
                synced += 1
        return synced

    def close(self) -> None:
        """fsync and close every open shard (shutdown)."""
        while self._open:
            _, shard = self._open.popitem(last=False)
            self._close(shard)

    # ---------------------------------------------------------------- internals

    def _shard(self, run_id: str) -> _RunShard:
        shard = self._open.get(run_id)
        if shard is not None:
            self._open.move_to_end(run_id)
            return shard
        if len(self._open) >= self.max_open:
            _, oldest = self._open.popitem(last=False)
            self._close(oldest)
        shard = self._open_run(run_id)
        self._open[run_id] = shard
        self.counters.open_shards = len(self._open)
        return shard

    def _open_run(self, run_id: str) -> _RunShard:
        run_dir = self.directory / check_run_id(run_id)
        if not run_dir.is_dir():
            run_dir.mkdir(parents=True, exist_ok=True)
            fsync_dir(run_dir.parent)
        shards = list_shards(run_dir)
        if not shards:
            return self._create(run_dir, 0)
        index, path = shards[-1]
        if repair_tail(path):
            self.counters.torn_lines_repaired += 1
        return self._open_existing(run_dir, index)

    def _open_existing(self, run_dir: Path, index: int) -> _RunShard:
        fd = os.open(run_dir / shard_name(index), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self.counters.shards_opened += 1
        return _RunShard(run_dir, index, fd, os.fstat(fd).st_size)

    def _create(self, run_dir: Path, index: int) -> _RunShard:
        # O_EXCL: two writers on one run directory is a bug we want to see, not interleave.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(run_dir / shard_name(index), flags, 0o644)
        fsync_dir(run_dir)
        self.counters.dir_fsyncs += 1
        self.counters.shards_opened += 1
        return _RunShard(run_dir, index, fd, 0)

    def _rotate(self, run_id: str, shard: _RunShard) -> _RunShard:
        self._close(shard)
        new = self._create(shard.run_dir, shard.index + 1)
        self._open[run_id] = new
        self.counters.rotations += 1
        log.info("trajectories.shard_rotated", run_id=run_id, path=str(new.path))
        return new

    def _write(self, shard: _RunShard, data: bytes) -> None:
        try:
            write_all(shard.fd, data)
        except OSError as exc:
            # Never leave half a batch behind: cut back to where this write started.
            with contextlib.suppress(OSError):
                os.ftruncate(shard.fd, shard.size)
            raise TrajectoryError(f"{shard.path}: write failed: {exc.strerror}") from exc
        shard.size += len(data)
        shard.dirty = True
        self.counters.bytes += len(data)
        self.counters.writes += 1

    def _fsync(self, shard: _RunShard) -> None:
        os.fsync(shard.fd)
        shard.dirty = False
        self.counters.fsyncs += 1

    def _close(self, shard: _RunShard) -> None:
        try:
            if shard.dirty:
                self._fsync(shard)
        finally:
            os.close(shard.fd)
            self.counters.open_shards = len(self._open)


def write_all(fd: int, data: bytes) -> None:
    """One ``write`` for the whole buffer; loop only if the kernel returns a short count."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def plan_chunks(lines: Iterable[bytes], size: int, limit: int) -> list[tuple[bool, bytes]]:
    """Split lines into per-shard chunks: ``(rotate_first, data)``.

    A chunk fills the current shard up to ``limit`` bytes; a line never straddles shards, and a
    line bigger than ``limit`` gets a shard of its own rather than being refused.
    """
    chunks: list[tuple[bool, bytes]] = []
    current: list[bytes] = []
    used, rotate = size, False
    for line in lines:
        if used > 0 and used + len(line) > limit:
            if current:
                chunks.append((rotate, b"".join(current)))
            current, used, rotate = [], 0, True
        current.append(line)
        used += len(line)
    if current:
        chunks.append((rotate, b"".join(current)))
    return chunks
