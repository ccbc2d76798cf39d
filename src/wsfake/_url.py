"""WebSocket URLs and the patterns that routes match them with."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union
from urllib.parse import urlsplit

from ._exceptions import InvalidURL, PatternError

DEFAULT_PORTS = {"ws": 80, "wss": 443}


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
            host=parts.hostname,
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
        if isinstance(spec, Pattern):
            self._match = spec._match
            self.spec = spec.spec
        elif isinstance(spec, str):
            self._match = _compile_url_pattern(spec)
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

    def __repr__(self) -> str:
        return "ws(s)://*"


_URL_PATTERN = re.compile(
    r"^(?P<scheme>[A-Za-z*]+)://(?P<host>\[[^\]]*\]|[^/:?#]*)(?::(?P<port>[^/?#]*))?"
    r"(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?$"
)


def _glob(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", text)))


def _compile_url_pattern(spec: str) -> Callable[[URL], bool]:
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
    host_re = _glob(host)
    path_re = _glob(m["path"] or "/")
    query = m["query"]
    query_re = None if query is None else _glob(query)

    def match(url: URL) -> bool:
        return (
            (scheme == "*" or url.scheme == scheme)
            and (ports is None or url.port in ports)
            and host_re.fullmatch(url.host) is not None
            and path_re.fullmatch(url.path) is not None
            and (query_re is None or query_re.fullmatch(url.query) is not None)
        )

    return match
