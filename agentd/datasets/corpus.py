"""The corpus: the eligible Python files of one fetched dataset, and their split groups."""

from __future__ import annotations

import ast
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

from agentd.config import BuildConfig


@dataclass(frozen=True)
class SourceFile:
    """One eligible corpus file (UTF-8, parses, within the size bounds)."""

    dataset: str
    path: str  # relative POSIX path inside the dataset's tree
    text: str
    sha256: str
    group: str  # the split unit: a top-level package or module


def parses(text: str) -> bool:
    """Whether ``text`` is valid Python for the running interpreter."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes in old code
            ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def group_of(dataset: str, rel: str, *, single_package: bool) -> str:
    """The split unit of a file: the whole dataset for an sdist (one project), else the
    top-level package or module, so that a package never straddles two splits."""
    if single_package:
        return dataset
    head = rel.split("/", 1)[0]
    return f"{dataset}:{head.removesuffix('.py')}"


def _eligible(path: Path, build: BuildConfig) -> str | None:
    size = path.stat().st_size
    if not build.min_file_bytes <= size <= build.max_file_bytes:
        return None
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text:  # CRLF files: keep byte-exact comparisons simple and portable
        return None
    return text if parses(text) else None


def load_corpus(dataset: str, tree: Path, build: BuildConfig, *, single_package: bool,
                ) -> list[SourceFile]:
    """Every eligible ``.py`` file under ``tree``, sorted by path (blocking: run in a thread)."""
    out: list[SourceFile] = []
    for path in sorted(tree.rglob("*.py")):
        if path.is_symlink() or not path.is_file():
            continue
        text = _eligible(path, build)
        if text is None:
            continue
        rel = path.relative_to(tree).as_posix()
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        out.append(SourceFile(dataset, rel, text, sha,
                              group_of(dataset, rel, single_package=single_package)))
    return out
