"""The columns every training row carries: where it came from, how it scored, what produced it.

Flat, typed columns (no JSON strings) so that ``datasets`` filters and groups on them directly.
The verdict columns are ``None`` / empty until the engine records verdicts; ``reasoning`` is
empty unless the endpoint returned a native reasoning channel.
"""

from __future__ import annotations

from typing import Any

from agentd.exports.extras import Step, episode_accepted, episode_reward, episode_verdict
from agentd.exports.tasks import TaskMetaView
from agentd.exports.tokens import FROM_SERVER, token_columns
from agentd.records import Reward, TrajectoryRecord


def reward_columns(reward: Reward) -> dict[str, Any]:
    return {"reward_total": reward.total, "reward_format_ok": reward.format_ok,
            "reward_exec_ok": reward.exec_ok, "reward_progress": reward.progress,
            "reward_progress_delta": reward.progress_delta,
            "reward_regression": reward.regression, "reward_final_match": reward.final_match,
            "reward_srl_similarity": reward.srl_similarity}


def origin_columns(record: TrajectoryRecord, meta: TaskMetaView | None) -> dict[str, Any]:
    p, prov = record.policy, record.provenance
    return {"run_id": record.run_id, "task_id": record.task_id, "episode": record.episode,
            "split": record.split, "policy_kind": p.kind, "policy_model": p.model,
            "policy_endpoint": p.endpoint,
            "dataset": meta.dataset if meta else "", "recipe": meta.recipe if meta else "",
            "license": meta.license if meta else "",
            "config_hash": prov.config_hash, "template_hash": prov.template_hash,
            "agentd_version": prov.agentd_version, "ast_grep_version": prov.ast_grep_version}


def _verdict(steps: list[Step]) -> dict[str, Any]:
    verdict = episode_verdict(steps)
    return {"verdict_accepted": verdict.accepted if verdict else None,
            "verdict_decided_by": verdict.decided_by if verdict else None,
            "verdict_checks": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                               for c in verdict.checks] if verdict else []}


def _episode_summary(steps: list[Step]) -> dict[str, Any]:
    return {"episode_reward": episode_reward(steps), "episode_accepted": episode_accepted(steps),
            "episode_steps": len(steps), **_verdict(steps)}


def step_columns(step: Step, steps: list[Step], meta: TaskMetaView | None) -> dict[str, Any]:
    """Everything but the messages for one step row (``steps``: its whole episode)."""
    r = step.record
    return {"id": f"{r.run_id}:{r.task_id}:{r.episode}:{r.step}", **origin_columns(r, meta),
            "step": r.step, "verified": r.verified, "done": r.done, "step_kind": step.step_kind,
            "think": r.model_output.think, "reasoning": step.reasoning,
            **reward_columns(r.reward), **_episode_summary(steps), **token_columns(r.usage)}


def episode_columns(steps: list[Step], meta: TaskMetaView | None) -> dict[str, Any]:
    """Everything but the messages for one episode row: per-step lists in step order."""
    first = steps[0].record
    tokens = [token_columns(s.record.usage) for s in steps]
    exact = all(t["token_ids_source"] == FROM_SERVER for t in tokens)
    return {"id": f"{first.run_id}:{first.task_id}:{first.episode}", **origin_columns(first, meta),
            **_episode_summary(steps),
            "step_rewards": [s.record.reward.total for s in steps],
            "step_verified": [s.record.verified for s in steps],
            "step_kinds": [s.step_kind for s in steps],
            "step_prompt_token_ids": [t["prompt_token_ids"] for t in tokens] if exact else None,
            "step_completion_token_ids":
                [t["completion_token_ids"] for t in tokens] if exact else None,
            "token_ids_source": FROM_SERVER if exact else None}
