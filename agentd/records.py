"""Records that cross package, process and file boundaries (DESIGN.md §3).

Hot-path records are ``msgspec.Struct``s: they are encoded once per step and decoded in bulk
by ``trajectories verify``. Actions are a tagged union keyed by ``tool`` — exactly the JSON
a model writes inside ``<action>``. Unknown fields are rejected so that a model cannot smuggle
options past validation.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Key = tuple[str, str, int, int]
"""A step's identity: (run_id, task_id, episode, step)."""

SCHEMA_VERSION = 1


class _Action(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, tag_field="tool"
):
    """Base of every action; the ``tool`` tag is the JSON discriminator."""


class AstGrepRule(_Action, frozen=True, tag="ast_grep_rule"):
    """Apply a YAML rule with ``fix`` → ``ast-grep scan --rule FILE --update-all PATHS``."""

    rule_yaml: str
    paths: list[str] | None = None


class AstGrepRun(_Action, frozen=True, tag="ast_grep_run"):
    """``ast-grep run -p PATTERN [-r REWRITE --update-all] -l LANG PATHS``."""

    pattern: str
    lang: str
    rewrite: str | None = None
    paths: list[str] | None = None


class AstGrepSearch(_Action, frozen=True, tag="ast_grep_search"):
    """Find matches of a pattern or a rule; never writes."""

    lang: str
    pattern: str | None = None
    rule_yaml: str | None = None
    paths: list[str] | None = None


class ReadFile(_Action, frozen=True, tag="read_file"):
    """Read a workspace file, optionally a 1-based inclusive line range."""

    path: str
    start_line: int | None = None
    end_line: int | None = None


class RunTests(_Action, frozen=True, tag="run_tests"):
    """Run the task's ``test_spec`` in the jail."""


class Submit(_Action, frozen=True, tag="submit"):
    """End the episode; the final workspace is re-verified."""


Action = AstGrepRule | AstGrepRun | AstGrepSearch | ReadFile | RunTests | Submit
WRITING_TOOLS = frozenset({"ast_grep_rule", "ast_grep_run"})

ErrorKind = Literal["none", "invalid_action", "path_escape", "timeout", "limit", "tool_error"]


class TestSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to run a task's tests: argv (first element on the sandbox allowlist) and a timeout.

    ``files`` are support files the tests need (the test modules, a runner), as relative
    path -> text. They never enter the workspace (the agent cannot edit them and the verifier
    never sees them as added files): the jail mounts them read-only, and an argv element
    ``{support}/PATH`` (PATH a key of ``files``) becomes that file's path inside the jail.
    Records written before ``files`` existed decode with none.
    """

    __test__ = False  # not a pytest class

    argv: list[str]
    timeout_s: float = 60.0
    files: dict[str, str] = msgspec.field(default_factory=dict)


class TaskMeta(msgspec.Struct, frozen=True):
    """Provenance of a task."""

    dataset: str
    source_path: str
    recipe: str
    license: str
    source_sha256: str


class Task(msgspec.Struct, frozen=True):
    """One verified refactoring task (``data/processed/<split>/tasks.jsonl``)."""

    task_id: str
    split: str
    language: str
    instruction: str
    files: dict[str, str]
    gold: dict[str, str]
    reference_actions: list[Action]
    meta: TaskMeta
    test_spec: TestSpec | None = None
    max_steps: int = 8


class Match(msgspec.Struct, frozen=True):
    """One ast-grep match, parsed from ``--json=stream``."""

    file: str
    start_line: int
    end_line: int
    text: str
    replacement: str | None = None


class SandboxResult(msgspec.Struct, frozen=True):
    """What one action did in the jail."""

    exit_code: int | None
    timed_out: bool = False
    killed_reason: str | None = None
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    changed_files: list[str] = msgspec.field(default_factory=list)
    diff: str = ""
    matches: list[Match] = msgspec.field(default_factory=list)
    error_kind: ErrorKind = "none"
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.error_kind == "none" and self.exit_code == 0


class TestResult(msgspec.Struct, frozen=True):
    """Outcome of a task's test command."""

    __test__ = False

    passed: bool
    exit_code: int | None
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    error_kind: ErrorKind = "none"
    error: str = ""


class PolicyInfo(msgspec.Struct, frozen=True):
    """Which policy produced a step, and how it sampled."""

    kind: str
    model: str
    endpoint: str = ""
    seed: int | None = None
    sampling: dict[str, Any] = msgspec.field(default_factory=dict)


class ModelOutput(msgspec.Struct, frozen=True):
    """The raw completion and what the protocol parser made of it.

    ``raw`` is the answer the parser read; ``reasoning`` the model's native reasoning, which
    the provider sent apart (``reasoning_content``, ``reasoning``, ``reasoning_details``) or
    which led the content as its own ``<think>`` block. ``think`` is the protocol's block.
    """

    raw: str
    think: str = ""
    action: Action | None = None
    state_update: dict[str, Any] | None = None
    reasoning: str = ""


class Reward(msgspec.Struct, frozen=True):
    """Per-step reward components and their documented total (see ``episode.reward``)."""

    format_ok: bool = False
    exec_ok: bool = False
    progress: float = 0.0
    regression: float = 0.0
    final_match: bool = False
    srl_similarity: float = 0.0
    total: float = 0.0
    progress_delta: float = 0.0  # progress now minus progress before this step
    step_kind: str = ""  # "write" | "read" | "submit"; read steps are neutral (no precision)


class Timing(msgspec.Struct, frozen=True):
    generate_ms: float = 0.0
    sandbox_ms: float = 0.0


class Usage(msgspec.Struct, frozen=True):
    """Token usage and cost of the LLM call behind a step."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached_prompt_tokens: int = 0  # of prompt_tokens, served from the provider's cache
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    logprobs: list[float] | None = None


class Provenance(msgspec.Struct, frozen=True):
    """Enough to reproduce a step: config snapshot, prompt template, tool versions."""

    config_hash: str = ""
    template_hash: str = ""
    ast_grep_version: str = ""
    agentd_version: str = ""
    corpus_version: str = ""  # the task corpus the episode came from (datasets.corpus_version)


class VerdictCheck(msgspec.Struct, frozen=True):
    """One check of the verifier: its name, whether it passed, and why (``agentd.verify``)."""

    name: str
    ok: bool
    detail: str = ""


class Verdict(msgspec.Struct, frozen=True):
    """The verifier's judgement of a final workspace, and the check that decided it."""

    accepted: bool
    decided_by: str  # "parse" | "rule_remaining" | "unrelated_edit" | "ast_equivalent" | "tests"
    checks: list[VerdictCheck] = msgspec.field(default_factory=list)


class TrajectoryRecord(msgspec.Struct, frozen=True):
    """One step of one episode; ``(run_id, task_id, episode, step)`` is unique."""

    run_id: str
    task_id: str
    episode: int
    step: int
    policy: PolicyInfo
    prompt: str
    state_before: dict[str, Any]
    model_output: ModelOutput
    reward: Reward
    timing: Timing
    created_at: str
    schema_version: int = SCHEMA_VERSION
    split: str = ""
    parse_error: str | None = None
    state_rejected: list[str] = msgspec.field(default_factory=list)
    sandbox_result: SandboxResult | None = None
    verified: bool = False
    done: bool = False
    usage: Usage = msgspec.field(default_factory=Usage)
    provenance: Provenance = msgspec.field(default_factory=Provenance)
    verdict: Verdict | None = None  # set where the verifier judged the final workspace

    @property
    def key(self) -> Key:
        return (self.run_id, self.task_id, self.episode, self.step)


def action_to_dict(action: Action) -> dict[str, Any]:
    """The action as the JSON object a model would write (with its ``tool`` tag)."""
    result: dict[str, Any] = msgspec.to_builtins(action)
    return result


_action_decoder: msgspec.json.Decoder[Action] = msgspec.json.Decoder(Action)


def decode_action(data: bytes | str) -> Action:
    """Decode one action from JSON; raises ``msgspec.ValidationError`` / ``DecodeError``."""
    return _action_decoder.decode(data)


def convert_action(obj: object) -> Action:
    """Validate an already-parsed JSON object as an action."""
    action: Action = msgspec.convert(obj, Action)
    return action
