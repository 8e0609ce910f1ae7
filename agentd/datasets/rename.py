"""Cross-file rename tasks: a function renamed where it is defined and where it is used.

A pair is a module that defines a top-level function and another module of the same split
group that imports it by name (``from mod import f`` or a relative import) and calls it.
The reference rule renames every identifier ``f`` that is not an attribute or a keyword
name, in both files; pairs where that would be ambiguous (``f`` in ``__all__``, used as a
parameter or keyword, the new name already present) are skipped.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

from agentd.datasets.corpus import SourceFile

SUFFIX = "_impl"
INSTRUCTIONS = (
    "Rename the function `{old}` defined in `{defn}` to `{new}`, and update its import and "
    "call sites in `{user}`.",
    "`{old}` in `{defn}` should be called `{new}`: rename it and fix every use, including "
    "`{user}`.",
    "Refactor across files: rename `{old}` to `{new}` in `{defn}` and in `{user}`, which "
    "imports it.",
)


@dataclass
class ModuleInfo:
    """What the rename search needs to know about one module."""

    src: SourceFile
    name: str
    functions: set[str] = field(default_factory=set)
    exported: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)  # params, keywords: renaming is unsafe
    imports: list[tuple[str, str]] = field(default_factory=list)  # (module, name)
    calls: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class RenamePair:
    """Rename ``old`` defined in ``defn`` and used by ``user``."""

    defn: SourceFile
    user: SourceFile
    old: str

    @property
    def new(self) -> str:
        return self.old + SUFFIX


def module_name(rel: str) -> str:
    parts = rel.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(info: ModuleInfo, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    is_pkg = info.src.path.endswith("__init__.py")
    base = info.name.split(".") if info.name else []
    drop = node.level - 1 + (0 if is_pkg else 1)
    base = base[: len(base) - drop] if drop <= len(base) else []
    return ".".join([*base, *([node.module] if node.module else [])])


def _exported(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ) and isinstance(node.value, ast.List | ast.Tuple):
            return {e.value for e in node.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def _walk(info: ModuleInfo, tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.keyword) and node.arg:
            info.blocked.add(node.arg)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            info.calls.add(node.func.id)
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(info, node)
            info.imports += [(mod, a.name) for a in node.names if a.asname is None]
        elif isinstance(node, ast.Global | ast.Nonlocal):
            info.blocked.update(node.names)


def analyse(src: SourceFile) -> ModuleInfo:
    """Parse one module (it is known to parse) and collect its names."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(src.text)
    info = ModuleInfo(src=src, name=module_name(src.path))
    info.functions = {n.name for n in tree.body
                      if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    info.exported = _exported(tree)
    _walk(info, tree)
    return info


def _index(infos: list[ModuleInfo]) -> dict[str, ModuleInfo]:
    """Modules by dotted name, and by every dotted suffix that is unambiguous (sdist trees
    nest the package under ``project-1.0/src/``)."""
    index: dict[str, ModuleInfo] = {}
    seen: dict[str, int] = {}
    for info in infos:
        parts = info.name.split(".")
        for i in range(len(parts)):
            key = ".".join(parts[i:])
            seen[key] = seen.get(key, 0) + 1
            index[key] = info
    return {k: v for k, v in index.items() if seen[k] == 1 or k == v.name}


def _ok(defn: ModuleInfo, user: ModuleInfo, old: str) -> bool:
    new = old + SUFFIX
    if old not in defn.functions or old in defn.exported or old not in user.calls:
        return False
    if old in defn.blocked or old in user.blocked or old.startswith("__"):
        return False
    pattern = re.compile(rf"\b{re.escape(new)}\b")
    return not (pattern.search(defn.src.text) or pattern.search(user.src.text))


def find_pairs(corpus: list[SourceFile]) -> Iterator[RenamePair]:
    """Every safe (definition, user, name) triple within one split group."""
    infos = [analyse(f) for f in corpus]
    index = _index(infos)
    for user in infos:
        for mod, name in sorted(set(user.imports)):
            defn = index.get(mod)
            if defn is None or defn is user or defn.src.group != user.src.group:
                continue
            if _ok(defn, user, name):
                yield RenamePair(defn=defn.src, user=user.src, old=name)


def rename_rule(old: str, new: str) -> str:
    """The reference rule: every identifier ``old`` except attributes and keyword names."""
    return (
        "id: rename-function\n"
        "language: python\n"
        "rule:\n"
        "  kind: identifier\n"
        f"  regex: ^{old}$\n"
        "  not:\n"
        "    any:\n"
        "      - inside: {kind: attribute, field: attribute}\n"
        "      - inside: {kind: keyword_argument, field: name}\n"
        f"fix: {new}\n"
    )
