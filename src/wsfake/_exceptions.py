"""wsfake's own exceptions and warnings.

Errors a client library would meet on a real network are raised as that
library (or the OS) raises them; the classes here cover misuse of wsfake and
what wsfake itself decides (a blocked real connection, a stuck test).
"""

from __future__ import annotations

import errno


class WsfakeError(Exception):
    """Base class of wsfake's usage errors."""


class InvalidURL(WsfakeError, ValueError):
    """A URL that is not ``ws://`` or ``wss://``."""


class PatternError(WsfakeError, ValueError):
    """A route pattern that cannot be understood."""


class InvalidTarget(WsfakeError, TypeError):
    """A route target that is neither a handler coroutine function nor an ASGI app."""


class NoRoute(WsfakeError, ConnectionRefusedError):
    """No route serves the URL: the in-memory equivalent of a closed port.

    It is a :class:`ConnectionRefusedError` with errno ``ECONNREFUSED``, so client
    code sees exactly what a real connection to a closed port raises.
    """

    def __init__(self, url: str, routes: list[str], message: str | None = None) -> None:
        listed = ", ".join(routes) if routes else "none"
        super().__init__(
            errno.ECONNREFUSED,
            message
            or f"wsfake: connection to {url} refused: no route matches it "
            f"(routes: {listed}). Add one with network.route(pattern, target), "
            f"or let it reach the real network with network.pass_through(pattern).",
        )
        self.url = url
        self.routes = routes


class RealNetworkBlocked(WsfakeError, RuntimeError):
    """A connection to a host and port that wsfake serves in memory tried to use the real network.

    Raised (by an audit hook) when code that wsfake does not serve in memory —
    a client library it does not know, or a raw socket — connects to an address
    a route names while a patch is active. It is not an ``OSError`` on purpose:
    reconnect loops must not retry it.
    """

    def __init__(self, host: str, port: int, routes: list[str]) -> None:
        super().__init__(
            f"wsfake: a connection to {host}:{port} tried to use the real network while wsfake serves that address "
            f"in memory (routes: {', '.join(routes)}). The code making it is not served in memory by wsfake (see "
            "docs/clients.md for the supported client libraries). Use a supported client, or let this address reach "
            "the real network with network.pass_through(pattern)."
        )
        self.host = host
        self.port = port
        self.routes = routes


class DeadlineExceeded(WsfakeError, AssertionError):
    """Nothing moved on a wsfake connection for ``deadline`` seconds while someone waited on it."""


class ClientDisconnected(OSError):
    """Raised by an ASGI ``send`` after the client has gone, as the ASGI spec asks."""


class WsfakeWarning(UserWarning):
    """Base class of wsfake's warnings (filter them with ``wsfake.WsfakeWarning``)."""


class ClientDepartureWarning(WsfakeWarning):
    """A server exception that only mirrors the client's normal departure (or the server stopping).

    FastAPI's tutorial endpoint raises ``WebSocketDisconnect(1000)`` after the
    client closes; a handler's ``recv()`` raises ``ConnectionClosedOK``. Real
    servers log these and go on, so wsfake reports them with this warning
    instead of failing the test. Turn it into an error with
    ``raise_departure_errors=True`` or a warnings filter.
    """


class ShadowedRouteWarning(WsfakeWarning):
    """A route was added that an earlier route completely shadows: it can never serve a connection."""


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` (PEP 678), also on Python 3.10 (``__notes__``, shown there by exceptiongroup)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
        return
    notes = getattr(exc, "__notes__", None)
    if notes is None:
        notes = []
        exc.__notes__ = notes  # type: ignore[attr-defined]
    notes.append(note)
