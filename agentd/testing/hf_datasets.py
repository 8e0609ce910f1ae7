"""Hugging Face ``datasets`` (a dev extra), imported under its own name, for tests.

pytest's default import mode puts ``tests/`` on ``sys.path``, where ``tests/datasets`` (our
dataset tests) takes the name ``datasets``. ``hugging_face()`` swaps the real library in for
the length of a ``with`` block and the test package back afterwards; the library is imported
once and kept.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

TESTS = Path(__file__).resolve().parents[2] / "tests"
_library: dict[str, ModuleType] = {}


def _named(prefix: str) -> dict[str, ModuleType]:
    return {k: m for k, m in sys.modules.items() if k == prefix or k.startswith(prefix + ".")}


@contextlib.contextmanager
def hugging_face() -> Iterator[Any]:
    shadow = _named("datasets")
    for name in shadow:
        del sys.modules[name]
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or Path.cwd()).resolve() != TESTS]
    sys.modules.update(_library)
    try:
        yield importlib.import_module("datasets")
    finally:
        _library.update(_named("datasets"))
        for name in list(_library):
            sys.modules.pop(name, None)
        sys.modules.update(shadow)
        sys.path[:] = saved


def load(path: Path, cache: Path) -> Any:
    """``datasets.load_dataset("json" | "parquet", data_files=path, split="train")``, as rows
    materialised as a list of dicts (plus the ``Dataset`` for its column API)."""
    kind = "parquet" if path.suffix == ".parquet" else "json"
    with hugging_face() as hf:
        ds = hf.load_dataset(kind, data_files=str(path), split="train", cache_dir=str(cache))
        assert isinstance(ds, hf.Dataset)
        return Loaded(ds.num_rows, ds.to_list(), list(ds.column_names))


class Loaded:
    """What a test needs of a loaded dataset, read while the library was in place."""

    def __init__(self, num_rows: int, rows: list[dict[str, Any]], columns: list[str]) -> None:
        self.num_rows = num_rows
        self.rows = rows
        self.column_names = columns

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, column: str) -> list[Any]:
        return [r[column] for r in self.rows]
