"""The private-address guard: which hosts a fetch may reach, and the addresses it connects to.

A page on a public site can link or redirect anywhere, loopback and cloud metadata services
included, and its URLs are fetched unattended. A check of the name alone is not enough: DNS may
answer a public address to the check and a private one to the connection (rebinding). So
`_Resolver` resolves a host once, refuses it if any of its addresses is not public, and hands out
exactly the checked addresses for the connection to use (crawlers.transport), pinned for
RESOLVE_TTL_S. A name that does not resolve reaches nothing. `_HostGuard.check` runs before
every hop's request: names private by their spelling alone (.internal, .local, metadata...) are
refused before any lookup, which also keeps them from a proxy that would resolve them on its own
network. `is_private_address` is the same judgement for callers outside the fetcher (is a
source's configured host private?).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable

from .failures import _Failure

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that are private whatever DNS says (and that a proxy would resolve on its own network):
# loopback and mDNS names, cloud metadata services, the special-use internal suffixes.
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".corp")
_PRIVATE_NAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
RESOLVE_TTL_S = 30.0  # how long a checked resolution is used (and connected to) before asking again


def _public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a globally routable unicast address (IPv6 forms that embed an IPv4 address judged
    by that address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _public_ip(embedded)
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
        or not ip.is_global
    )


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _private_name(host: str, proxied: bool) -> bool:
    """A name that is private by its spelling alone. Behind a proxy a name without a dot is too:
    the proxy resolves it in its own search domain (intranet, metadata, printer...)."""
    name = host.rstrip(".").lower()
    if name in _PRIVATE_NAMES or name.endswith(_PRIVATE_SUFFIXES):
        return True
    return proxied and "." not in name and _ip_literal(name) is None


def _bad_address(host: str) -> str | None:
    """The first non-public address `host` is or resolves to, else None (also when it does not
    resolve: for `is_private_address`; the fetcher's own guard fails closed, see _Resolver)."""
    host = host.strip("[]")
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return None
        addresses = [ip for ip in (_ip_literal(str(info[4][0])) for info in infos) if ip is not None]
    for ip in addresses:
        if not _public_ip(ip):
            return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    return None


def is_private_address(host: str) -> bool:
    """True if `host` (a name or an IP literal) is or resolves to any non-public address.

    False for a name that does not resolve (a source whose configured host is briefly unresolvable
    must not be taken for a private one and lose the guard).
    """
    return _bad_address(host) is not None


class _Blocked(Exception):
    """A connection the guard refuses (`what`: the host, with the private address it resolved to)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"blocked: {what} is a private address")
        self.what = what


class _Resolver:
    """Resolve a host once, check every address it resolves to, and hand out exactly those
    addresses to connect to (DNS rebinding then cannot swap in a private one), for RESOLVE_TTL_S.

    A name that does not resolve raises socket.gaierror: nothing is connected to (fail closed).
    `public_ip` and `bad_address` replace the module's judgements (crawlers.fetch passes its own,
    looked up at each call: tests patch crawlers.fetch._public_ip and _bad_address to take the test
    server's 127.0.0.1 for a public address).
    """

    def __init__(
        self,
        ttl_s: float = RESOLVE_TTL_S,
        *,
        public_ip: Callable[[_IP], bool] | None = None,
        bad_address: Callable[[str], str | None] | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self._public_ip = public_ip or _public_ip
        self._bad_address = bad_address or _bad_address
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, tuple[tuple[int, str], ...]]] = {}

    def addresses(self, host: str) -> tuple[tuple[int, str], ...]:
        """(family, address) of every address of `host`, all public; _Blocked otherwise."""
        literal = _ip_literal(host)
        if literal is not None:
            bad = self._bad_address(host)
            if bad is not None:
                raise _Blocked(bad)
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            return ((family, host.strip("[]")),)
        name = host.rstrip(".").lower()
        if _private_name(name, proxied=False):
            raise _Blocked(host)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
        except UnicodeError as exc:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is no valid host name") from exc
        found: list[tuple[int, str]] = []
        for family, _, _, _, sockaddr in infos:
            ip = _ip_literal(str(sockaddr[0]))
            if ip is None or not self._public_ip(ip):
                raise _Blocked(f"{host} ({sockaddr[0]})")
            if (family, str(sockaddr[0])) not in found:
                found.append((family, str(sockaddr[0])))
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} does not resolve")
        with self._lock:
            self._cache[name] = (now + self.ttl_s, tuple(found))
        return tuple(found)


class _HostGuard:
    """The check every hop of a guarded fetch passes before its request, by the resolver its
    connections then use."""

    def __init__(self, resolver: _Resolver) -> None:
        self.resolver = resolver
        self._lock = threading.Lock()
        self._unresolved: dict[str, float] = {}  # behind a proxy: names that do not resolve here, until

    def check(self, host: str, proxied: bool) -> None:
        """_Failure("blocked") when `host` is private: by its name, as an address literal, or by
        any address it resolves to. Direct, the request then connects only to the addresses
        checked here (see _Resolver), and a name that does not resolve reaches nothing. Behind a
        proxy, which resolves names itself, a name that does not resolve here is left to it
        unless its spelling is private (.internal, .local, metadata, no dot...)."""
        if _private_name(host, proxied):
            raise _Failure("blocked", f"blocked: {host} is a private name")
        if proxied and self._unresolved.get(host, 0.0) > time.monotonic():
            return  # known not to resolve here: the proxy's to resolve
        try:
            self.resolver.addresses(host)
        except _Blocked as exc:
            raise _Failure("blocked", str(exc)) from None
        except OSError:
            # Direct: the request resolves again, fails closed, and is retried like any DNS failure.
            if proxied:
                with self._lock:
                    self._unresolved[host] = time.monotonic() + self.resolver.ttl_s
