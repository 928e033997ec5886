"""Which URLs the guarded client may fetch: syntax, and the addresses a host resolves to (see __init__)."""

from __future__ import annotations

import ipaddress
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from apps.core.errors import ApplicationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
SCHEMES = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))


class FetchError(ApplicationError):
    """The URL cannot be fetched; the message says why. Policy refusals start with "refused:"."""

    code = "fetch_failed"


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    timeout: float
    deadline: float
    max_redirects: int
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls) -> FetchLimits:
        return cls(
            max_bytes=int(getattr(settings, "FETCH_MAX_BYTES", settings.IMPORT_MAX_BYTES)),
            timeout=float(getattr(settings, "FETCH_TIMEOUT_SECONDS", 30)),
            deadline=float(getattr(settings, "FETCH_DEADLINE_SECONDS", 15 * 60)),
            max_redirects=int(getattr(settings, "FETCH_MAX_REDIRECTS", 5)),
            allowed_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in getattr(settings, "FETCH_ALLOWED_NETWORKS", [])
            ),
        )


@dataclass(frozen=True)
class Target:
    """A URL that passed the syntax checks, split into what a connection needs."""

    url: str
    scheme: str
    host: str  # lower-case, IDNA-encoded; an IPv6 literal without brackets
    port: int
    path: str  # path and query, as sent in the request line
    literal: IPAddress | None  # the host, when it is an IP address


def target_of(url: str) -> Target:
    """Check a URL's syntax: scheme, user info, host and port. No network access."""
    if len(url) > MAX_URL_LENGTH:
        raise FetchError(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise FetchError("The URL contains spaces, control characters or backslashes.")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f"{scheme}:" if scheme else "no scheme"
        raise FetchError(f"Only http and https URLs can be fetched (this one has {shown}).")
    if "@" in parts.netloc:
        raise FetchError("URLs with a user name or password are not accepted.")
    try:
        port = parts.port or SCHEMES[scheme]
    except ValueError:
        raise FetchError("The URL's port is not a number between 1 and 65535.") from None
    host, literal = _host_of(parts.netloc, parts.hostname or "")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, literal=literal)


def _host_of(netloc: str, hostname: str) -> tuple[str, IPAddress | None]:
    if not hostname:
        raise FetchError("The URL has no host.")
    if netloc.startswith("["):
        if "%" in hostname:
            raise FetchError("IPv6 zone identifiers are not accepted in URLs.")
        try:
            return hostname, ipaddress.IPv6Address(hostname)
        except ValueError:
            raise FetchError(f"{hostname} is not an IPv6 address.") from None
    try:
        host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise FetchError(f"{hostname!r} is not a valid host name.") from None
    if _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1]):
        return host, _canonical_ipv4(host)
    if not _HOST_NAME.match(host) or len(host) > 253:
        raise FetchError(f"{hostname!r} is not a valid host name.")
    return host, None


def _canonical_ipv4(host: str) -> ipaddress.IPv4Address:
    """A host ending in a number is an IPv4 address, accepted only as a.b.c.d (no octal, hex or integer forms)."""
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        raise FetchError(
            f"refused: {host} is not a canonical IP address (resolvers read such forms differently); write a.b.c.d."
        ) from None


def address_refusal(address: IPAddress) -> str | None:
    """Why a fetch may not connect to `address` ("a loopback address"), or None for a global one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = address_refusal(embedded)
            return f"an IPv6 form of {embedded}, {inner}" if inner else None
    kinds: tuple[tuple[str, bool], ...] = (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a shared (carrier-grade NAT)", address in _CGNAT),
        ("a private", any(address in network for network in _PRIVATE)),
        ("a reserved", address.is_reserved),
        ("a special-purpose", not address.is_global),
        ("a non-unicast", address.version == 6 and address not in _GLOBAL_UNICAST_V6),
    )
    return next((f"{kind} address" for kind, applies in kinds if applies), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _allowed(address: IPAddress, limits: FetchLimits) -> bool:
    return any(address.version == n.version and address in n for n in limits.allowed_networks)


def checked_addresses(target: Target, limits: FetchLimits, timeout: float) -> list[IPAddress]:
    """The target's addresses, all of them checked; refused if any one is not global (nor allow-listed)."""
    addresses = [target.literal] if target.literal is not None else _resolve(target, timeout)
    for address in addresses:
        reason = None if _allowed(address, limits) else address_refusal(address)
        if reason and target.literal is not None:
            raise FetchError(f"refused: {target.host} is {reason}.")
        if reason:
            raise FetchError(f"refused: {target.host} resolves to {address}, {reason}.")
    return addresses


def _resolve(target: Target, timeout: float) -> list[IPAddress]:
    """getaddrinfo has no timeout of its own; a worker thread gives it one."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(socket.getaddrinfo, target.host, target.port, type=socket.SOCK_STREAM)
    pool.shutdown(wait=False)
    try:
        infos = future.result(timeout=timeout)
    except FutureTimeout:
        raise FetchError(f"The host {target.host} did not resolve within {timeout:g} s.") from None
    except (OSError, UnicodeError):
        raise FetchError(f"The host {target.host} does not resolve.") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    if not addresses:
        raise FetchError(f"The host {target.host} does not resolve.")
    return addresses


def check_url(url: str, *, limits: FetchLimits | None = None, resolve_timeout: float = 5.0) -> Target:
    """The cheap check for a request: syntax, and that the host resolves to addresses we may reach."""
    limits = limits or FetchLimits.from_settings()
    target = target_of(url)
    checked_addresses(target, limits, timeout=min(resolve_timeout, limits.timeout))
    return target
