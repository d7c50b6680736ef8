"""SSRF guard for user-supplied URLs: which schemes and which IP addresses Newsloom may connect to.

The decision is made on the IP address actually connected to, not on the URL's host name: the
HTTP client's network backend (``GuardedBackend``) resolves every host itself, refuses the
addresses ``refused_rule`` names, and connects to an allowed address it just resolved (the address
is pinned, so a DNS answer that changes between check and connect, "DNS rebinding", cannot slip
through). httpx calls the backend for every new connection, so every redirect hop is judged too.

Refused (unless ``allow_private_networks``): loopback, private (RFC 1918, RFC 4193 unique-local),
link-local (RFC 3927, RFC 4291), shared address space (RFC 6598), multicast, unspecified,
reserved and documentation ranges, and the cloud metadata addresses. IPv4-mapped/compatible
IPv6 addresses are judged as the IPv4 address they carry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
from httpcore._utils import is_socket_readable  # the pool's own test of an idle connection

from service.errors import InputError

ALLOWED_SCHEMES = ("http", "https")

# Addresses of cloud instance-metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")

Resolver = Callable[[str, int], Awaitable[list[tuple[str, int]]]]
"""``async resolver(host, port) -> [(ip, port), …]``: the addresses to try for ``host:port``."""


class BlockedAddress(InputError):
    """A URL or connection the SSRF guard refuses. ``rule`` names the rule (``loopback``,
    ``private``, ``scheme``, …); the message says which host and address."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule

    @property
    def detail(self) -> str:
        return f"{self} [rule: {self.rule}]"

    @property
    def extensions(self) -> dict[str, str]:
        return {"rule": self.rule}


def refused_rule(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """The name of the rule that refuses ``ip``, or None if it is a public unicast address.

    Rules, in the order tried: ``cloud-metadata``, ``unspecified``, ``loopback``, ``link-local``,
    ``multicast``, ``shared-address-space``, ``unique-local``, ``private``, ``reserved``.
    """
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return refused_rule(mapped)
        if address.packed[:12] == bytes(12) and int(address) > 1:  # IPv4-compatible ::a.b.c.d
            return refused_rule(ipaddress.IPv4Address(address.packed[12:]))
    if address in METADATA_ADDRESSES:
        return "cloud-metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared-address-space"
    if isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"):
        return "unique-local"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def check_scheme(url: str) -> None:
    """Raise ``BlockedAddress`` (rule ``scheme``) unless ``url`` is absolute http(s) with a host."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise BlockedAddress(f"refused {url!r}: only absolute http and https URLs are fetched", "scheme")


async def system_resolver(host: str, port: int) -> list[tuple[str, int]]:
    """Resolve ``host`` with the operating system's resolver (``getaddrinfo``, off the event loop).
    Raises ``OSError`` (``socket.gaierror``) when it cannot, a name the DNS cannot carry included."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:  # IDNA: an empty label or one over 63 characters
        raise socket.gaierror(socket.EAI_NONAME, f"not a valid host name: {exc}") from exc
    seen: list[tuple[str, int]] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        pair = (str(sockaddr[0]).split("%")[0], int(sockaddr[1]))
        if pair not in seen:
            seen.append(pair)
    return seen


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def allowed_addresses(
    host: str, addresses: Iterable[tuple[str, int]], allow_private: bool, trusted: Iterable[tuple[str, int]] = ()
) -> list[tuple[str, int]]:
    """The addresses of ``host`` the guard allows; raises ``BlockedAddress`` naming the rule when
    every address is refused. ``trusted`` (ip, port) pairs are always allowed."""
    addresses = list(addresses)
    if allow_private:
        return addresses
    trusted = set(trusted)
    allowed: list[tuple[str, int]] = []
    refused: list[tuple[str, int, str]] = []
    for ip, port in addresses:
        rule = None if (ip, port) in trusted else refused_rule(ip)
        if rule:
            refused.append((ip, port, rule))
        else:
            allowed.append((ip, port))
    if not allowed:
        if not refused:
            raise BlockedAddress(f"refused host {host!r}: it resolves to no address", "unresolvable")
        ip, _port, rule = refused[0]
        raise BlockedAddress(
            f"refused host {host!r}: address {ip} is {rule} (SSRF guard; "
            "NEWSLOOM_ALLOW_PRIVATE_NETWORKS=true allows it for local development)", rule
        )
    return allowed


async def check_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
    """Check a user-supplied URL before accepting it: scheme, then every address its host resolves to.

    Raises ``BlockedAddress`` (scheme or address rule) and ``OSError`` when the name does not resolve.
    A URL that passes can still be refused at connect time if its DNS answer changes.
    """
    check_scheme(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    if allow_private:
        return
    literal = _literal(host)
    if literal is not None:
        allowed_addresses(host, [(str(literal), port)], allow_private)
        return
    allowed_addresses(host, await resolver(host, port), allow_private)


class _Stream(httpcore.AsyncNetworkStream):
    """An AnyIO network stream whose socket is looked up once. The connection pool asks an idle
    connection whether its socket became readable (closed by the server) before handing it to a
    request, and every idle connection at each sweep (``fetcher._Pool``; httpcore's own pool asked
    them all at every request), and AnyIO answers each look-up by building a dict of every
    attribute of the socket, its peer address included (a system call): with 32 connections kept
    and httpcore's pool, that was about a sixth of a feed request's CPU. The answer is the same
    (httpcore's own ``is_socket_readable`` on the same socket)."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - httpcore's signature
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109 - httpcore's signature
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:  # noqa: ASYNC109 - httpcore's signature
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_socket_readable(self._socket)
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves each host with ``resolver``, drops refused
    addresses, and connects to the first allowed address that answers.

    Raises ``BlockedAddress`` from ``connect_tcp`` when every address is refused; httpx passes it
    through unchanged. Unix sockets are refused outright. ``trusted`` lists exact ``(ip, port)``
    pairs exempt from the guard (a local forward proxy; the tests' server).
    """

    def __init__(
        self, *, allow_private: bool, resolver: Resolver = system_resolver, trusted: Iterable[tuple[str, int]] = ()
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.trusted = frozenset(trusted)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = _literal(host)
        try:
            async with asyncio.timeout(timeout):
                candidates = [(str(literal), port)] if literal is not None else await self.resolver(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = allowed_addresses(host, candidates, self.allow_private, self.trusted)
        last: Exception | None = None
        for ip, target_port in addresses:
            try:
                return _Stream(await self._inner.connect_tcp(ip, target_port, timeout, local_address, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None):  # noqa: ASYNC109 - httpcore's signature
        raise BlockedAddress(f"refused unix socket {path!r}", "scheme")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
