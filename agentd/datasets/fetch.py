"""``agentd data fetch``: bring each catalog entry into ``data/raw/<name>/``.

Each entry is prepared in a hidden staging directory next to its final place —
``tree/`` with the source files plus ``metadata.json`` — and swapped in with a rename only
when everything (download, checksum, extraction, hashing) succeeded. A failure removes
the staging directory, so ``data/raw`` never holds a half-written entry.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

import anyio

from agentd.config import (
    DatasetEntry,
    HttpArchiveDataset,
    LocalTreeDataset,
    PypiSdistDataset,
    Settings,
)
from agentd.datasets.catalog import dataset_dir, local_source_dir, raw_dir
from agentd.datasets.dirhash import (
    METADATA_FILE,
    TREE_DIR,
    RawMetadata,
    dir_hash,
    file_sha256,
    write_json_atomic,
)
from agentd.datasets.download import download
from agentd.datasets.extract import safe_extract
from agentd.errors import DatasetError, UnsafeSourceError
from agentd.logging import get_logger

log = get_logger(__name__)
_PIP_OUTPUT_TAIL = 400


def _copy_py_tree(src: Path, dst: Path, entry: LocalTreeDataset) -> None:
    """Copy the ``.py`` files under ``src`` (no links, no excluded dirs, no huge files)."""
    excluded = set(entry.exclude_dirs)
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in excluded and not d.startswith("."))
        base = Path(dirpath)
        for name in sorted(filenames):
            path = base / name
            if not name.endswith(".py") or path.is_symlink():
                continue
            if path.stat().st_size > entry.max_file_bytes:
                continue
            out = dst / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
            out.chmod(0o644)


async def _stage_local(entry: LocalTreeDataset, stage: Path) -> tuple[str, str, str | None]:
    src = local_source_dir(entry)
    if not src.is_dir():
        raise DatasetError(f"dataset {entry.name!r}: source directory {src} does not exist")
    tree = stage / TREE_DIR
    tree.mkdir()
    await anyio.to_thread.run_sync(_copy_py_tree, src, tree, entry)
    version = entry.version or (f"{platform.python_implementation()}-{platform.python_version()}"
                                if entry.source.startswith("stdlib") else "")
    return str(src), version, None


def _pip_argv(entry: PypiSdistDataset, req: Path, dest: Path, settings: Settings) -> list[str]:
    argv = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
            "--require-hashes", "--disable-pip-version-check", "--no-input", "-q",
            "-r", str(req), "-d", str(dest)]
    links = settings.datasets.download.pip_find_links
    if links is not None:
        argv += ["--no-index", "--find-links", str(settings.path(links))]
    return argv


def _pip_error(entry: PypiSdistDataset, stderr: str, code: int) -> DatasetError:
    """One line out of pip's multi-line complaint; a hash mismatch is a security error."""
    got = re.search(r"Got\s+([0-9a-f]{64})", stderr)
    if "DO NOT MATCH THE HASHES" in stderr.upper() or got:
        seen = got.group(1) if got else "something else"
        return UnsafeSourceError(
            f"dataset {entry.name!r}: sha256 mismatch: expected {entry.sha256}, got {seen}")
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    why = lines[-1][:_PIP_OUTPUT_TAIL] if lines else f"exit {code}"
    return DatasetError(f"dataset {entry.name!r}: pip download failed: {why}")


async def _pip_download(entry: PypiSdistDataset, work: Path, settings: Settings) -> Path:
    req = work / "requirements.txt"
    req.write_text(f"{entry.source}=={entry.version} --hash=sha256:{entry.sha256}\n",
                   encoding="utf-8")
    dest = work / "dl"
    argv = _pip_argv(entry, req, dest, settings)
    with anyio.move_on_after(settings.datasets.download.total_timeout_s) as scope:
        proc = await anyio.run_process(argv, check=False, stdin=None)
    if scope.cancelled_caught:
        raise DatasetError(f"dataset {entry.name!r}: pip download timed out")
    if proc.returncode != 0:
        raise _pip_error(entry, proc.stderr.decode("utf-8", "replace"), proc.returncode)
    files = sorted(dest.iterdir()) if dest.is_dir() else []
    if len(files) != 1:
        raise DatasetError(f"dataset {entry.name!r}: pip produced {len(files)} files, expected 1")
    return files[0]


async def _stage_archive(entry: DatasetEntry, archive: Path, stage: Path,
                         settings: Settings) -> str:
    got = await anyio.to_thread.run_sync(file_sha256, archive)
    expected = getattr(entry, "sha256", "")
    if got != expected:
        raise UnsafeSourceError(
            f"dataset {entry.name!r}: sha256 mismatch: expected {expected}, got {got}"
        )
    await anyio.to_thread.run_sync(
        lambda: safe_extract(archive, stage / TREE_DIR, settings.datasets.extract,
                             what=f"dataset {entry.name!r}")
    )
    return got


async def _stage_sdist(entry: PypiSdistDataset, stage: Path, settings: Settings,
                       ) -> tuple[str, str, str | None]:
    work = stage / ".pip"
    work.mkdir()
    archive = await _pip_download(entry, work, settings)
    sha = await _stage_archive(entry, archive, stage, settings)
    size = archive.stat().st_size
    shutil.rmtree(work)
    return f"{entry.source}=={entry.version} ({archive.name}, {size} bytes)", entry.version, sha


async def _stage_http(entry: HttpArchiveDataset, stage: Path, settings: Settings,
                      ) -> tuple[str, str, str | None]:
    archive = stage / ".archive"
    try:
        await download(entry.source, archive, sha256=entry.sha256,
                       config=settings.datasets.download, allow_http=entry.allow_http,
                       label=f"fetch {entry.name}")
    except DatasetError as exc:
        raise type(exc)(f"dataset {entry.name!r}: {exc}") from None
    sha = await _stage_archive(entry, archive, stage, settings)
    archive.unlink()
    return entry.source, entry.version, sha


async def _stage(entry: DatasetEntry, stage: Path, settings: Settings,
                 ) -> tuple[str, str, str | None]:
    if isinstance(entry, LocalTreeDataset):
        return await _stage_local(entry, stage)
    if isinstance(entry, PypiSdistDataset):
        return await _stage_sdist(entry, stage, settings)
    return await _stage_http(entry, stage, settings)


def _swap_in(stage: Path, final: Path) -> None:
    """Replace ``final`` by ``stage`` with renames, so readers see old or new, never half."""
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
    stage.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


async def fetch_entry(settings: Settings, entry: DatasetEntry) -> RawMetadata:
    """Fetch one entry into ``data/raw/<name>/`` and return its metadata."""
    root = raw_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{entry.name}.partial-", dir=root))
    try:
        source, version, sha = await _stage(entry, stage, settings)
        digest, files, total = await anyio.to_thread.run_sync(dir_hash, stage / TREE_DIR)
        meta = RawMetadata(
            name=entry.name, kind=entry.kind, source=source, version=version,
            license=entry.license, sha256=sha, dir_hash=digest, files=files, total_bytes=total,
            archive_bytes=None, fetched_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        write_json_atomic(stage / METADATA_FILE, meta)
        _swap_in(stage, dataset_dir(settings, entry.name))
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    log.info("data.fetched", dataset=entry.name, files=files, bytes=total, dir_hash=digest)
    return meta
