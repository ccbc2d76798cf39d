"""wsfake's own exceptions.

Errors a client library would meet on a real network are raised as that
library (or the OS) raises them; the classes here cover misuse of wsfake.
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

    def __init__(self, url: str, routes: list[str]) -> None:
        listed = ", ".join(routes) if routes else "none"
        super().__init__(
            errno.ECONNREFUSED,
            f"wsfake: connection to {url} refused: no route matches it "
            f"(routes: {listed}). Add one with network.route(pattern, target), "
            f"or let it reach the real network with network.pass_through(pattern).",
        )
        self.url = url
        self.routes = routes


class ClientDisconnected(OSError):
    """Raised by an ASGI ``send`` after the client has gone, as the ASGI spec asks."""
