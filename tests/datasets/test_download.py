"""Secure download against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agentd.config import DownloadConfig
from agentd.datasets.download import download
from agentd.datasets.netguard import address_problem
from agentd.errors import DatasetError, UnsafeSourceError

BODY = b"archive bytes " * 100
SHA = hashlib.sha256(BODY).hexdigest()
LOOPBACK_OK = DownloadConfig(allow_loopback_for_tests=True, total_timeout_s=10)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep pytest output quiet
        pass

    def do_GET(self) -> None:
        routes = {
            "/file": (200, {}, BODY),
            "/to-private": (302, {"Location": "http://10.1.2.3/file"}, b""),
            "/to-metadata": (302, {"Location": "http://169.254.169.254/latest"}, b""),
            "/to-file": (302, {"Location": "/file"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/huge-declared": (200, {"Content-Length": str(10 << 20)}, b""),
        }
        status, headers, body = routes.get(self.path, (404, {}, b"nope"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _left(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


class TestDownload:
    async def test_fetches_and_verifies(self, server: str, tmp_path: Path) -> None:
        """A matching sha256 leaves the file at its destination."""
        got = await download(f"{server}/file", tmp_path / "a.tgz", sha256=SHA,
                             config=LOOPBACK_OK, allow_http=True)
        assert (tmp_path / "a.tgz").read_bytes() == BODY
        assert got.bytes == len(BODY)

    async def test_follows_a_safe_redirect(self, server: str, tmp_path: Path) -> None:
        """A redirect to an allowed address is followed and re-checked."""
        got = await download(f"{server}/to-file", tmp_path / "a", sha256=SHA,
                             config=LOOPBACK_OK, allow_http=True)
        assert got.final_url.endswith("/file")

    async def test_wrong_hash_leaves_nothing(self, server: str, tmp_path: Path) -> None:
        """A checksum mismatch is an UnsafeSourceError and no file remains."""
        with pytest.raises(UnsafeSourceError, match="sha256 mismatch"):
            await download(f"{server}/file", tmp_path / "a", sha256="0" * 64,
                           config=LOOPBACK_OK, allow_http=True)
        assert _left(tmp_path) == []

    async def test_loopback_refused_without_the_test_setting(self, server: str,
                                                             tmp_path: Path) -> None:
        """Loopback is a private address unless the test-only switch is on."""
        with pytest.raises(UnsafeSourceError, match="loopback"):
            await download(f"{server}/file", tmp_path / "a", sha256=SHA,
                           config=DownloadConfig(), allow_http=True)
        assert _left(tmp_path) == []

    @pytest.mark.parametrize("route", ["/to-private", "/to-metadata"])
    async def test_redirect_to_private_address_refused(self, server: str, tmp_path: Path,
                                                       route: str) -> None:
        """The target of every redirect is checked before any connection to it."""
        with pytest.raises(UnsafeSourceError, match=r"private|link-local"):
            await download(f"{server}{route}", tmp_path / "a", sha256=SHA,
                           config=LOOPBACK_OK, allow_http=True)
        assert _left(tmp_path) == []

    async def test_redirect_loop_is_bounded(self, server: str, tmp_path: Path) -> None:
        """Redirects are followed at most max_redirects times."""
        with pytest.raises(UnsafeSourceError, match="redirects"):
            await download(f"{server}/loop", tmp_path / "a", sha256=SHA,
                           config=LOOPBACK_OK, allow_http=True)

    async def test_http_needs_allow_http(self, server: str, tmp_path: Path) -> None:
        """Only https is allowed unless the entry says otherwise; file:// never."""
        with pytest.raises(UnsafeSourceError, match="scheme 'http'"):
            await download(f"{server}/file", tmp_path / "a", sha256=SHA, config=LOOPBACK_OK)
        with pytest.raises(UnsafeSourceError, match="scheme 'file'"):
            await download("file:///etc/passwd", tmp_path / "a", sha256=SHA,
                           config=LOOPBACK_OK, allow_http=True)

    async def test_size_cap(self, server: str, tmp_path: Path) -> None:
        """Declared and received sizes over the cap are refused."""
        small = DownloadConfig(allow_loopback_for_tests=True, max_bytes=1024)
        with pytest.raises(UnsafeSourceError, match="cap"):
            await download(f"{server}/huge-declared", tmp_path / "a", sha256=SHA, config=small,
                           allow_http=True)
        with pytest.raises(UnsafeSourceError, match="cap"):
            await download(f"{server}/file", tmp_path / "b", sha256=SHA, config=small,
                           allow_http=True)
        assert _left(tmp_path) == []

    async def test_unreachable_host(self, tmp_path: Path) -> None:
        """A closed port is a DatasetError with the URL, not a traceback."""
        with pytest.raises(DatasetError, match="cannot fetch"):
            await download("http://127.0.0.1:9/file", tmp_path / "a", sha256=SHA,
                           config=LOOPBACK_OK, allow_http=True)

    async def test_private_literal_host(self, tmp_path: Path) -> None:
        """A private literal address is refused without connecting."""
        with pytest.raises(UnsafeSourceError, match="private"):
            await download("https://192.168.1.10/x.tgz", tmp_path / "a", sha256=SHA,
                           config=LOOPBACK_OK)


class TestAddressPolicy:
    @pytest.mark.parametrize("addr", [
        "10.0.0.1", "172.16.5.4", "192.168.0.1", "169.254.169.254", "100.64.0.1", "224.0.0.1",
        "240.0.0.1", "0.0.0.0", "127.0.0.1", "::1", "fc00::1", "fe80::1", "ff02::1",
        "::ffff:10.0.0.1", "2002:a00:1::",
    ])
    def test_non_public_addresses_have_a_problem(self, addr: str) -> None:
        """Private, link-local, CGNAT, multicast, reserved and mapped forms are refused."""
        assert address_problem(ipaddress.ip_address(addr), allow_loopback=False)

    @pytest.mark.parametrize("addr", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    def test_public_addresses_pass(self, addr: str) -> None:
        """Global unicast addresses are allowed."""
        assert address_problem(ipaddress.ip_address(addr), allow_loopback=False) is None
