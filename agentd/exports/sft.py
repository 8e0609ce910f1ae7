"""``export --format sft``: chat rows for supervised fine-tuning, in Hugging Face's
conversational format.

One row per *verified step* (``unit="step"``) or per *accepted episode* (``unit="episode"``).
A step row's ``messages`` are the system, (few-shot) and user messages exactly as the engine
sent them — recovered from the recorded prompt, so ``chat.flatten(messages[:-1])`` is the
record's ``prompt`` — and the assistant message is the completion exactly as received
(``model_output.raw``): the turn to learn. ``shape="prompt-completion"`` splits the same
messages into ``prompt`` and ``completion`` so TRL's ``SFTTrainer`` puts the loss on the
completion only. An episode row is one conversation: the first step's system (and few-shot)
messages, then each step's user message and answer in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from agentd.exports.chat import Message, PromptFormatError, split_prompt
from agentd.exports.columns import episode_columns, step_columns
from agentd.exports.export import ExportResult, Filter, kept_steps
from agentd.exports.extras import Step, episode_accepted, episode_reward, group_by_episode
from agentd.exports.rows import RowSink, row_format
from agentd.exports.tasks import TaskIndex
from agentd.fileio import atomic_output
from agentd.records import TrajectoryRecord

Unit = Literal["step", "episode"]
Shape = Literal["messages", "prompt-completion"]


def _record_of(step: Step) -> TrajectoryRecord:
    return step.record


def episodes(paths: Iterable[Path], flt: Filter, result: ExportResult,
             tasks: TaskIndex | None) -> Iterator[list[Step]]:
    """The kept episodes, whole (steps in order); see ``Filter.per_episode``."""
    return group_by_episode(kept_steps(paths, flt.per_episode(), result, tasks), _record_of)


def step_messages(step: Step) -> list[Message]:
    """The step's chat: what was sent, then the completion as it came back."""
    before, user = split_prompt(step.record.prompt)
    return [*before, user, {"role": "assistant", "content": step.record.model_output.raw}]


def _episode_messages(steps: list[Step]) -> list[Message]:
    before, _ = split_prompt(steps[0].record.prompt)
    messages = list(before)
    for s in steps:
        messages.extend(step_messages(s)[-2:])
    return messages


def _step_ok(step: Step, steps: list[Step], flt: Filter) -> bool:
    """A step row is a verified step (always) that meets the minimum reward; with
    ``verified_only`` its episode must also be accepted (by the verifier, when it ran)."""
    record = step.record
    if not record.verified or record.model_output.action is None:
        return False
    if flt.verified_only and not episode_accepted(steps):
        return False
    return flt.min_reward is None or record.reward.total >= flt.min_reward


def _episode_ok(steps: list[Step], flt: Filter) -> bool:
    if not episode_accepted(steps):
        return False
    if flt.verified_only and not all(s.record.verified for s in steps):
        return False
    return flt.min_reward is None or episode_reward(steps) >= flt.min_reward


def sft_rows(eps: Iterable[list[Step]], flt: Filter, tasks: TaskIndex | None,
             result: ExportResult, *, unit: Unit,
             shape: Shape) -> Iterator[tuple[dict[str, Any], list[Step]]]:
    """(row, the steps it came from) for every row of the export; a row whose prompt is not
    a chat's flat form is counted in ``result.bad_prompts`` and left out."""
    for steps in eps:
        meta = tasks.meta(steps[0].record.task_id) if tasks is not None else None
        try:
            if unit == "episode":
                if _episode_ok(steps, flt):
                    yield {"messages": _episode_messages(steps),
                           **episode_columns(steps, meta)}, steps
                continue
            for s in steps:
                if _step_ok(s, steps, flt):
                    yield ({**_shaped(step_messages(s), shape),
                            **step_columns(s, steps, meta)}, [s])
        except PromptFormatError:
            result.bad_prompts += 1


def _shaped(messages: list[Message], shape: Shape) -> dict[str, list[Message]]:
    if shape == "messages":
        return {"messages": messages}
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def export_sft(paths: Iterable[Path], out: Path, flt: Filter, tasks: TaskIndex | None, *,
               unit: Unit = "step", shape: Shape = "messages") -> ExportResult:
    """Write the SFT rows to ``out`` (Parquet for ``*.parquet``, else JSON lines)."""
    from agentd.exports.schemas import sft_schema

    if unit == "episode" and shape != "messages":
        from agentd.errors import UsageError

        raise UsageError("--sft-unit episode writes whole conversations: use --sft-shape messages")
    result = ExportResult()
    fmt = row_format(out.name)
    with atomic_output(out) as f, RowSink(f, fmt, lambda: sft_schema(unit, shape)) as sink:
        for row, steps in sft_rows(episodes(paths, flt, result, tasks), flt, tasks, result,
                                   unit=unit, shape=shape):
            sink.add(row)
            result.card.add(row, steps)
    result.written = sink.rows
    return result
