"""The chat messages of a step, recovered from the prompt text its record holds.

The engine records ``episode.prompts.flatten(messages)``: each message as ``[role]\\ncontent``,
joined by blank lines. This module is its inverse. A marker is a line ``[system]``, ``[user]``
or ``[assistant]`` after a blank line, and content (task files, observations) may contain such
lines too, so a marker counts only where the prompt's shape allows a message to start::

    [system]?  ([user] example, [assistant] its answer)*  [user] the step

and an example answer is a whole protocol output (``<think>`` … ``</state_update>``).
``flatten(prompt_messages(p)) == p`` holds for every prompt; the tests pin this module to
``episode.prompts.flatten``.
"""

from __future__ import annotations

import re

from agentd.errors import TrajectoryError

_MARKER = re.compile(r"(?:\A|\n\n)\[(system|user|assistant)\]\n")
_ANSWER_START = "<think>"
_ANSWER_END = "</state_update>"

Message = dict[str, str]


class PromptFormatError(TrajectoryError):
    """A recorded prompt is not the flat form of a chat."""


def flatten(messages: list[Message]) -> str:
    """The flat text the engine records (the same rule as ``episode.prompts.flatten``)."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def prompt_messages(prompt: str) -> list[Message]:
    """The messages that ``prompt`` is the flat form of (see the module docstring)."""
    marks = list(_MARKER.finditer(prompt))
    if not marks or marks[0].start() != 0:
        raise PromptFormatError("the prompt does not start with a [role] line")
    cuts = _choose(prompt, marks)
    messages: list[Message] = []
    for i, m in enumerate(cuts):
        end = cuts[i + 1].start() if i + 1 < len(cuts) else len(prompt)
        messages.append({"role": m.group(1), "content": prompt[m.end():end]})
    if messages[-1]["role"] != "user":
        raise PromptFormatError("the prompt does not end with a user message")
    return messages


def _choose(prompt: str, marks: list[re.Match[str]]) -> list[re.Match[str]]:
    """The markers that start messages: left to right, each where the shape expects it."""
    cuts = [marks[0]]
    if marks[0].group(1) == "assistant":
        raise PromptFormatError("the prompt starts with an assistant message")
    i = 1
    while i < len(marks):
        expected = "assistant" if cuts[-1].group(1) == "user" else "user"
        m = marks[i]
        if m.group(1) == expected and _fits(prompt, marks, i, expected):
            cuts.append(m)
        i += 1
    if cuts[-1].group(1) == "assistant":
        raise PromptFormatError("the prompt ends with an assistant message")
    return cuts


def _fits(prompt: str, marks: list[re.Match[str]], i: int, role: str) -> bool:
    """An answer must be a whole protocol output followed by a user marker; a user marker
    after the system message or an answer always starts the next message."""
    if role == "user":
        return True
    nxt = next((m for m in marks[i + 1:] if m.group(1) == "user"), None)
    if nxt is None:
        return False
    body = prompt[marks[i].end():nxt.start()]
    return body.startswith(_ANSWER_START) and body.endswith(_ANSWER_END)


def split_prompt(prompt: str) -> tuple[list[Message], Message]:
    """(the messages before the step's user message, that user message)."""
    messages = prompt_messages(prompt)
    return messages[:-1], messages[-1]
