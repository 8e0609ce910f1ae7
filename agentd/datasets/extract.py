"""Safe extraction of tar and zip archives.

Every member is checked before a byte is written: no absolute paths, no ``..``, no device
files or fifos, no symlink or hardlink pointing outside the target; links inside the
target are skipped (the corpus only needs regular files). Member count, total size and
compression ratio are capped — the ratio both from the headers and from the bytes really
written, because headers can lie. Extraction goes to a temporary sibling directory that is
renamed into place only when everything succeeded, so a failure leaves nothing behind.
"""

from __future__ import annotations

import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from agentd.config import ExtractConfig
from agentd.errors import UnsafeSourceError

_CHUNK = 1 << 16


@dataclass(frozen=True)
class ExtractStats:
    """What one extraction wrote."""

    files: int
    bytes: int
    skipped_links: int


@dataclass(frozen=True)
class _Member:
    name: str
    kind: str  # "file" | "dir" | "symlink" | "hardlink" | "special"
    size: int
    link: str = ""
    mode: int = 0o644


def _safe_name(raw: str, what: str) -> str:
    """The normalised relative POSIX path of a member, or UnsafeSourceError."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeSourceError(f"{what}: absolute path in archive: {raw!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeSourceError(f"{what}: path traversal in archive: {raw!r}")
    return "/".join(parts)


def _check_link(member: _Member, what: str) -> None:
    """Reject links that leave the target; in-target links are merely skipped."""
    target = member.link.replace("\\", "/")
    if member.kind == "symlink":
        base = posixpath.dirname(member.name)
        joined = posixpath.normpath(posixpath.join(base, target))
    else:
        joined = posixpath.normpath(target)
    if target.startswith("/") or joined == ".." or joined.startswith("../"):
        raise UnsafeSourceError(
            f"{what}: {member.kind} {member.name!r} points outside the target: {member.link!r}"
        )


def _tar_members(tf: tarfile.TarFile) -> Iterator[tuple[_Member, tarfile.TarInfo]]:
    for info in tf:
        if info.isdir():
            kind = "dir"
        elif info.isreg():
            kind = "file"
        elif info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hardlink"
        else:
            kind = "special"
        yield _Member(info.name, kind, info.size, info.linkname, info.mode), info


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symlink"
    if info.is_dir():
        return "dir"
    if stat.S_IFMT(mode) in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
        return "special"
    return "file"


class _Writer:
    """Writes checked members under ``root`` while enforcing the caps on real bytes."""

    def __init__(self, root: Path, limits: ExtractConfig, archive_bytes: int, what: str) -> None:
        self.root = root
        self.limits = limits
        self.archive_bytes = max(archive_bytes, 1)
        self.what = what
        self.files = 0
        self.bytes = 0
        self.members = 0
        self.skipped_links = 0

    def admit(self, member: _Member) -> str | None:
        """Validate one member; return its safe name if it should be written."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise UnsafeSourceError(f"{self.what}: more than {self.limits.max_members} members")
        name = _safe_name(member.name, self.what)
        if member.kind == "special":
            raise UnsafeSourceError(f"{self.what}: device or fifo in archive: {member.name!r}")
        if member.kind in ("symlink", "hardlink"):
            _check_link(_Member(name, member.kind, 0, member.link), self.what)
            self.skipped_links += 1
            return None
        if not name:
            return None
        self._count(member.size, member.name)
        return name

    def _count(self, n: int, name: str) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_total_bytes:
            raise UnsafeSourceError(
                f"{self.what}: archive expands beyond {self.limits.max_total_bytes} bytes "
                f"(at {name!r})"
            )
        if self.bytes / self.archive_bytes > self.limits.max_ratio:
            raise UnsafeSourceError(
                f"{self.what}: compression ratio over {self.limits.max_ratio:g} "
                f"(at {name!r}): an archive bomb?"
            )

    def write(self, name: str, src: IO[bytes], declared: int, mode: int) -> None:
        dest = self.root / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.is_dir():
            raise UnsafeSourceError(f"{self.what}: member collides with a directory: {name!r}")
        written = 0
        with dest.open("wb") as out:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > declared:  # the header lied about the size
                    self._count(written - declared, name)
                    declared = written
                out.write(chunk)
        dest.chmod(0o755 if mode & 0o111 else 0o644)
        self.files += 1

    def mkdir(self, name: str) -> None:
        (self.root / name).mkdir(parents=True, exist_ok=True)


def _extract_tar(archive: Path, w: _Writer) -> None:
    with tarfile.open(archive, "r:*") as tf:
        for member, info in _tar_members(tf):
            name = w.admit(member)
            if name is None:
                continue
            if member.kind == "dir":
                w.mkdir(name)
                continue
            src = tf.extractfile(info)
            if src is None:
                raise UnsafeSourceError(f"{w.what}: unreadable member {member.name!r}")
            with src:
                w.write(name, src, member.size, member.mode)


def _extract_zip(archive: Path, w: _Writer) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            kind = _zip_kind(info)
            link = zf.read(info).decode("utf-8", "replace") if kind == "symlink" else ""
            member = _Member(info.filename, kind, info.file_size, link, info.external_attr >> 16)
            name = w.admit(member)
            if name is None:
                continue
            if kind == "dir":
                w.mkdir(name)
                continue
            with zf.open(info) as src:
                w.write(name, src, info.file_size, member.mode)


def archive_format(archive: Path) -> str:
    """``"tar"`` or ``"zip"``; anything else is a DatasetError (via UnsafeSourceError)."""
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise UnsafeSourceError(f"{archive.name}: not a tar or zip archive")


def safe_extract(archive: Path, dest: Path, limits: ExtractConfig, *, what: str) -> ExtractStats:
    """Extract ``archive`` into the new directory ``dest`` (which must not exist).

    ``what`` names the catalog entry in error messages. On any failure the partial
    extraction is removed and ``dest`` is left absent.
    """
    if dest.exists():
        raise UnsafeSourceError(f"{what}: extraction target already exists: {dest}")
    fmt = archive_format(archive)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        w = _Writer(tmp, limits, archive.stat().st_size, what)
        try:
            (_extract_zip if fmt == "zip" else _extract_tar)(archive, w)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise UnsafeSourceError(f"{what}: corrupt archive: {exc}") from None
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExtractStats(files=w.files, bytes=w.bytes, skipped_links=w.skipped_links)
