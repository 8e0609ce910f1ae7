"""The ``agentd`` command (DESIGN.md §4): parses arguments and hands off to the packages.

Each subcommand names its handler as ``"module:function"`` and imports it only when used, so
``agentd ctl ping`` starts fast. A handler takes the parsed arguments and returns the exit
code: 0 done, 1 the work failed, 2 bad usage or configuration (one line on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from agentd import __version__
from agentd.errors import AgentdError, UsageError

Handler = Callable[[argparse.Namespace], int]

ADMIN_COMMANDS = (
    "ping", "help", "status", "stats", "pause", "resume", "drain", "reload", "shutdown",
    "submit", "cancel", "actors", "tail",
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (its default prints the whole usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"agentd: {message} (see {self.prog} --help)\n")


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None,
                   help="agentd.yaml (default: $AGENTD_CONFIG, else configs/agentd.yaml)")


def _add(sub: argparse._SubParsersAction[_Parser], name: str, handler: str,
         help_: str) -> _Parser:
    p: _Parser = sub.add_parser(name, help=help_, description=help_)
    p.set_defaults(handler=handler)
    return p


def _data_parsers(sub: argparse._SubParsersAction[_Parser]) -> None:
    data = sub.add_parser("data", help="dataset ingestion and task building")
    dsub = data.add_subparsers(dest="data_cmd", required=True, parser_class=_Parser)
    for name, help_ in (("fetch", "download and unpack the catalog's sources"),
                        ("build", "build verified tasks from fetched sources"),
                        ("stats", "print and write per-split statistics"),
                        ("verify", "re-check raw hashes and re-verify a sample of tasks")):
        p = _add(dsub, name, f"agentd.cli.data:{name}_command", help_)
        _config_arg(p)
        p.add_argument("names", nargs="*", help="catalog entries (default: all enabled)")
        if name == "verify":
            p.add_argument("--sample", type=int, default=50, help="tasks to re-verify per split")
        if name == "build":
            p.add_argument("--limit", type=int, default=None, help="stop after N tasks (smoke)")


def _ctl_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = _add(sub, "ctl", "agentd.cli.ctl:ctl_command", "talk to a running daemon")
    _config_arg(p)
    p.add_argument("--socket", type=Path, default=None, help="admin socket path")
    p.add_argument("--json", action="store_true", help="print the raw JSON result")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    p.add_argument("command", choices=ADMIN_COMMANDS, metavar="COMMAND",
                   help=" ".join(ADMIN_COMMANDS))
    p.add_argument("rest", nargs=argparse.REMAINDER, help="command arguments (key=value ...)")


def _engine_parsers(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = _add(sub, "check", "agentd.cli.doctor:check_command", "check configs, tools and jail")
    _config_arg(p)
    p = _add(sub, "serve", "agentd.daemon.daemon:serve_command", "run the daemon")
    _config_arg(p)
    p = _add(sub, "run", "agentd.cli.run:run_command",
             "run the engine in the foreground until the work is done")
    _config_arg(p)
    p.add_argument("--split", default=None, help="train|dev|test (default from config)")
    p.add_argument("--policy", default=None, help="reference|actor|teacher")
    p.add_argument("--limit", type=int, default=None, help="at most N tasks")
    p.add_argument("--episodes", type=int, default=None, help="episodes per task")
    p.add_argument("--run-id", default=None, help="name of the run (default: generated)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _tool_parsers(sub: argparse._SubParsersAction[_Parser]) -> None:
    sb = sub.add_parser("sandbox", help="run actions in the jail")
    ssub = sb.add_subparsers(dest="sandbox_cmd", required=True, parser_class=_Parser)
    p = _add(ssub, "exec", "agentd.cli.sandbox:exec_command",
             "run one action in the jail and print the SandboxResult as JSON")
    _config_arg(p)
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--action", required=True, help="a JSON file, or - for stdin")
    p.add_argument("--task-id", default="adhoc", help="names the sandbox log file")

    st = sub.add_parser("state", help="inspect the state store")
    stsub = st.add_subparsers(dest="state_cmd", required=True, parser_class=_Parser)
    p = _add(stsub, "dump", "agentd.cli.state:dump_command", "print a task's state")
    _config_arg(p)
    p.add_argument("task_id")
    p.add_argument("--episode", type=int, default=0)
    p.add_argument("--run-id", default=None)

    tr = sub.add_parser("trajectories", help="check and export trajectory files")
    tsub = tr.add_subparsers(dest="traj_cmd", required=True, parser_class=_Parser)
    for name, help_ in (("stats", "counts per run, policy and reward"),
                        ("verify", "duplicates, gaps, schema errors, torn lines"),
                        ("export", "write jsonl, parquet, SRL, SFT or GRPO-group data")):
        p = _add(tsub, name, f"agentd.cli.trajectories:{name}_command", help_)
        _config_arg(p)
        p.add_argument("paths", nargs="+", type=Path)
        if name == "export":
            _export_args(p)

    p = _add(sub, "verify", "agentd.cli.verify:verify_command",
             "judge a directory as a task's solution; print the verdict as JSON "
             "(exit 0 accepted, 1 rejected)")
    _config_arg(p)
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument("dir", type=Path, metavar="DIR", help="the solution's files")
    p.add_argument("--tasks", type=Path, action="append", default=None,
                   help="tasks.jsonl file or dir, repeatable (default: the processed data)")

    p = _add(sub, "report", "agentd.cli.report:report_command",
             "write reports/teacher/metrics.md and charts")
    _config_arg(p)
    p.add_argument("--run-id", default=None)

    p = _add(sub, "eval", "agentd.cli.report:eval_command",
             "episode success, pass@k, precision and steps of runs side by side; "
             "writes reports/eval/eval.md, eval.json and eval.png")
    _config_arg(p)
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="a run id under the trajectories directory or a path to its shards; "
                        "LABEL=RUN names its column")
    p.add_argument("--k", default="1,5", help="pass@k for these k, comma-separated (a task "
                   "counts for pass@k when it has at least k finished episodes)")
    p.add_argument("--split", default=None, help="only records of this split")
    p.add_argument("--policy", default=None, help="KIND or KIND/MODEL")
    p.add_argument("--out", type=Path, default=None,
                   help="report directory (default: reports/eval under the project)")
    p.add_argument("--tasks", type=Path, action="append", default=None,
                   help="tasks.jsonl file or dir for recipes and difficulty, repeatable "
                        "(default: the configured processed data)")


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("jsonl", "parquet", "srl", "sft", "groups"),
                   default="jsonl")
    p.add_argument("--out", type=Path, required=True,
                   help="the data file (sft/groups: *.parquet for Parquet, else JSON lines); "
                        "a README.md dataset card is written beside it")
    p.add_argument("--verified-only", action="store_true")
    p.add_argument("--policy", default=None, help="KIND or KIND/MODEL")
    p.add_argument("--split", default=None)
    p.add_argument("--recipe", default=None, help="only tasks built by this recipe")
    p.add_argument("--min-reward", type=float, default=None,
                   help="a step's total (sft episodes: the episode's return) at least this")
    p.add_argument("--sft-unit", choices=("step", "episode"), default="step",
                   help="sft: a row per verified step, or per accepted episode")
    p.add_argument("--sft-shape", choices=("messages", "prompt-completion"),
                   default="messages", help="sft: one messages list, or prompt + completion")
    p.add_argument("--epsilon", type=float, default=1e-6,
                   help="groups: drop groups whose reward std is below this")
    p.add_argument("--tasks", type=Path, action="append", default=None,
                   help="tasks.jsonl file or dir for SRL context, recipes and licenses, "
                        "repeatable (default: the configured processed data)")


def _view_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = _add(sub, "view", "agentd.cli.view:view_command",
             "write a static HTML viewer of a run's trajectories (optionally serve it)")
    _config_arg(p)
    p.add_argument("run_id", metavar="RUN_ID", help="a run under the trajectories directory, "
                   "or a path to shard files")
    p.add_argument("--out", type=Path, default=None,
                   help="site directory (default: reports/view/RUN_ID)")
    p.add_argument("--page-size", type=int, default=100, help="rows per listing page")
    p.add_argument("--serve", action="store_true", help="serve the site on 127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="port for --serve (0: any free)")


def build_parser() -> _Parser:
    parser = _Parser(prog="agentd", description="Collect verified ast-grep trajectories.")
    parser.add_argument("--version", action="version", version=f"agentd {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    _engine_parsers(sub)
    _ctl_parser(sub)
    _data_parsers(sub)
    _tool_parsers(sub)
    _view_parser(sub)
    return parser


def _resolve(spec: str) -> Handler:
    module, _, name = spec.partition(":")
    fn: Handler = getattr(importlib.import_module(module), name)
    return fn


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf of an exception group (task groups wrap what their tasks raise)."""
    first = group.exceptions[0]
    return _unwrap(first) if isinstance(first, BaseExceptionGroup) else first


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        try:
            return _resolve(args.handler)(args)
        except BaseExceptionGroup as group:
            leaf = _unwrap(group)
            if isinstance(leaf, AgentdError | KeyboardInterrupt):
                raise leaf from group
            raise
    except UsageError as exc:
        print(f"agentd: {exc}", file=sys.stderr)
        return 2
    except AgentdError as exc:
        print(f"agentd: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("agentd: interrupted", file=sys.stderr)
        return 130
