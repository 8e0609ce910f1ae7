"""Safe reading of model-written ast-grep YAML rules.

The text is first *scanned* (iteratively, no recursion) and refused if it uses anchors,
aliases or tags — the billion-laughs expansion needs aliases — or nests deeper than
``MAX_DEPTH``; only then is it parsed with the safe loader. Each document may use only the
known rule keys: ``customLanguages``, ``ruleDirs`` and other project-config keys are refused,
so a rule can never make ast-grep load a native library. What ast-grep finally sees is our own
JSON re-serialisation, so YAML 1.1/1.2 differences between PyYAML and ast-grep cannot matter.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from agentd.errors import RefusedInputError

MAX_DEPTH = 32
MAX_DOCUMENTS = 16
RULE_KEYS = frozenset({
    "id", "language", "rule", "fix", "constraints", "utils", "transform", "rewriters",
    "message", "severity", "note", "metadata", "files", "ignores", "url", "labels",
})
REQUIRED_KEYS = ("id", "language", "rule")
LANGUAGES = frozenset({
    "bash", "c", "cpp", "csharp", "css", "dart", "elixir", "go", "haskell", "hcl", "html",
    "java", "javascript", "js", "json", "kotlin", "lua", "nix", "php", "py", "python", "ruby",
    "rust", "scala", "solidity", "swift", "ts", "tsx", "typescript", "yaml",
})
_RULE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
         yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
_FORBIDDEN = (yaml.AnchorToken, yaml.AliasToken, yaml.TagToken, yaml.DirectiveToken)


class RuleRejected(RefusedInputError):
    """The rule text is not a safe, known-shape ast-grep rule."""


def check_language(lang: object) -> str:
    """``lang`` lower-cased, if it is on the allowlist."""
    name = lang.lower() if isinstance(lang, str) else ""
    if name not in LANGUAGES:
        raise RuleRejected(f"language {str(lang)[:40]!r} is not allowed")
    return name


def _scan(text: str) -> None:
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, _FORBIDDEN):
                raise RuleRejected(f"YAML {type(token).__name__[:-5].lower()}s are not allowed")
            depth += isinstance(token, _OPEN) - isinstance(token, _CLOSE)
            if depth > MAX_DEPTH:
                raise RuleRejected(f"YAML nests deeper than {MAX_DEPTH}")
    except yaml.YAMLError as exc:
        raise RuleRejected(f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: object, where: str = "rule") -> None:
    """Only what JSON can carry back to ast-grep: string keys, UTF-8 strings, numbers,
    booleans, null, lists and mappings. PyYAML also yields dates, bytes, mixed key types and
    lone surrogates (``"\\ud800"``); each is refused here instead of crashing the encoder.
    Depth is bounded by the scan, so the recursion is too."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RuleRejected(f"{where}: text that is not valid UTF-8") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RuleRejected(f"{where}: key {str(key)[:40]!r} is not a string")
            _plain(key, where)
            _plain(item, f"{where}.{key[:40]}")
    elif isinstance(value, list):
        for item in value:
            _plain(item, where)
    elif not isinstance(value, _SCALARS):
        raise RuleRejected(f"{where}: a YAML {type(value).__name__} is not allowed")


def _check_document(doc: object) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise RuleRejected("a rule must be a mapping")
    _plain(doc)
    unknown = sorted(str(k) for k in doc if k not in RULE_KEYS)
    if unknown:
        raise RuleRejected(f"unknown rule keys: {', '.join(unknown)[:120]}")
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise RuleRejected(f"rule is missing: {', '.join(missing)}")
    if not isinstance(doc["id"], str) or not _RULE_ID.match(doc["id"]):
        raise RuleRejected("rule id must match [A-Za-z0-9_.-]{1,64}")
    doc["language"] = check_language(doc["language"])
    if not isinstance(doc["rule"], dict):
        raise RuleRejected("'rule' must be a mapping")
    return doc


def parse_rules(text: str) -> list[dict[str, Any]]:
    """The validated rule documents of ``text``; ``RuleRejected`` says why not."""
    _scan(text)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except (yaml.YAMLError, RecursionError) as exc:
        raise RuleRejected(f"invalid YAML: {str(exc)[:120]}") from None
    if not docs:
        raise RuleRejected("no rule in the YAML")
    if len(docs) > MAX_DOCUMENTS:
        raise RuleRejected(f"more than {MAX_DOCUMENTS} rule documents")
    return [_check_document(d) for d in docs]


def render_rules(docs: list[dict[str, Any]]) -> str:
    """The rules as ast-grep will read them: JSON documents (valid YAML), sorted keys."""
    try:
        return "\n---\n".join(json.dumps(d, sort_keys=True, ensure_ascii=False,
                                         allow_nan=False) for d in docs) + "\n"
    except (TypeError, ValueError) as exc:  # _plain let something through: still a refusal
        raise RuleRejected(f"rule cannot be re-encoded: {str(exc)[:120]}") from None
