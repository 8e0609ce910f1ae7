"""Per-step rewards and the *verified* predicate.

Components of ``records.Reward``; the workspace measures come from ``agentd.verify`` (the
task's own ast-grep rules run in the jail, statements compared as syntax, not bytes):

``format_ok``
    the completion parsed (``protocol.parse`` gave an action).
``exec_ok``
    the sandbox ran the action without error: ``result.ok`` (no refusal, timeout or limit,
    exit code 0).
``progress`` ∈ [0, 1]
    the mean, over the task's rules (one per recipe), of the share of that rule's original
    matches that are gone (matches the gold itself keeps do not count); 1 when the workspace
    is the gold's program, 0 when a target file is missing or does not parse. Each recipe is
    measured against its own target, so every step of a multi-step reference moves it.
``progress_delta`` ∈ [-1, 1]
    progress after the step minus progress before it.
``regression`` ∈ [0, 1]
    share of the statements changed so far that lie outside what the task may touch (the
    statements the gold changes and those its rules match); 1 when a target file is broken
    or a file was added. Formatting is never a change.
``final_match``
    on the episode's last step: the verifier accepted the final workspace (``verdict``); on
    earlier steps: the workspace is already the gold's program.
``srl_similarity`` ∈ [-1, 1]
    ``difflib`` ratio between this step's action and the task's reference action for the same
    step, both normalised first (YAML key order, whitespace; ``episode.similarity``); -1 when the
    format is broken (the SRL paper's convention), 0 when there is no reference action.
``step_kind``
    ``write`` (a rule or a rewrite, and a completion that did not parse: a failed attempt),
    ``read`` (search, read_file, run_tests) or ``submit``.

The total, as a formula::

    total = -1                                             if not format_ok
    total = 0.1·exec_ok + 0.4·progress_delta − 0.4·regression
            + 0.3·final_match + 0.2·max(srl_similarity, 0)  otherwise

so a well-formed step scores in [-0.8, 1.0] and a broken format (-1) is always the worst. The
weights live in ``RewardWeights``; records keep every component so a different total can be
recomputed.

**Verified step** (``is_verified``): a *writing* step is verified when it moves the workspace
toward an accepted final state: format ok, executed without error, regression 0, and
progress went up or the workspace is the gold's program. ``submit`` is verified only when the
verifier accepted the final workspace. A *read* step is never verified: it is neutral, counted
and kept out of precision (verified writing steps over writing steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from agentd.episode.similarity import srl_similarity as _srl_similarity
from agentd.records import Action, AstGrepRule, AstGrepRun, Reward, SandboxResult, Submit
from agentd.verify import Measure, TaskFacts, progress

BROKEN_FORMAT_TOTAL = -1.0


@dataclass(frozen=True, kw_only=True)
class RewardWeights:
    """Weights of the total (see the module docstring)."""

    exec_ok: float = 0.1
    progress_delta: float = 0.4
    regression: float = 0.4
    final_match: float = 0.3
    srl_similarity: float = 0.2


DEFAULT_WEIGHTS = RewardWeights()


def score_step(
    *,
    facts: TaskFacts,
    previous: Measure,
    current: Measure,
    action: Action | None,
    result: SandboxResult | None,
    reference: Action | None,
    format_ok: bool | None = None,
    weights: RewardWeights = DEFAULT_WEIGHTS,
) -> Reward:
    """The reward of one step, from the workspace measured before and after it.

    ``action`` is None when the completion did not parse; ``format_ok`` defaults to
    ``action is not None``.
    """
    ok_format = action is not None if format_ok is None else format_ok
    now = progress(facts, current)
    was = now if previous is current else progress(facts, previous)
    reward = Reward(
        format_ok=ok_format,
        exec_ok=ok_format and result is not None and result.ok,
        progress=now,
        progress_delta=_round(now - was),
        regression=_round(current.unrelated_share),
        final_match=current.equivalent and not current.broken,
        srl_similarity=similarity(action if ok_format else None, reference),
        step_kind=step_kind(action),
    )
    return _with_total(reward, weights)


def step_kind(action: Action | None) -> str:
    """``write``, ``read`` or ``submit`` (a completion that did not parse is a failed write)."""
    if isinstance(action, Submit):
        return "submit"
    if action is None or _writing(action):
        return "write"
    return "read"


def similarity(action: Action | None, reference: Action | None) -> float:
    """SRL similarity of ``action`` to ``reference``: -1 broken format, 0 no reference."""
    if reference is None:
        return 0.0 if action is not None else -1.0
    return _round(_srl_similarity(action, reference))


def total(reward: Reward, weights: RewardWeights = DEFAULT_WEIGHTS) -> float:
    """The documented total of a reward's components."""
    if not reward.format_ok:
        return BROKEN_FORMAT_TOTAL
    value = (
        weights.exec_ok * reward.exec_ok
        + weights.progress_delta * reward.progress_delta
        - weights.regression * reward.regression
        + weights.final_match * reward.final_match
        + weights.srl_similarity * max(reward.srl_similarity, 0.0)
    )
    return _round(value)


def _with_total(reward: Reward, weights: RewardWeights) -> Reward:
    return msgspec.structs.replace(reward, total=total(reward, weights))


def is_verified(
    reward: Reward, result: SandboxResult | None, *, action: Action | None = None
) -> bool:
    """Whether a step is *verified* (see the module docstring).

    ``reward.step_kind`` says what the step was; a record without it (older runs) is judged by
    ``action``, or by whether its result changed files.
    """
    kind = reward.step_kind or _legacy_kind(action, result)
    if kind == "read":
        return False
    if kind == "submit":
        return reward.format_ok and reward.final_match
    if not (reward.format_ok and reward.exec_ok and result is not None and result.ok):
        return False
    if reward.regression > 0:
        return False
    return reward.progress_delta > 0 or reward.final_match


def _legacy_kind(action: Action | None, result: SandboxResult | None) -> str:
    if action is None and result is not None:
        return "write" if result.changed_files else "read"
    return step_kind(action)


def _writing(action: Action) -> bool:
    if isinstance(action, AstGrepRun):
        return action.rewrite is not None
    return isinstance(action, AstGrepRule)


def _round(value: float) -> float:
    # Six decimals keep records stable across platforms and readable in reports.
    return round(value, 6)
