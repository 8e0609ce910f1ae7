"""The refactoring recipes: ast-grep rules with a ``fix`` and plain-language instructions.

Each ``rules/<id>.yml`` is a complete ast-grep rule; its ``metadata.instructions`` lists
several phrasings of the task it performs. ``rule-tests/`` holds the valid/invalid cases
and ``rule-tests/__snapshots__`` the expected fixes, checked with
``ast-grep test -c sgconfig.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agentd.errors import DatasetError

RECIPES_DIR = Path(__file__).resolve().parent
RULES_DIR = RECIPES_DIR / "rules"
SGCONFIG = RECIPES_DIR / "sgconfig.yml"

# The keys an agent's rule needs; severity/message/metadata are catalogue information.
_RULE_KEYS = ("id", "language", "rule", "constraints", "utils", "transform", "fix")


@dataclass(frozen=True)
class Recipe:
    """One refactoring: its id, instruction phrasings and the rule the agent would write."""

    id: str
    instructions: tuple[str, ...]
    rule_yaml: str

    def instruction(self, pick: int) -> str:
        """A deterministic choice among the phrasings."""
        return self.instructions[pick % len(self.instructions)]


class NoAliasDumper(yaml.SafeDumper):
    """Writes shared sub-objects out in full: the sandbox refuses YAML anchors/aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def rule_yaml(doc: dict[str, Any]) -> str:
    """A rule document reduced to what ``ast-grep scan --rule`` needs, as YAML text."""
    slim = {k: doc[k] for k in _RULE_KEYS if k in doc}
    return yaml.dump(slim, Dumper=NoAliasDumper, sort_keys=False, width=1000,
                     allow_unicode=True)


def _load_one(path: Path) -> Recipe:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "fix" not in doc or "id" not in doc:
        raise DatasetError(f"recipe {path.name}: not an ast-grep rule with an id and a fix")
    instructions = tuple((doc.get("metadata") or {}).get("instructions") or ())
    if not instructions:
        raise DatasetError(f"recipe {path.name}: metadata.instructions is empty")
    return Recipe(id=str(doc["id"]), instructions=instructions, rule_yaml=rule_yaml(doc))


def load_recipes(rules_dir: Path = RULES_DIR) -> list[Recipe]:
    """Every recipe, sorted by id."""
    recipes = [_load_one(p) for p in sorted(rules_dir.glob("*.yml"))]
    ids = [r.id for r in recipes]
    if len(set(ids)) != len(ids):
        raise DatasetError("recipes: duplicate rule ids")
    return sorted(recipes, key=lambda r: r.id)
