"""The dataset catalog: which entries a command works on and where their data lives."""

from __future__ import annotations

import sysconfig
from pathlib import Path

from agentd.config import DatasetEntry, LocalTreeDataset, Settings
from agentd.datasets.dirhash import METADATA_FILE, TREE_DIR
from agentd.errors import UsageError


def raw_dir(settings: Settings) -> Path:
    return settings.path(settings.agentd.paths.raw_data)


def processed_dir(settings: Settings) -> Path:
    return settings.path(settings.agentd.paths.processed_data)


def dataset_dir(settings: Settings, name: str) -> Path:
    return raw_dir(settings) / name


def tree_dir(settings: Settings, name: str) -> Path:
    """Where the fetched source files of one entry live."""
    return dataset_dir(settings, name) / TREE_DIR


def is_fetched(settings: Settings, name: str) -> bool:
    return (dataset_dir(settings, name) / METADATA_FILE).is_file()


def local_source_dir(entry: LocalTreeDataset) -> Path:
    """The directory a ``local_tree`` entry names.

    ``stdlib`` (or ``stdlib/<subdir>``, e.g. ``stdlib/test``) is resolved at run time
    against the running interpreter, so the default catalog works on any host offline.
    """
    head, _, sub = entry.source.partition("/")
    if head == "stdlib":
        base = Path(sysconfig.get_paths()["stdlib"])
        if ".." in Path(sub).parts:
            raise UsageError(f"dataset {entry.name!r}: '..' is not allowed in {entry.source!r}")
        return base / sub if sub else base
    return Path(entry.source).expanduser()


def select(settings: Settings, names: list[str] | None, *, include_fetched: bool = False,
           ) -> list[DatasetEntry]:
    """Entries named on the command line, else the enabled ones.

    With ``include_fetched`` (used by ``build``), disabled entries that were fetched on
    demand with ``agentd data fetch NAME`` are included too.
    """
    entries = settings.datasets.datasets
    if names:
        by_name = {e.name: e for e in entries}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise UsageError(f"unknown dataset {unknown[0]!r} (known: {', '.join(by_name)})")
        return [by_name[n] for n in names]
    return [e for e in entries
            if e.enabled or (include_fetched and is_fetched(settings, e.name))]
