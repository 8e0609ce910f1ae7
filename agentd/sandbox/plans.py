"""Validate an action and turn it into a ``Plan``: the tool argv, data files, expectations.

Everything here runs before any process starts. Options are passed as ``--name=value`` so a
value beginning with ``-`` can never be read as a flag, paths come after ``--``, ast-grep gets
our own (empty) project config so a workspace ``sgconfig.yml`` is never loaded, and
``--custom-languages`` is never passed. ``-j 1`` keeps output order deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import msgspec

from agentd.config import SandboxLimits
from agentd.records import Action, AstGrepRule, AstGrepRun, AstGrepSearch, RunTests, TestSpec
from agentd.sandbox.paths import ActionRejected, check_paths
from agentd.sandbox.rules import RuleRejected, check_language, parse_rules, render_rules

DATA = "\x00data:"  # marks an argument that names a data file (NUL never survives validation)
SG_CONFIG = b"ruleDirs: []\n"
MAX_TEST_WALL_S = 3600.0
SUPPORT_PREFIX = "{support}/"  # argv: a test spec's support file, by its relative path
SUPPORT_DIR = "support"  # their directory among the data files
MAX_SUPPORT_FILES = 256
MAX_SUPPORT_BYTES = 8 * 1024 * 1024
_AST_GREP_OK = frozenset({0, 1})  # 1 = "no match" for run, "error-level findings" for scan


@dataclass(frozen=True)
class Plan:
    """One validated process to run in the jail."""

    binary: str
    args: tuple[str, ...]
    wall_s: float
    data: tuple[tuple[str, bytes], ...] = ()
    writes: bool = False
    wants_matches: bool = False
    ok_codes: frozenset[int] | None = frozenset({0})  # None: any exit code is a result
    full_os: bool = False  # /proc and a full /dev (test suites); ast-grep needs neither


def check_size(action: Action, limits: SandboxLimits) -> None:
    """Refuse actions whose JSON is over ``action_bytes``."""
    size = len(msgspec.json.encode(action))
    if size > limits.action_bytes:
        raise ActionRejected("invalid_action", f"action is {size} B, over {limits.action_bytes}")


def _no_nul(*values: str | None) -> None:
    if any(v is not None and "\x00" in v for v in values):
        raise ActionRejected("invalid_action", "argument contains a NUL byte")


def _lang(lang: str) -> str:
    try:
        return check_language(lang)
    except RuleRejected as exc:
        raise ActionRejected("invalid_action", str(exc)) from None


def _rules(text: str) -> bytes:
    try:
        return render_rules(parse_rules(text)).encode("utf-8")
    except RuleRejected as exc:
        raise ActionRejected("invalid_action", f"rule_yaml: {exc}") from None


def _sg(sub: str, *opts: str, paths: list[str]) -> tuple[str, ...]:
    head = (sub, f"--config={DATA}sgconfig.yml", "--threads=1", "--color=never")
    return (*head, *opts, "--", *paths)


def _sg_data(rule: bytes | None = None) -> tuple[tuple[str, bytes], ...]:
    base = (("sgconfig.yml", SG_CONFIG),)
    return base if rule is None else (*base, ("rule.yml", rule))


def plan_run(action: AstGrepRun, workspace: Path, limits: SandboxLimits) -> Plan:
    _no_nul(action.pattern, action.rewrite)
    lang, paths = _lang(action.lang), check_paths(workspace, action.paths)
    opts = [f"--pattern={action.pattern}", f"--lang={lang}"]
    if action.rewrite is None:
        return Plan("ast-grep", _sg("run", *opts, "--json=stream", paths=paths),
                    limits.wall_seconds, _sg_data(), wants_matches=True, ok_codes=_AST_GREP_OK)
    opts += [f"--rewrite={action.rewrite}", "--update-all"]
    return Plan("ast-grep", _sg("run", *opts, paths=paths), limits.wall_seconds, _sg_data(),
                writes=True, ok_codes=_AST_GREP_OK)


def plan_rule(action: AstGrepRule, workspace: Path, limits: SandboxLimits) -> Plan:
    rule, paths = _rules(action.rule_yaml), check_paths(workspace, action.paths)
    args = _sg("scan", f"--rule={DATA}rule.yml", "--update-all", paths=paths)
    return Plan("ast-grep", args, limits.wall_seconds, _sg_data(rule), writes=True,
                ok_codes=_AST_GREP_OK)


def plan_search(action: AstGrepSearch, workspace: Path, limits: SandboxLimits) -> Plan:
    if (action.pattern is None) == (action.rule_yaml is None):
        raise ActionRejected("invalid_action", "give exactly one of pattern and rule_yaml")
    _no_nul(action.pattern)
    lang, paths = _lang(action.lang), check_paths(workspace, action.paths)
    if action.pattern is not None:
        opts = (f"--pattern={action.pattern}", f"--lang={lang}", "--json=stream")
        return Plan("ast-grep", _sg("run", *opts, paths=paths), limits.wall_seconds,
                    _sg_data(), wants_matches=True, ok_codes=_AST_GREP_OK)
    rule = _rules(action.rule_yaml or "")
    args = _sg("scan", f"--rule={DATA}rule.yml", "--json=stream", paths=paths)
    return Plan("ast-grep", args, limits.wall_seconds, _sg_data(rule), wants_matches=True,
                ok_codes=_AST_GREP_OK)


def _support_path(rel: str) -> str:
    """A support file's relative path, refused unless it is plain (no ``..``, no escapes)."""
    parts = PurePosixPath(rel).parts
    bad = (not parts or rel.startswith("/") or rel != "/".join(parts)
           or any(p in (".", "..") or len(p) > 255 for p in parts)
           or any(c in rel for c in "\x00\n\r\\"))
    if bad:
        raise ActionRejected("invalid_action", f"test_spec support path {rel[:80]!r} refused")
    return f"{SUPPORT_DIR}/{rel}"


def _support_data(spec: TestSpec) -> tuple[tuple[str, bytes], ...]:
    if len(spec.files) > MAX_SUPPORT_FILES:
        raise ActionRejected("invalid_action", f"test_spec has {len(spec.files)} support "
                             f"files, over {MAX_SUPPORT_FILES}")
    data = tuple((_support_path(rel), text.encode("utf-8"))
                 for rel, text in sorted(spec.files.items()))
    size = sum(len(content) for _, content in data)
    if size > MAX_SUPPORT_BYTES:
        raise ActionRejected("invalid_action", f"test_spec support files are {size} B, "
                             f"over {MAX_SUPPORT_BYTES}")
    return data


def _test_arg(arg: str, spec: TestSpec) -> str:
    if not arg.startswith(SUPPORT_PREFIX):
        return arg
    rel = arg.removeprefix(SUPPORT_PREFIX)
    if rel not in spec.files:
        raise ActionRejected("invalid_action", f"{arg[:80]!r} names no support file")
    return DATA + _support_path(rel)


def plan_tests(spec: TestSpec | None, allowlist: frozenset[str]) -> Plan:
    """The task's test command; its first word must be an allowlisted binary name. Its
    support files become read-only data files of the jail, never workspace files."""
    if spec is None or not spec.argv:
        raise ActionRejected("invalid_action", "this task has no test_spec")
    _no_nul(*spec.argv)
    if spec.argv[0] not in allowlist:
        raise ActionRejected("invalid_action", f"{spec.argv[0][:40]!r} is not allowlisted")
    wall = min(spec.timeout_s, MAX_TEST_WALL_S)
    args = tuple(_test_arg(a, spec) for a in spec.argv[1:])
    return Plan(spec.argv[0], args, wall, _support_data(spec), writes=True,
                ok_codes=None, full_os=True)


def plan_action(action: Action, workspace: Path, limits: SandboxLimits, *,
                test_spec: TestSpec | None, allowlist: frozenset[str]) -> Plan:
    """The plan for a process-running action (not ``read_file``/``submit``)."""
    check_size(action, limits)
    if isinstance(action, AstGrepRun):
        return plan_run(action, workspace, limits)
    if isinstance(action, AstGrepRule):
        return plan_rule(action, workspace, limits)
    if isinstance(action, AstGrepSearch):
        return plan_search(action, workspace, limits)
    if isinstance(action, RunTests):
        return plan_tests(test_spec, allowlist)
    raise ActionRejected("invalid_action", f"{type(action).__name__} runs no process")
