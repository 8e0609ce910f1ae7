"""``agentd view RUN_ID [--out DIR] [--page-size N] [--serve] [--port P]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from agentd.config import load_settings
from agentd.errors import UsageError
from agentd.viewer.site import build_site


def _run_dir(args: argparse.Namespace) -> tuple[Path, str, Path]:
    """(shards, run id, default site directory) for a run id or a path."""
    given = Path(args.run_id)
    if given.exists():
        root = Path("reports") / "view"
        return given, given.name, root / given.name
    settings = load_settings(args.config)
    run_dir = settings.path(settings.agentd.paths.trajectories) / args.run_id
    if "/" in args.run_id or not run_dir.is_dir():
        raise UsageError(f"no run {args.run_id!r} under "
                         f"{settings.path(settings.agentd.paths.trajectories)}")
    return run_dir, args.run_id, settings.path(settings.agentd.paths.reports) / "view" / args.run_id


def view_command(args: argparse.Namespace) -> int:
    """Write the site; with ``--serve``, serve it on 127.0.0.1 until Ctrl-C."""
    shards, run_id, default_out = _run_dir(args)
    out: Path = args.out or default_out
    result = build_site([shards], out, run_id, page_size=args.page_size)
    print(f"{result.out}/index.html: {result.episodes} episodes of {result.tasks} tasks, "
          f"{result.records} records, {result.pages} pages"
          + (f", {result.skipped_lines} bad lines skipped" if result.skipped_lines else ""))
    if args.serve:
        from agentd.viewer.serve import serve

        serve(result.out, args.port)
    return 0
