"""Chat prompts for one step, and the observation that tells the model what its last step did.

The templates live in ``configs/prompts.yaml`` (the actor) and ``configs/teacher_prompts.yaml``
(teachers); both validate as ``config.PromptTemplates``. A prompt is::

    system      templates.system
    few-shot    (user: an example task, assistant: its canonical answer) × n   — optional
    user        templates.task
                templates.state            (the <state> block, already within its budget)
                templates.observation      (or templates.no_observation on the first step)
                templates.format_reminder

Placeholders are ``{name}`` from ``config.PROMPT_PLACEHOLDERS``; substitution is one pass, so
text coming from a task or a model (which may itself contain ``{state}``) is never expanded
again. Rendering is a pure function: the same inputs give the same messages, and
``template_hash`` (recorded with every step) changes whenever any template or setting does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from agentd.config import PromptTemplates
from agentd.episode import protocol
from agentd.episode.protocol import ParseError
from agentd.episode.windows import Focus, files_block
from agentd.records import Match, SandboxResult, Task
from agentd.state import State
from agentd.state import render as render_state

OBSERVATION_MAX_CHARS = 3000
_DIFF_CHARS = 1500
_STDOUT_CHARS = 1500
_STDERR_CHARS = 400
_MAX_MATCHES = 15
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class FewShotExample(msgspec.Struct, frozen=True):
    """One worked example: a task's instruction and files listing, and a canonical answer."""

    instruction: str
    language: str
    files: str
    output: str


class RenderedPrompt(msgspec.Struct, frozen=True):
    """Chat messages for the policy, their flat text for the record, and the template hash."""

    messages: list[dict[str, str]]
    text: str
    template_hash: str


def render_prompt(
    templates: PromptTemplates,
    task: Task,
    state_block: str,
    observation: str | None,
    step: int,
    *,
    few_shot: list[FewShotExample] | None = None,
    max_steps: int | None = None,
    files_chars: int | None = None,
    focus: Focus | None = None,
) -> RenderedPrompt:
    """The prompt of step ``step`` (0-based) of ``task``; ``observation`` None on the first.

    The files are shown within ``files_chars`` characters (default: the templates'
    ``files_preview_chars``), large ones windowed around ``focus`` (``episode.windows``).
    """
    total = max_steps if max_steps is not None else task.max_steps
    chars = templates.files_preview_chars if files_chars is None else files_chars
    values = {
        "instruction": task.instruction.strip(),
        "language": task.language,
        "files": files_block(task.files, chars, focus=focus, instruction=task.instruction),
        "task_id": task.task_id,
        "step": str(step + 1),
        "max_steps": str(total),
        "steps_left": str(max(total - step, 0)),
        "state": state_block.strip(),
        "observation": (observation or "").strip(),
    }
    system = fill(templates.system, values).strip()
    messages = [{"role": "system", "content": system}] if system else []
    for example in few_shot or []:
        messages.extend(_example_messages(templates, example, values))
    messages.append({"role": "user", "content": _user_text(templates, values, observation)})
    return RenderedPrompt(messages, flatten(messages), templates.template_hash)


def _user_text(
    templates: PromptTemplates, values: Mapping[str, str], observation: str | None
) -> str:
    last = templates.observation if observation else templates.no_observation
    parts = (templates.task, templates.state, last, templates.format_reminder)
    return "\n\n".join(p for p in (fill(t, values).strip() for t in parts) if p)


def _example_messages(
    templates: PromptTemplates, example: FewShotExample, values: Mapping[str, str]
) -> list[dict[str, str]]:
    shown = {**values, "instruction": example.instruction.strip(),
             "language": example.language, "files": example.files, "step": "1",
             "state": render_state(State()), "observation": ""}
    user = "\n\n".join(
        p for p in (fill(t, shown).strip() for t in (templates.task, templates.state,
                                                      templates.no_observation)) if p
    )
    return [{"role": "user", "content": user}, {"role": "assistant", "content": example.output}]


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` for known names in one pass; all other braces stay as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def flatten(messages: list[dict[str, str]]) -> str:
    """The messages as one text for the trajectory record."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def few_shot_example(task: Task, *, think: str | None = None) -> FewShotExample:
    """A worked example from a (train split) task: its first reference action as the answer."""
    if not task.reference_actions:
        raise ValueError(f"task {task.task_id} has no reference action")
    action = task.reference_actions[0]
    note = think or "A worked example: the first step of an expert solution."
    output = protocol.render(note, action, {"goals": [task.instruction.strip()[:200]]})
    return FewShotExample(task.instruction, task.language, files_block(task.files, 0), output)


# ---------------------------------------------------------------- observations


def observation_from_result(
    result: SandboxResult | None,
    parse_error: ParseError | None,
    *,
    max_chars: int = OBSERVATION_MAX_CHARS,
) -> str:
    """What the last step did, compact and bounded: the next prompt's observation."""
    if parse_error is not None:
        text = f"Your last answer was rejected ({parse_error.kind}): {parse_error.feedback()}"
        return _cap(text + " Nothing was run.", max_chars)
    if result is None:
        return "Nothing was run."
    sections = [_status(result), *_details(result)]
    return _cap("\n".join(s for s in sections if s), max_chars)


def _status(result: SandboxResult) -> str:
    if result.timed_out:
        head = "The action timed out and was killed."
    elif result.error_kind != "none":
        head = f"The action failed ({result.error_kind}): {_cap(result.error, 300) or '-'}"
    else:
        head = f"exit code {result.exit_code}"
    if result.killed_reason and not result.timed_out:
        head += f"; killed: {_cap(result.killed_reason, 120)}"
    changed = result.changed_files
    if not changed:
        return head + "; no file changed."
    shown = ", ".join(changed[:10]) + (f" (+{len(changed) - 10} more)" if len(changed) > 10 else "")
    return f"{head}; changed: {shown}"


def _details(result: SandboxResult) -> list[str]:
    out: list[str] = []
    if result.diff:
        out.append("diff:\n" + _cap(result.diff, _DIFF_CHARS))
    if result.matches:
        out.append(_matches(result.matches))
    if result.stdout and not result.matches:
        out.append("output:\n" + _cap(result.stdout, _STDOUT_CHARS))
    if result.stderr:
        out.append("stderr:\n" + _cap(result.stderr, _STDERR_CHARS))
    return out


def _matches(matches: list[Match]) -> str:
    lines = [f"{len(matches)} match(es):"]
    for m in matches[:_MAX_MATCHES]:
        first = m.text.splitlines()[0] if m.text else ""
        span = f"-{m.end_line}" if m.end_line != m.start_line else ""
        where = f"{m.file}:{m.start_line}{span}"
        fix = f"  =>  {_cap(m.replacement.splitlines()[0], 100)}" if m.replacement else ""
        lines.append(f"- {where}: {_cap(first, 120)}{fix}")
    if len(matches) > _MAX_MATCHES:
        lines.append(f"- … {len(matches) - _MAX_MATCHES} more")
    return "\n".join(lines)


def _cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a marker saying how much was dropped."""
    if len(text) <= limit:
        return text
    keep = max(limit - 40, 0)  # room for the marker
    return f"{text[:keep]}\n… ({len(text) - keep} more characters)"
