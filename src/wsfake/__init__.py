"""wsfake: real WebSocket clients against real servers, with no network port.

The client library's own code runs over an in-memory byte pipe; the server side
speaks RFC 6455 through wsproto to your ASGI app or handler coroutine.
"""

from ._closed import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from ._exceptions import (
    ClientDepartureWarning,
    ClientDisconnected,
    DeadlineExceeded,
    InvalidTarget,
    InvalidURL,
    NoRoute,
    PatternError,
    RealNetworkBlocked,
    ShadowedRouteWarning,
    WsfakeError,
    WsfakeWarning,
)
from ._handler import ServerConnection, State
from ._http import Headers, Request, Response
from ._mock import MockConnection, MockServer
from ._network import Network, Route
from ._patch import is_patched, patch_client
from ._pipe import DEFAULT_BUFFER_SIZE, Pipe, PipeStream
from ._records import Call, Calls
from ._targets import ASGI, Handler, Target
from ._url import URL, Pattern

__version__ = "0.1.0"

__all__ = [
    "ASGI",
    "DEFAULT_BUFFER_SIZE",
    "URL",
    "Call",
    "Calls",
    "ClientDepartureWarning",
    "ClientDisconnected",
    "DeadlineExceeded",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Handler",
    "Headers",
    "InvalidTarget",
    "InvalidURL",
    "MockConnection",
    "MockServer",
    "Network",
    "NoRoute",
    "Pattern",
    "PatternError",
    "Pipe",
    "Request",
    "RealNetworkBlocked",
    "Response",
    "Route",
    "ServerConnection",
    "ShadowedRouteWarning",
    "PipeStream",
    "State",
    "Target",
    "WsfakeError",
    "WsfakeWarning",
    "is_patched",
    "patch_client",
]
