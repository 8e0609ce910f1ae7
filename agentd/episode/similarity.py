"""The SRL step reward: how close an action is to the expert's, after normalisation.

Supervised RL (SRL) trains a policy step by step against an expert trajectory: for step ``k``
the context is the task plus the expert's steps ``0..k-1`` and the target is the expert's step
``k``. A candidate action's reward is the ``difflib.SequenceMatcher`` ratio between the
candidate and the expert action, ``-1`` when the candidate is not a well-formed action.

Both sides are normalised first so that formatting cannot earn or lose reward: YAML rules are
parsed and re-dumped with sorted keys, patterns have their whitespace collapsed, paths are
sorted, and the whole action is rendered as JSON with sorted keys. Normalised strings are
capped before comparison because ``SequenceMatcher`` is quadratic and model output is hostile.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec
import yaml

from agentd.records import Action, action_to_dict, convert_action, decode_action

BROKEN_FORMAT_REWARD = -1.0
MAX_COMPARE_CHARS = 2048  # worst case (repetitive text) ≈ 0.6 s; real actions are far shorter
_MAX_YAML_CHARS = 64 * 1024
_WS = re.compile(r"\s+")
_YAML_FIELDS = frozenset({"rule_yaml"})
_TEXT_FIELDS = frozenset({"pattern", "rewrite"})


def _collapse(text: str) -> str:
    return _WS.sub(" ", text).strip()


# libyaml when present: the pure-Python parser costs ~1.5 ms a rule, which adds up when an
# export normalises every expert step. Both produce the same canonical text for rules.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@functools.lru_cache(maxsize=4096)
def _normalise_yaml(text: str) -> str:
    """Parse and re-dump with sorted keys; unparsable YAML falls back to collapsed text."""
    if len(text) > _MAX_YAML_CHARS:
        return _collapse(text)
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader, C or Python
    except yaml.YAMLError:
        return _collapse(text)
    dumped = yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                       allow_unicode=True)
    return _collapse(dumped)


def _as_action(action: Action | Mapping[str, Any] | str | bytes) -> Action:
    if isinstance(action, str | bytes):
        return decode_action(action)
    if isinstance(action, Mapping):
        return convert_action(dict(action))
    return action


def normalise_action(action: Action | Mapping[str, Any] | str | bytes) -> str:
    """The canonical text of an action; raises ``msgspec`` errors when it is not an action."""
    fields = action_to_dict(_as_action(action))
    for key, value in list(fields.items()):
        if key in _YAML_FIELDS and isinstance(value, str):
            fields[key] = _normalise_yaml(value)
        elif key in _TEXT_FIELDS and isinstance(value, str):
            fields[key] = _collapse(value)
        elif key == "paths" and isinstance(value, list):
            fields[key] = sorted(value)
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def srl_similarity(
    candidate: Action | Mapping[str, Any] | str | bytes | None,
    expert: Action | Mapping[str, Any] | str | bytes,
) -> float:
    """SequenceMatcher ratio in ``[0, 1]`` of the normalised actions; ``-1`` for a broken format.

    A ``candidate`` that is ``None`` (the parser found no action) or that does not validate as
    an action is a broken format. The expert is trusted: if it is invalid this raises.
    """
    if candidate is None:
        return BROKEN_FORMAT_REWARD
    try:
        cand = normalise_action(candidate)
    except (msgspec.MsgspecError, TypeError, ValueError):
        return BROKEN_FORMAT_REWARD
    exp = normalise_action(expert)
    if cand == exp:  # what ratio() gives for equal texts, without its quadratic matching
        return 1.0
    matcher = difflib.SequenceMatcher(None, cand[:MAX_COMPARE_CHARS], exp[:MAX_COMPARE_CHARS],
                                      autojunk=False)
    return matcher.ratio()
