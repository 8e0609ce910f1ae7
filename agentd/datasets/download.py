"""Secure download of ``http_archive`` sources.

The rules (issue 4): https only unless the entry allows http; every address the host
resolves to is public (see ``netguard``), checked again for every redirect, which is
followed by hand and bounded; the connection goes to the checked address with the real
host name in ``Host`` and TLS SNI (certificates are still verified against the name); one
total deadline; a size cap on the declared and the received length; the SHA-256 is
verified before the caller unpacks anything. The file is written next to its destination
and renamed into place only once it is complete and verified.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import anyio
import httpx

from agentd.config import DownloadConfig
from agentd.datasets.netguard import Target, checked_target
from agentd.errors import DatasetError, UnsafeSourceError
from agentd.logging import get_logger
from agentd.progress import Progress

log = get_logger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Downloaded:
    """A verified file on disk."""

    path: Path
    sha256: str
    bytes: int
    final_url: str


def _check_scheme(url: str, *, allow_http: bool) -> tuple[str, str, int]:
    parts = urlsplit(url)
    allowed = {"https", "http"} if allow_http else {"https"}
    if parts.scheme not in allowed:
        raise UnsafeSourceError(f"scheme {parts.scheme or '(none)'!r} not allowed in {url!r}")
    if not parts.hostname:
        raise UnsafeSourceError(f"no host in {url!r}")
    if parts.username or parts.password:
        raise UnsafeSourceError(f"credentials in URL are not allowed: {parts.hostname}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port


def _address_url(url: str, target: Target) -> str:
    """``url`` with its host replaced by the checked address."""
    parts = urlsplit(url)
    addr = target.address
    host = f"[{addr}]" if isinstance(addr, ipaddress.IPv6Address) else str(addr)
    path = parts.path or "/"
    return urlunsplit((parts.scheme, f"{host}:{target.port}", path, parts.query, ""))


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1]


class _Fetcher:
    def __init__(self, client: httpx.AsyncClient, config: DownloadConfig, *, allow_http: bool,
                 progress_label: str) -> None:
        self.client = client
        self.config = config
        self.allow_http = allow_http
        self.label = progress_label

    async def _open(self, url: str) -> httpx.Response:
        _scheme, host, port = _check_scheme(url, allow_http=self.allow_http)
        target = await checked_target(
            host, port, allow_loopback=self.config.allow_loopback_for_tests
        )
        request = self.client.build_request(
            "GET", _address_url(url, target),
            headers={"Host": _host_header(url), "Accept-Encoding": "identity"},
            extensions={"sni_hostname": host},
        )
        try:
            return await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise DatasetError(f"cannot fetch {url!r}: {type(exc).__name__}: {exc}") from None

    async def open_following(self, url: str) -> tuple[httpx.Response, str]:
        """GET ``url``, following at most ``max_redirects`` redirects, each re-checked."""
        for _hop in range(self.config.max_redirects + 1):
            response = await self._open(url)
            if response.status_code not in _REDIRECTS:
                return response, url
            location = response.headers.get("location", "")
            await response.aclose()
            if not location:
                raise DatasetError(f"redirect without Location from {url!r}")
            url = urljoin(url, location)
            log.info("download.redirect", to=url)
        raise UnsafeSourceError(f"more than {self.config.max_redirects} redirects")

    async def stream_to(self, response: httpx.Response, url: str, fh: anyio.AsyncFile[bytes],
                        ) -> tuple[str, int]:
        if response.status_code != 200:
            raise DatasetError(f"HTTP {response.status_code} from {url!r}")
        cap = self.config.max_bytes
        declared = int(response.headers.get("content-length") or 0)
        if declared > cap:
            raise UnsafeSourceError(f"{url!r} declares {declared} bytes, over the {cap} cap")
        digest, size = hashlib.sha256(), 0
        bar = Progress(self.label, total=declared or None, unit="B")
        try:
            async for chunk in response.aiter_raw(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise UnsafeSourceError(f"{url!r} sent more than the {cap}-byte cap")
                digest.update(chunk)
                await fh.write(chunk)
                bar.advance(len(chunk))
        except httpx.HTTPError as exc:
            raise DatasetError(f"download of {url!r} broke off: {exc}") from None
        finally:
            bar.close()
        return digest.hexdigest(), size


async def download(url: str, dest: Path, *, sha256: str, config: DownloadConfig,
                   allow_http: bool = False, label: str = "download") -> Downloaded:
    """Fetch ``url`` to ``dest`` under every rule above; raise on any violation.

    Nothing is left at ``dest`` (or beside it) unless the checksum matched.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = anyio.Path(tmp_name)
    try:
        got, size, final = await _download_to(url, tmp, config, allow_http, label)
        if got != sha256:
            raise UnsafeSourceError(f"sha256 mismatch for {url!r}: expected {sha256}, got {got}")
        await tmp.replace(dest)
    except TimeoutError:
        await tmp.unlink(missing_ok=True)
        raise DatasetError(
            f"download of {url!r} exceeded {config.total_timeout_s:g}s total"
        ) from None
    except BaseException:
        await tmp.unlink(missing_ok=True)
        raise
    return Downloaded(path=dest, sha256=got, bytes=size, final_url=final)


async def _download_to(url: str, tmp: anyio.Path, config: DownloadConfig, allow_http: bool,
                       label: str) -> tuple[str, int, str]:
    timeout = httpx.Timeout(config.total_timeout_s, connect=min(30.0, config.total_timeout_s))
    with anyio.fail_after(config.total_timeout_s):
        # trust_env=False: a proxy from the environment would connect to the name, not to
        # the address we checked.
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                     trust_env=False) as client:
            fetcher = _Fetcher(client, config, allow_http=allow_http, progress_label=label)
            response, final = await fetcher.open_following(url)
            try:
                async with await anyio.open_file(tmp, "wb") as fh:
                    digest, size = await fetcher.stream_to(response, final, fh)
            finally:
                await response.aclose()
    return digest, size, final
