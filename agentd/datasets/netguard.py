"""Which network addresses a download may connect to.

Every address a host name resolves to must be public: one private answer among public ones
is enough to refuse, because the resolver may hand that one to the connection. The
download then connects to an address checked here, never re-resolving the name, so a
DNS answer that changes between check and connect (rebinding) cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

import anyio

from agentd.errors import DatasetError, UnsafeSourceError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges not covered (or not reliably covered) by ``is_global`` in every Python version.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b:1::/48", "2002::/16")
)


@dataclass(frozen=True)
class Target:
    """A host name and the checked address to connect to."""

    host: str
    port: int
    address: IPAddress


def address_problem(addr: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why ``addr`` must not be contacted, or None when it is a public address."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return address_problem(addr.ipv4_mapped, allow_loopback=allow_loopback)
    if addr.is_loopback:
        return None if allow_loopback else "loopback"
    for label, hit in (("private", addr.is_private), ("link-local", addr.is_link_local),
                       ("multicast", addr.is_multicast), ("reserved", addr.is_reserved),
                       ("unspecified", addr.is_unspecified)):
        if hit:
            return label
    if any(addr in net for net in _EXTRA_BLOCKED):
        return "shared/special-purpose (CGNAT, benchmarking, 6to4)"
    return None if addr.is_global else "not globally routable"


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal address resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DatasetError(f"cannot resolve {host!r}: {exc}") from None
    addrs: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if addr not in addrs:
            addrs.append(addr)
    if not addrs:
        raise DatasetError(f"{host!r} resolved to no address")
    return addrs


async def checked_target(host: str, port: int, *, allow_loopback: bool) -> Target:
    """Resolve ``host`` and refuse unless every address is allowed."""
    addrs = await resolve(host, port)
    for addr in addrs:
        problem = address_problem(addr, allow_loopback=allow_loopback)
        if problem:
            raise UnsafeSourceError(f"host {host!r} resolves to a {problem} address ({addr})")
    return Target(host=host, port=port, address=addrs[0])
