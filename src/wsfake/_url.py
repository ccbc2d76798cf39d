"""WebSocket URLs and the patterns that routes match them with."""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union
from urllib.parse import urlsplit

from ._exceptions import InvalidURL, PatternError

DEFAULT_PORTS = {"ws": 80, "wss": 443}

#: Names of the loopback interface: a server on loopback answers all of them, so routes treat them as one host.
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def normalize_host(host: str) -> str:
    """A host as clients send it: lower case, IPv6 without brackets, non-ASCII names in IDNA (``xn--``) form."""
    host = host.strip("[]").lower().rstrip(".") or host
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def same_host(a: str, b: str) -> bool:
    """True if ``a`` and ``b`` (normalized) reach the same server."""
    return a == b or (a in LOOPBACK and b in LOOPBACK)


@dataclass(frozen=True)
class URL:
    """A parsed ``ws://`` or ``wss://`` URL, with the default port filled in."""

    scheme: str
    host: str
    port: int
    path: str = "/"
    query: str = ""

    @classmethod
    def parse(cls, url: str) -> URL:
        """Parse ``url``; raise :class:`InvalidURL` if it is not a WebSocket URL."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(f"{url!r} is not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise InvalidURL(f"{url!r} is not a WebSocket URL: the scheme must be ws:// or wss://")
        if not parts.hostname:
            raise InvalidURL(f"{url!r} has no host")
        return cls(
            scheme=scheme,
            host=normalize_host(parts.hostname),
            port=DEFAULT_PORTS[scheme] if port is None else port,
            path=parts.path or "/",
            query=parts.query,
        )

    @property
    def secure(self) -> bool:
        """True for ``wss://``."""
        return self.scheme == "wss"

    @property
    def resource(self) -> str:
        """The request target: path plus query string."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def authority(self) -> str:
        """``host:port``, with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.resource}"


PatternLike = Union[str, "re.Pattern[str]", Callable[[URL], bool], "Pattern"]


class Pattern:
    """Decides whether a route serves a URL.

    Built from a URL with optional ``*`` wildcards (``ws://localhost:*/ws/*``), a
    compiled regex (matched from the start of the normalised URL, which always
    carries its port), or a predicate taking a :class:`URL`.
    """

    def __init__(self, spec: PatternLike) -> None:
        self.spec = spec
        self._match: Callable[[URL], bool]
        #: For URL strings: what the pattern is made of (scheme, host, ports, path, query), for covers() and shadows().
        self._parts: _Parts | None = None
        if isinstance(spec, Pattern):
            self._match = spec._match
            self._parts = spec._parts
            self.spec = spec.spec
        elif isinstance(spec, str):
            self._parts = _parse_url_pattern(spec)
            self._match = self._parts.match
        elif isinstance(spec, re.Pattern):
            regex = spec
            self._match = lambda url: regex.match(str(url)) is not None
        elif callable(spec):
            self._match = spec
        else:
            raise PatternError(
                f"a route pattern must be a URL string, a compiled regex or a predicate "
                f"taking a wsfake.URL, not {type(spec).__name__}"
            )

    def matches(self, url: URL) -> bool:
        """True if ``url`` is served by this pattern."""
        return bool(self._match(url))

    def covers(self, scheme: str | None, host: str, port: int) -> bool | None:
        """Whether this pattern matches some URL on ``host:port`` (any path); None if it cannot tell.

        ``scheme`` None means either. URL strings always know; regexes and
        predicates are asked about the root path only, and a "no" from them is
        uncertain (None).
        """
        host = normalize_host(host)
        if self._parts is not None:
            return self._parts.covers(scheme, host, port)
        schemes = ("ws", "wss") if scheme is None else (scheme,)
        for candidate in schemes:
            try:
                if self._match(URL(candidate, host, port, "/", "")):
                    return True
            except Exception:
                return None
        return None

    def names(self, host: str, port: int) -> bool:
        """True if this is a URL string that names ``host:port`` literally (no wildcard in host or port)."""
        parts = self._parts
        return (
            parts is not None
            and "*" not in parts.host
            and parts.ports is not None
            and port in parts.ports
            and parts.host_matches(normalize_host(host))
        )

    def shadows(self, other: Pattern) -> bool:
        """True if every URL ``other`` matches is matched by this pattern too (as far as can be told)."""
        if self._parts is None or other._parts is None:
            return False
        return self._parts.shadows(other._parts)

    def __repr__(self) -> str:
        if isinstance(self.spec, str):
            return self.spec
        if isinstance(self.spec, re.Pattern):
            return f"re.compile({self.spec.pattern!r})"
        return getattr(self.spec, "__qualname__", repr(self.spec))


class AnyURL(Pattern):
    """The pattern that matches every ws:// and wss:// URL."""

    def __init__(self) -> None:
        super().__init__(lambda url: True)

    def covers(self, scheme: str | None, host: str, port: int) -> bool:
        return True

    def names(self, host: str, port: int) -> bool:
        return False

    def shadows(self, other: Pattern) -> bool:
        return True

    def __repr__(self) -> str:
        return "ws(s)://*"


_URL_PATTERN = re.compile(
    r"^(?P<scheme>[A-Za-z*]+)://(?P<host>\[[^\]]*\]|[^/:?#]*)(?::(?P<port>[^/?#]*))?"
    r"(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?$"
)


def _glob(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", text)))


class _Parts:
    """A URL pattern string, parsed."""

    def __init__(self, scheme: str, host: str, ports: set[int] | None, path: str, query: str | None) -> None:
        self.scheme = scheme
        self.host = host
        self.ports = ports
        self.path = path
        self.query = query
        self.host_re = _glob(host)
        self.path_re = _glob(path)
        self.query_re = None if query is None else _glob(query)
        self.loopback = host in LOOPBACK

    def host_matches(self, host: str) -> bool:
        if self.loopback:
            return host in LOOPBACK
        return self.host_re.fullmatch(host) is not None

    def match(self, url: URL) -> bool:
        return (
            (self.scheme == "*" or url.scheme == self.scheme)
            and (self.ports is None or url.port in self.ports)
            and self.host_matches(url.host)
            and self.path_re.fullmatch(url.path) is not None
            and (self.query_re is None or self.query_re.fullmatch(url.query) is not None)
        )

    def covers(self, scheme: str | None, host: str, port: int) -> bool:
        return (
            (scheme is None or self.scheme in ("*", scheme))
            and (self.ports is None or port in self.ports)
            and self.host_matches(host)
        )

    def shadows(self, other: _Parts) -> bool:
        if self.scheme != "*" and self.scheme != other.scheme:
            return False
        if self.ports is not None and (other.ports is None or not other.ports <= self.ports):
            return False
        if "*" in other.host:
            if self.host != "*" and self.host != other.host:
                return False
        elif not self.host_matches(other.host):
            return False
        if "*" in other.path:
            if self.path not in ("*", "/*", other.path):
                return False
        elif self.path_re.fullmatch(other.path) is None:
            return False
        if self.query is None:
            return True
        if other.query is None:
            return self.query == "*"
        return self.query == other.query or (
            "*" not in other.query and self.query_re is not None and self.query_re.fullmatch(other.query) is not None
        )


def _parse_url_pattern(spec: str) -> _Parts:
    m = _URL_PATTERN.match(spec)
    hint = "write it as ws://host:port/path, e.g. 'ws://localhost:8000/ws/*'"
    if m is None:
        raise PatternError(f"malformed route pattern {spec!r}: {hint}")
    scheme = m["scheme"].lower()
    if scheme not in ("ws", "wss", "*"):
        raise PatternError(f"route pattern {spec!r} has scheme {scheme!r}: only ws, wss or * can be routed")
    host = m["host"].strip("[]").lower()
    if not host:
        raise PatternError(f"route pattern {spec!r} has no host: {hint}")
    if "*" not in host:
        host = normalize_host(host)
    port_text = m["port"]
    ports: set[int] | None
    if port_text == "*":
        ports = None
    elif port_text is None or port_text == "":
        ports = {DEFAULT_PORTS[scheme]} if scheme != "*" else set(DEFAULT_PORTS.values())
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        ports = {int(port_text)}
    else:
        raise PatternError(f"route pattern {spec!r} has an invalid port {port_text!r}: use a number or *")
    return _Parts(scheme, host, ports, m["path"] or "/", m["query"])


#: An address as a connected socket reports it: ``(host, port)``, for IPv6 ``(host, port, flowinfo, scope_id)``.
SocketAddress = tuple[Any, ...]

_ephemeral_ports = itertools.count()


def socket_addresses(host: str, port: int) -> tuple[SocketAddress, SocketAddress]:
    """The (client, server) addresses a TCP connection to ``host:port`` reports, as ``getsockname``/``getpeername`` do.

    A socket reports IP addresses, never names: an IP literal is kept, any name
    (``localhost``, or one nothing resolves in memory) is reported as 127.0.0.1,
    the server being local. An IPv6 server gets the IPv6 loopback as client
    address and 4-tuples. The client gets a made-up ephemeral port, distinct
    per connection.
    """
    client_port = 50000 + next(_ephemeral_ports) % 15000
    server_ip, version = _server_ip(host)
    if version == 6:
        return ("::1", client_port, 0, 0), (server_ip, port, 0, 0)
    return ("127.0.0.1", client_port), (server_ip, port)


@functools.lru_cache(maxsize=256)
def _server_ip(host: str) -> tuple[str, int]:
    """The IP address a socket reports for a server called ``host``, and its version (names: 127.0.0.1)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "127.0.0.1", 4
    return str(ip), ip.version
