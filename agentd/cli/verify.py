"""``agentd verify TASK_ID DIR``: the engine's verifier on a directory someone else produced.

Prints one JSON object: the task id, the verdict and every check's result. Exit codes: 0 the
result is accepted, 1 it is rejected, 2 bad usage (unknown task, not a directory, bad config).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import msgspec

from agentd.config import Settings, load_settings
from agentd.errors import UsageError
from agentd.records import Task, Verdict

TASKS_FILE = "tasks.jsonl"
_task_decoder = msgspec.json.Decoder(Task)


class _Id(msgspec.Struct):
    task_id: str


_id_decoder = msgspec.json.Decoder(_Id)


def _task_files(settings: Settings, given: list[Path] | None) -> Iterator[Path]:
    roots = given or [settings.path(settings.agentd.paths.processed_data)]
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from sorted(root.rglob(TASKS_FILE))


def find_task(files: Iterator[Path], task_id: str) -> Task | None:
    """The task with ``task_id``, streaming the files (only its line is fully decoded)."""
    for path in files:
        with path.open("rb") as fh:
            for line in fh:
                try:
                    if _id_decoder.decode(line).task_id == task_id:
                        return _task_decoder.decode(line)
                except msgspec.MsgspecError:
                    continue
    return None


def _directory(path: Path) -> Path:
    if path.is_symlink() or not path.is_dir():
        raise UsageError(f"{str(path)!r} is not a directory")
    return path.absolute()


async def _verdict(settings: Settings, task: Task, directory: Path) -> Verdict:
    from agentd.sandbox import Sandbox
    from agentd.sandbox.workspace import readable_files
    from agentd.verify.verifier import Verifier

    limits = settings.sandbox.limits
    snap = await anyio.to_thread.run_sync(readable_files, directory, limits)
    files = {p: data.decode("utf-8", "replace") for p, data in snap.files.items()}
    sandbox = Sandbox(settings.sandbox,
                      workspaces_dir=settings.path(settings.agentd.paths.workspaces),
                      log_dir=settings.path(settings.sandbox.log_dir))
    return await Verifier(sandbox).verdict(task, files)


def verify_command(args: argparse.Namespace) -> int:
    """Judge ``args.dir`` as a solution of ``args.task_id``; print the verdict as JSON."""
    settings = load_settings(args.config)
    directory = _directory(args.dir)
    task = find_task(_task_files(settings, args.tasks), args.task_id)
    if task is None:
        raise UsageError(f"no task {args.task_id!r} in the task files")
    verdict = anyio.run(_verdict, settings, task, directory)
    out = {"task_id": task.task_id, **msgspec.to_builtins(verdict)}
    sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
    return 0 if verdict.accepted else 1
