"""Explicit Arrow schemas of the training rows (``sft`` and ``groups``), for Parquet output.

A test checks that every column a row builder emits is in its schema and the other way round.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

_str, _i64, _f64, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()
MESSAGES = pa.list_(pa.struct([("role", _str), ("content", _str)]))
_CHECKS = pa.list_(pa.struct([("name", _str), ("ok", _bool), ("detail", _str)]))
_IDS = pa.list_(_i64)

ORIGIN: list[tuple[str, Any]] = [
    ("id", _str), ("run_id", _str), ("task_id", _str), ("episode", _i64), ("split", _str),
    ("policy_kind", _str), ("policy_model", _str), ("policy_endpoint", _str),
    ("dataset", _str), ("recipe", _str), ("license", _str), ("config_hash", _str),
    ("template_hash", _str), ("agentd_version", _str), ("ast_grep_version", _str),
]
REWARDS: list[tuple[str, Any]] = [
    ("reward_total", _f64), ("reward_format_ok", _bool), ("reward_exec_ok", _bool),
    ("reward_progress", _f64), ("reward_progress_delta", _f64), ("reward_regression", _f64),
    ("reward_final_match", _bool), ("reward_srl_similarity", _f64),
]
EPISODE: list[tuple[str, Any]] = [
    ("episode_reward", _f64), ("episode_accepted", _bool), ("episode_steps", _i64),
    ("verdict_accepted", _bool), ("verdict_decided_by", _str), ("verdict_checks", _CHECKS),
]
STEP: list[tuple[str, Any]] = [
    ("step", _i64), ("verified", _bool), ("done", _bool), ("step_kind", _str),
    ("think", _str), ("reasoning", _str),
]
TOKENS: list[tuple[str, Any]] = [
    ("prompt_token_ids", _IDS), ("completion_token_ids", _IDS), ("loss_mask", _IDS),
    ("token_ids_source", _str),
]
EPISODE_STEPS: list[tuple[str, Any]] = [
    ("step_rewards", pa.list_(_f64)), ("step_verified", pa.list_(_bool)),
    ("step_kinds", pa.list_(_str)), ("step_prompt_token_ids", pa.list_(_IDS)),
    ("step_completion_token_ids", pa.list_(_IDS)), ("token_ids_source", _str),
]


def sft_schema(unit: str, shape: str) -> pa.Schema:
    """The schema of ``sft`` rows for a unit (step | episode) and shape."""
    if unit == "episode":
        return pa.schema([("messages", MESSAGES), *ORIGIN, *EPISODE, *EPISODE_STEPS])
    chat = [("messages", MESSAGES)] if shape == "messages" else [
        ("prompt", MESSAGES), ("completion", MESSAGES)]
    return pa.schema([*chat, *ORIGIN, *STEP, *REWARDS, *EPISODE, *TOKENS])


_GROUP_STEP = pa.struct([("step", _i64), ("messages", MESSAGES), ("verified", _bool),
                         ("done", _bool), ("step_kind", _str), *REWARDS, *TOKENS])


def groups_schema() -> pa.Schema:
    """The schema of ``groups`` rows: one rollout with its group's statistics."""
    group = [("group_id", _str), ("group_size", _i64), ("group_reward_mean", _f64),
             ("group_reward_std", _f64), ("advantage", _f64)]
    return pa.schema([*group, ("prompt", MESSAGES), *ORIGIN, *EPISODE, *EPISODE_STEPS,
                      ("steps", pa.list_(_GROUP_STEP))])
