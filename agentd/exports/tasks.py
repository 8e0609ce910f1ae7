"""Find a task's instruction and files by id without loading a whole corpus into memory.

SRL instances need the task the expert solved, but ``tasks.jsonl`` files hold every file's
text. ``TaskIndex`` scans them once keeping only ``task_id -> (file, offset)``, then reads
single lines on demand behind a small LRU cache.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import msgspec

from agentd.exports.srl import TaskContext


class _TaskId(msgspec.Struct):
    task_id: str


class TaskMetaView(msgspec.Struct, frozen=True):
    """Where a task came from: what dataset cards and the ``--recipe`` filter need."""

    dataset: str = ""
    recipe: str = ""
    license: str = ""
    source_path: str = ""


class _TaskMetaLine(msgspec.Struct):
    meta: TaskMetaView = msgspec.field(default_factory=TaskMetaView)


class _ToolTag(msgspec.Struct):
    tool: str = ""


class _ReferenceLine(msgspec.Struct):
    reference_actions: list[_ToolTag] = msgspec.field(default_factory=list)


_id_decoder = msgspec.json.Decoder(_TaskId)
_context_decoder = msgspec.json.Decoder(TaskContext)
_meta_decoder = msgspec.json.Decoder(_TaskMetaLine)
_reference_decoder = msgspec.json.Decoder(_ReferenceLine)


def task_files(paths: Iterable[Path]) -> list[Path]:
    """``tasks.jsonl`` files: given directly, or found under directories."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(path.rglob("tasks.jsonl")))
        elif path.is_file():
            out.append(path)
    return out


class TaskIndex:
    """``task_id -> TaskContext``, read lazily from ``tasks.jsonl`` files."""

    def __init__(self, files: Iterable[Path], *, cache_size: int = 64) -> None:
        self._where: dict[str, tuple[Path, int]] = {}
        self._cache: OrderedDict[str, TaskContext] = OrderedDict()
        self._cache_size = cache_size
        self._meta: dict[str, TaskMetaView | None] = {}  # small: a few strings per task
        self._reference_steps: dict[str, int | None] = {}
        for path in files:
            self._scan(path)

    def __len__(self) -> int:
        return len(self._where)

    def _scan(self, path: Path) -> None:
        offset = 0
        with path.open("rb") as f:
            for line in f:
                # A bad task line is the dataset verifier's business, not ours.
                with contextlib.suppress(msgspec.MsgspecError):
                    self._where.setdefault(_id_decoder.decode(line).task_id, (path, offset))
                offset += len(line)

    def _line(self, task_id: str) -> bytes | None:
        where = self._where.get(task_id)
        if where is None:
            return None
        with where[0].open("rb") as f:
            f.seek(where[1])
            return f.readline()

    def meta(self, task_id: str) -> TaskMetaView | None:
        """The task's dataset, recipe and license, or None when no indexed file has it."""
        if task_id not in self._meta:
            line = self._line(task_id)
            try:
                self._meta[task_id] = None if line is None else _meta_decoder.decode(line).meta
            except msgspec.MsgspecError:
                self._meta[task_id] = None
        return self._meta[task_id]

    def reference_steps(self, task_id: str) -> int | None:
        """How many actions the task's reference solution takes before ``submit`` (its
        difficulty), or None."""
        if task_id not in self._reference_steps:
            line = self._line(task_id)
            try:
                reference = None if line is None else _reference_decoder.decode(line)
                self._reference_steps[task_id] = (
                    None if reference is None else len(reference.reference_actions))
            except msgspec.MsgspecError:
                self._reference_steps[task_id] = None
        return self._reference_steps[task_id]

    def get(self, task_id: str) -> TaskContext | None:
        """The task's instruction and files, or None when no indexed file has it."""
        if task_id in self._cache:
            self._cache.move_to_end(task_id)
            return self._cache[task_id]
        line = self._line(task_id)
        if line is None:
            return None
        try:
            context = _context_decoder.decode(line)
        except msgspec.MsgspecError:
            return None
        self._cache[task_id] = context
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return context
