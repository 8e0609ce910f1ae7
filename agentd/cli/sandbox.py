"""``agentd sandbox exec --workspace DIR --action FILE|-``: one action, result as JSON.

Exit codes: 0 when a ``SandboxResult`` was produced — even if the action itself failed or was
refused (look at ``error_kind``); 2 for bad usage (unreadable or invalid action JSON, missing
workspace, bad config); 1 when the jail itself could not run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio
import msgspec

from agentd.config import load_settings
from agentd.errors import UsageError
from agentd.records import Action, SandboxResult, decode_action

MAX_ACTION_FILE = 16 * 1024 * 1024


def _read_action(source: str) -> bytes:
    try:
        if source == "-":
            return sys.stdin.buffer.read(MAX_ACTION_FILE + 1)
        with Path(source).open("rb") as fh:
            return fh.read(MAX_ACTION_FILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read action {source!r}: {exc.strerror}") from None


def parse_action(data: bytes) -> Action:
    """Decode the action JSON; ``UsageError`` (one line) when it is not a valid action."""
    if len(data) > MAX_ACTION_FILE:
        raise UsageError(f"action JSON is larger than {MAX_ACTION_FILE} bytes")
    try:
        return decode_action(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"invalid action JSON: {first[:200]}") from None


def _workspace(path: Path) -> Path:
    if path.is_symlink() or not path.is_dir():
        raise UsageError(f"workspace {str(path)!r} is not a directory")
    return path.absolute()


async def _run(args: argparse.Namespace, action: Action, workspace: Path) -> SandboxResult:
    from agentd.sandbox.sandbox import Sandbox

    settings = load_settings(args.config)
    sandbox = Sandbox(
        settings.sandbox, workspaces_dir=settings.path(settings.agentd.paths.workspaces),
        log_dir=settings.path(settings.sandbox.log_dir),
    )
    return await sandbox.apply_action(workspace, action, task_id=args.task_id)


def exec_command(args: argparse.Namespace) -> int:
    """Run one action from a file or stdin in the jail and print the result JSON."""
    action = parse_action(_read_action(args.action))
    workspace = _workspace(args.workspace)
    result = anyio.run(_run, args, action, workspace)
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0
