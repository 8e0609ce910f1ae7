"""The Parquet form of ``TrajectoryRecord``: one flat, explicit, stable schema.

Nested structs become prefixed columns (``reward_total``, ``policy_model``,
``sandbox_exit_code``…); free-form values (the action, ``state_before``, ``state_update``,
sampling parameters, ast-grep matches) are JSON strings, so the schema does not change when a
model invents a new key. The mapping is lossless: ``row_to_record(flatten(r)) == r``, which
the tests check for every field, so a field added to the record without a column fails them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from agentd.logging import get_logger
from agentd.records import TrajectoryRecord

log = get_logger(__name__)

ROW_GROUP = 1024

_s, _b, _f, _i32, _i64 = pa.string(), pa.bool_(), pa.float64(), pa.int32(), pa.int64()

SCHEMA = pa.schema([
    ("schema_version", _i32), ("run_id", _s), ("task_id", _s), ("episode", _i32),
    ("step", _i32), ("split", _s), ("created_at", _s), ("verified", _b), ("done", _b),
    ("policy_kind", _s), ("policy_model", _s), ("policy_endpoint", _s), ("policy_seed", _i64),
    ("policy_sampling", _s),
    ("prompt", _s), ("state_before", _s),
    ("model_output_raw", _s), ("model_output_think", _s), ("model_output_reasoning", _s),
    ("action", _s), ("action_tool", _s),
    ("state_update", _s), ("parse_error", _s), ("state_rejected", pa.list_(_s)),
    ("has_sandbox_result", _b), ("sandbox_exit_code", _i32), ("sandbox_timed_out", _b),
    ("sandbox_killed_reason", _s), ("sandbox_stdout", _s), ("sandbox_stderr", _s),
    ("sandbox_duration_ms", _f), ("sandbox_changed_files", pa.list_(_s)), ("sandbox_diff", _s),
    ("sandbox_matches", _s), ("sandbox_error_kind", _s), ("sandbox_error", _s),
    ("reward_format_ok", _b), ("reward_exec_ok", _b), ("reward_progress", _f),
    ("reward_progress_delta", _f), ("reward_regression", _f), ("reward_final_match", _b),
    ("reward_srl_similarity", _f),
    ("reward_total", _f), ("reward_step_kind", _s),
    ("verdict", _s), ("verdict_accepted", _b), ("verdict_decided_by", _s),
    ("timing_generate_ms", _f), ("timing_sandbox_ms", _f),
    ("usage_prompt_tokens", _i64), ("usage_completion_tokens", _i64), ("usage_cost_usd", _f),
    ("usage_prompt_token_ids", pa.list_(_i64)), ("usage_completion_token_ids", pa.list_(_i64)),
    ("usage_logprobs", pa.list_(_f)), ("usage_cached_prompt_tokens", _i64),
    ("provenance_config_hash", _s), ("provenance_template_hash", _s),
    ("provenance_ast_grep_version", _s), ("provenance_agentd_version", _s),
    ("provenance_corpus_version", _s),
])

_GROUPS = {"policy": "policy_", "model_output": "model_output_", "sandbox_result": "sandbox_",
           "reward": "reward_", "timing": "timing_", "usage": "usage_",
           "provenance": "provenance_"}
_RENAME = {"model_output_action": "action", "model_output_state_update": "state_update"}
_UNRENAME = {v: k for k, v in _RENAME.items()}
_JSON = ("policy_sampling", "state_before", "action", "state_update", "sandbox_matches",
         "verdict")
_DERIVED = ("has_sandbox_result", "action_tool", "verdict_accepted", "verdict_decided_by")


def _dumps(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def _loads(value: str | None) -> Any:
    return None if value is None else msgspec.json.decode(value)


def flatten(record: TrajectoryRecord) -> dict[str, Any]:
    """One Parquet row (column name -> Python value) for ``record``."""
    row: dict[str, Any] = {}
    for key, value in msgspec.to_builtins(record).items():
        prefix = _GROUPS.get(key)
        if prefix is None:
            row[key] = value
            continue
        for sub, v in (value or {}).items():
            row[_RENAME.get(prefix + sub, prefix + sub)] = v
    row["has_sandbox_result"] = record.sandbox_result is not None
    action = row.get("action")
    row["action_tool"] = action.get("tool") if isinstance(action, dict) else None
    verdict = record.verdict
    row["verdict_accepted"] = None if verdict is None else verdict.accepted
    row["verdict_decided_by"] = None if verdict is None else verdict.decided_by
    for name in _JSON:
        row[name] = _dumps(row.get(name))
    return row


def row_to_record(row: dict[str, Any]) -> TrajectoryRecord:
    """The inverse of ``flatten``."""
    data: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {key: {} for key in _GROUPS}
    for column, raw in row.items():
        if column in _DERIVED:
            continue
        value = _loads(raw) if column in _JSON else raw
        name = _UNRENAME.get(column, column)
        group = next((g for g, p in _GROUPS.items() if name.startswith(p)), None)
        if group is None:
            data[name] = value
        else:
            groups[group][name.removeprefix(_GROUPS[group])] = value
    data.update(groups)
    if not row.get("has_sandbox_result"):
        data["sandbox_result"] = None
    return msgspec.convert(data, TrajectoryRecord)


class ParquetSink:
    """Writes rows to a Parquet stream in row groups of ``ROW_GROUP`` (bounded memory)."""

    def __init__(self, out: IO[bytes] | Path, *, row_group: int = ROW_GROUP) -> None:
        self._writer = pq.ParquetWriter(out, SCHEMA, compression="zstd")
        self._rows: list[dict[str, Any]] = []
        self._row_group = row_group
        self._checked = False

    def _check_columns(self, row: dict[str, Any]) -> None:
        # pyarrow drops keys the schema does not name; say so instead of losing data quietly.
        self._checked = True
        extra = sorted(set(row) - set(SCHEMA.names))
        if extra:
            log.warning("trajectories.parquet_columns_dropped", columns=extra)

    def add(self, record: TrajectoryRecord) -> None:
        row = flatten(record)
        if not self._rows and not self._checked:
            self._check_columns(row)
        self._rows.append(row)
        if len(self._rows) >= self._row_group:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=SCHEMA))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read_parquet_records(path: Path, *, batch_size: int = ROW_GROUP) -> Iterator[TrajectoryRecord]:
    """Stream records back out of an exported Parquet file."""
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            yield row_to_record(row)
