"""Running the ast-grep CLI outside the jail, on copies, to *find* candidates.

Verification of the reference solution happens in the sandbox (``verify``); here we only
search the corpus and compute candidate after-states on throwaway copies.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec
import yaml

from agentd.datasets.recipes import NoAliasDumper as _NoAliasDumper
from agentd.errors import DatasetError

_NO_IGNORE = ("--no-ignore", "hidden", "--no-ignore", "vcs", "--no-ignore", "dot",
              "--no-ignore", "parent", "--no-ignore", "global", "--no-ignore", "exclude")
MAX_SCAN_LINES = 2_000_000


class _ScanHit(msgspec.Struct):
    file: str
    ruleId: str


_hit_decoder = msgspec.json.Decoder(_ScanHit)


def binary() -> str:
    """The ast-grep executable: next to our interpreter (the venv), else on PATH."""
    local = Path(sys.executable).parent / "ast-grep"
    if local.exists():
        return str(local)
    found = shutil.which("ast-grep")
    if found is None:
        raise DatasetError("ast-grep not found (pip install ast-grep-cli)")
    return found


async def scan_rule_hits(config: Path, root: Path, *, timeout_s: float,
                         ) -> dict[str, set[str]]:
    """``{rule id: {relative file}}`` for every rule in ``config`` over ``root``.

    One ``ast-grep scan --json=stream`` process for all rules: ast-grep parallelises the
    files itself, and streaming keeps memory flat however many matches there are.
    """
    argv = [binary(), "scan", "-c", str(config), "--json=stream", *_NO_IGNORE, "."]
    hits: dict[str, set[str]] = {}
    with anyio.fail_after(timeout_s):
        async with await anyio.open_process(argv, cwd=root, stdin=None) as proc:
            assert proc.stdout is not None
            await _read_hits(proc.stdout, hits)
            await proc.wait()
    if proc.returncode not in (0, 1):
        raise DatasetError(f"ast-grep scan failed with exit {proc.returncode}")
    return hits


async def _read_hits(stream: anyio.abc.ByteReceiveStream, hits: dict[str, set[str]]) -> None:
    buf, lines = b"", 0
    async for chunk in stream:
        buf += chunk
        *complete, buf = buf.split(b"\n")
        for line in complete:
            lines += 1
            if lines > MAX_SCAN_LINES:
                raise DatasetError(f"ast-grep scan produced more than {MAX_SCAN_LINES} matches")
            if line.strip():
                hit = _hit_decoder.decode(line)
                hits.setdefault(hit.ruleId, set()).add(Path(hit.file).as_posix())


def _scoped_rules(items: Sequence[tuple[dict[str, str], str]]) -> list[dict[str, Any]]:
    """One rule document per distinct rule text, limited by ast-grep's ``files`` globs to
    the directories of the items that use it (fewer documents: a faster scan)."""
    dirs: dict[str, list[str]] = {}
    for i, (_files, rule) in enumerate(items):
        dirs.setdefault(rule, []).append(f"**/{_item_dir(i)}/**")
    docs: list[dict[str, Any]] = []
    for n, (rule, globs) in enumerate(dirs.items()):
        doc = yaml.safe_load(rule)
        if not isinstance(doc, dict):
            raise DatasetError("a recipe rule is not a YAML mapping")
        doc["id"] = f"{doc.get('id', 'rule')}-{n}"
        doc["files"] = globs
        docs.append(doc)
    return docs


def _item_dir(index: int) -> str:
    return f"__agentd_item_{index}__"


async def apply_each(items: Sequence[tuple[dict[str, str], str]], *, timeout_s: float,
                     ) -> list[dict[str, str]]:
    """Apply each item's rule to that item's files, all in one ast-grep process.

    Every item gets its own directory in a temporary copy and its rule a ``files`` glob
    for that directory, so one ``scan --update-all`` does the work of ``len(items)``
    processes. Returns the after-state of every item's files.
    """
    if not items:
        return []
    with tempfile.TemporaryDirectory(prefix="agentd-apply-") as tmp:
        root = Path(tmp)
        docs = _scoped_rules(items)
        batch = [files for files, _rule in items]
        await anyio.to_thread.run_sync(_write_batch, root, batch, docs)
        await _update_all(root / "rules.yml", root / "t", timeout_s)
        return await anyio.to_thread.run_sync(_read_batch, root, batch)


def _write_batch(root: Path, batch: Sequence[dict[str, str]], docs: list[dict[str, Any]],
                 ) -> None:
    text = yaml.dump_all(docs, Dumper=_NoAliasDumper, sort_keys=False, width=1000)
    (root / "rules.yml").write_text(text, encoding="utf-8")
    for i, files in enumerate(batch):
        for rel, body in files.items():
            path = root / "t" / _item_dir(i) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body.encode("utf-8"))


def _read_batch(root: Path, batch: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    base = root / "t"
    return [{rel: (base / _item_dir(i) / rel).read_bytes().decode("utf-8") for rel in files}
            for i, files in enumerate(batch)]


async def _update_all(rule_file: Path, target: Path, timeout_s: float) -> None:
    argv = [binary(), "scan", "--rule", str(rule_file), "--update-all", *_NO_IGNORE, "."]
    with anyio.fail_after(timeout_s):
        proc = await anyio.run_process(argv, cwd=target, check=False, stdin=None)
    if proc.returncode not in (0, 1):
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DatasetError(f"ast-grep --update-all failed: {err[-1] if err else proc.returncode}")
