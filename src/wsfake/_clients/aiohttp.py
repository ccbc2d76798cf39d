"""The aiohttp client: ``ClientSession.ws_connect`` (``ws://``, ``wss://``, and the ``http(s)://`` URLs it accepts).

A session opens every connection through its connector, WebSocket or not:
``BaseConnector.connect(req, ...)`` takes an idle one from the pool (``_get``)
or has ``TCPConnector._create_connection`` open a new one. The hooks sit there,
on the classes, so every import style, a connector made with options and a
subclass are caught. Only a WebSocket upgrade (the request carries
``Upgrade: websocket``) whose URL a route serves is taken: it skips the pool,
which holds only real connections, and ``_create_connection`` returns the
connector's own protocol (``self._factory()``) connected to an in-memory
transport. aiohttp's request writer, response parser, handshake checks, frame
reader (C or Python), timeouts, heartbeat and connection release then run
unchanged. An in-memory connection is never put back in the pool, so a later
plain request to the same host cannot reuse it. A routed upgrade uses no proxy
and no TLS (there is no network to cross); an unrouted URL is refused the way
aiohttp reports a closed port (``ClientConnectorError`` around the
``ConnectionRefusedError``). Every other request goes to aiohttp's own code,
through the real network.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .._exceptions import NoRoute
from .._url import URL, normalize_host
from . import Destination, Dialer, Undo
from ._asyncio import open_transport

NAME = "aiohttp"
MODULE = "aiohttp"
SUPPORTED = "aiohttp >= 3.8.3"

#: URL schemes ``ws_connect`` accepts, and the WebSocket scheme each is routed as.
SCHEMES = {"ws": "ws", "http": "ws", "wss": "wss", "https": "wss"}


@dataclass
class _Upgrade:
    """A routed upgrade request on its way through ``connect``: served in memory, or refused."""

    connector: Any
    request: Any
    destination: Destination | None
    refused: NoRoute | None


_pending: ContextVar[_Upgrade | None] = ContextVar("wsfake_aiohttp_upgrade", default=None)


def is_upgrade(request: Any) -> bool:
    """True if the request asks for a WebSocket upgrade (what ``ws_connect`` sends)."""
    upgrade = request.headers.get("Upgrade", "")
    return "websocket" in (token.strip().lower() for token in upgrade.split(","))


def target_url(request: Any) -> URL | None:
    """The request's URL as routed (``http(s)`` as ``ws(s)``); None for a scheme WebSockets do not use."""
    url = request.url
    scheme = SCHEMES.get(url.scheme)
    if scheme is None or not url.raw_host or url.port is None:
        return None
    return URL(scheme, normalize_host(url.raw_host), int(url.port), url.raw_path or "/", url.raw_query_string)


def install(module: ModuleType, dialer: Dialer) -> Undo:
    connector_module = module.connector
    base = connector_module.BaseConnector
    tcp = connector_module.TCPConnector
    client_error = module.ClientConnectorError
    connect_original = vars(base)["connect"]
    get_original = vars(base)["_get"]
    create_original = vars(tcp)["_create_connection"]

    async def connect(self: Any, req: Any, traces: Any, timeout: Any) -> Any:
        if not is_upgrade(req):
            with dialer.allow_real(req.host, req.port):
                return await connect_original(self, req, traces, timeout)
        url = target_url(req)
        if url is None or not isinstance(self, tcp):
            return await connect_original(self, req, traces, timeout)
        try:
            destination = dialer.resolve(url)
        except NoRoute as exc:
            upgrade = _Upgrade(self, req, None, exc)
        else:
            if destination is None:
                with dialer.allow_real(url.host, url.port):
                    return await connect_original(self, req, traces, timeout)
            req.update_proxy(None, None, None)
            upgrade = _Upgrade(self, req, destination, None)
        token = _pending.set(upgrade)
        try:
            return await connect_original(self, req, traces, timeout)
        finally:
            _pending.reset(token)

    def pool_skipped(connector: Any) -> bool:
        upgrade = _pending.get()
        return upgrade is not None and upgrade.connector is connector

    get: Callable[..., Any]
    if inspect.iscoroutinefunction(get_original):  # aiohttp >= 3.11 (a plain function before)

        async def get_async(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
            if pool_skipped(self):
                return None
            return await get_original(self, key, *args, **kwargs)

        get = get_async
    else:

        def get_sync(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
            if pool_skipped(self):
                return None
            return get_original(self, key, *args, **kwargs)

        get = get_sync

    async def create_connection(self: Any, req: Any, traces: Any, timeout: Any) -> Any:
        upgrade = _pending.get()
        if upgrade is None or upgrade.request is not req or upgrade.connector is not self:
            return await create_original(self, req, traces, timeout)
        _pending.set(None)  # one connection per request
        if upgrade.refused is not None:
            raise client_error(req.connection_key, upgrade.refused) from upgrade.refused
        assert upgrade.destination is not None
        _, protocol = await open_transport(asyncio.get_running_loop(), upgrade.destination, self._factory)
        protocol._should_close = True  # never pooled: the pool is for real connections
        return protocol

    wrapped: list[tuple[Any, Any]] = [
        (connect, connect_original),
        (get, get_original),
        (create_connection, create_original),
    ]
    for hook, original in wrapped:
        hook.__wrapped__ = original
    base.connect = connect
    base._get = get
    tcp._create_connection = create_connection

    def undo() -> None:
        tcp._create_connection = create_original
        base._get = get_original
        base.connect = connect_original

    return undo
