"""Per-step rewards and the *verified* predicate.

Components of ``records.Reward`` (line measures are defined in ``episode.diffs``):

``format_ok``
    the completion parsed (``protocol.parse`` gave an action).
``exec_ok``
    the sandbox ran the action without error: ``result.ok`` (no refusal, timeout or limit,
    exit code 0).
``progress`` ∈ [0, 1]
    share of the gold diff's hunks (``before → gold``, unified-diff hunks with 3 lines of
    context) present in the workspace after the step. A task whose gold changes nothing has
    progress 1 when the workspace matches and 0 otherwise.
``progress_delta`` ∈ [-1, 1]
    progress after the step minus progress before it (the files the step started from).
``regression`` ∈ [0, 1]
    share of the lines changed so far (``before → workspace``, removed plus added) that are not
    changes of the gold diff in the same file: 0 when every change so far is wanted, 1 when
    none is. It is 0 when nothing changed.
``final_match``
    every gold file is exactly its gold text, no other file differs from ``before`` and no file
    was added. (The runner re-checks this at episode end in a fresh sandbox.)
``srl_similarity`` ∈ [-1, 1]
    ``difflib`` ratio between this step's action and the task's reference action for the same
    step, both normalised first (YAML key order, whitespace; ``trajectories.srl``); -1 when the
    format is broken (the SRL paper's convention), 0 when there is no reference action.

The total, as a formula::

    total = -1                                             if not format_ok
    total = 0.1·exec_ok + 0.4·progress_delta − 0.4·regression
            + 0.3·final_match + 0.2·max(srl_similarity, 0)  otherwise

so a well-formed step scores in [-0.8, 1.0] and a broken format (-1) is always the worst. The
total rewards the step that makes progress (delta, not level), charges every unwanted change
still present, and pays the final match on each step that keeps it. The weights live in
``RewardWeights``; records keep every component so a different total can be recomputed.

**Verified step** (``is_verified``): format ok, executed without error, regression 0 and — for a
writing action (``ast_grep_rule``, ``ast_grep_run`` with a rewrite) — progress went up or the
workspace matches the gold. A read-only step (search, read, tests, submit) that ran cleanly on
a workspace without regressions is verified: it is a sound step even if it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from agentd.episode.diffs import files_match, gold_diff, present_hunks, unwanted_changes
from agentd.records import Action, AstGrepRule, AstGrepRun, Reward, SandboxResult
from agentd.trajectories.srl import srl_similarity as _srl_similarity

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
    before: Mapping[str, str],
    gold: Mapping[str, str],
    previous: Mapping[str, str],
    current: Mapping[str, str],
    action: Action | None,
    result: SandboxResult | None,
    reference: Action | None,
    format_ok: bool | None = None,
    weights: RewardWeights = DEFAULT_WEIGHTS,
) -> Reward:
    """The reward of one step.

    ``before`` is the task's original files, ``gold`` the expected text of the changed files,
    ``previous`` / ``current`` every workspace file before / after this step (a path of
    ``before`` missing from them is a deleted file). ``action`` is None when the completion did
    not parse; ``format_ok`` defaults to ``action is not None``.
    """
    ok_format = action is not None if format_ok is None else format_ok
    now = progress(before, gold, current)
    was = now if previous == current else progress(before, gold, previous)
    reward = Reward(
        format_ok=ok_format,
        exec_ok=ok_format and result is not None and result.ok,
        progress=now,
        progress_delta=_round(now - was),
        regression=regression(before, gold, current),
        final_match=files_match(before, gold, current),
        srl_similarity=similarity(action if ok_format else None, reference),
    )
    return _with_total(reward, weights)


def progress(before: Mapping[str, str], gold: Mapping[str, str], files: Mapping[str, str]) -> float:
    """Share of the gold hunks present in ``files``."""
    hunks = gold_diff(before, gold).hunks
    if not hunks:
        return 1.0 if files_match(before, gold, files) else 0.0
    return _round(present_hunks(hunks, files) / len(hunks))


def regression(
    before: Mapping[str, str], gold: Mapping[str, str], files: Mapping[str, str]
) -> float:
    """Share of changed lines that are not gold changes (0 when nothing changed)."""
    unwanted, total = unwanted_changes(before, gold, files)
    return _round(unwanted / total) if total else 0.0


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

    Without ``action`` a step counts as writing when its result changed files.
    """
    if not (reward.format_ok and reward.exec_ok and result is not None and result.ok):
        return False
    if reward.regression > 0:
        return False
    if _writes(action, result):
        return reward.progress_delta > 0 or reward.final_match
    return True


def _writes(action: Action | None, result: SandboxResult) -> bool:
    if action is None:
        return bool(result.changed_files)
    if isinstance(action, AstGrepRun):
        return action.rewrite is not None
    return isinstance(action, AstGrepRule)


def _round(value: float) -> float:
    # Six decimals keep records stable across platforms and readable in reports.
    return round(value, 6)
