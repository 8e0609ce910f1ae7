"""corpus_version: a content hash of the split files, stable across rebuilds of the same data."""

from __future__ import annotations

from pathlib import Path

from agentd.datasets import corpus_version


def write(root: Path, split: str, text: str) -> None:
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / split / "tasks.jsonl").write_text(text)


def test_same_content_same_version_and_any_change_shows(tmp_path: Path) -> None:
    assert corpus_version(tmp_path) == ""  # nothing built yet
    write(tmp_path, "train", "a\n")
    write(tmp_path, "dev", "b\n")
    v = corpus_version(tmp_path)
    assert len(v) == 16
    assert corpus_version(tmp_path) == v
    write(tmp_path, "dev", "b2\n")
    assert corpus_version(tmp_path) != v
    write(tmp_path, "dev", "b\n")
    assert corpus_version(tmp_path) == v
    (tmp_path / "stats.json").write_text("{}")  # the build's timing never changes the version
    assert corpus_version(tmp_path) == v


def test_moving_content_between_splits_changes_the_version(tmp_path: Path) -> None:
    write(tmp_path, "train", "a\n")
    v = corpus_version(tmp_path)
    (tmp_path / "train" / "tasks.jsonl").unlink()
    write(tmp_path, "test", "a\n")
    assert corpus_version(tmp_path) != v
