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
plain request to the same host cannot reuse it. ``wss://`` is served without
TLS. Through an HTTP proxy, aiohttp's own proxy code asks for a ``CONNECT``
tunnel, which the in-memory server answers as the proxy would
(``_create_direct_connection`` gives the in-memory connection for the proxy,
``_start_tls_connection`` leaves it unencrypted); a ``ws://`` URL, which aiohttp
would send to the proxy in absolute form without a tunnel, is served without the
proxy. An unrouted URL is refused the way aiohttp reports a closed port
(``ClientConnectorError`` around the ``ConnectionRefusedError``). Every other
request goes to aiohttp's own code, through the real network.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .._asyncio_transport import AsyncioTransport
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
    #: Through an HTTP proxy: aiohttp's connection to the proxy is the in-memory one.
    tunnel: bool = False


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
    direct_original = vars(tcp)["_create_direct_connection"]
    tls_original = vars(tcp)["_start_tls_connection"]

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
            if req.proxy is not None and not req.is_ssl():
                # aiohttp would send this upgrade to the proxy in absolute form, without a tunnel.
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

    async def open_in_memory(
        connector: Any, req: Any, destination: Destination, error: Any = client_error
    ) -> tuple[AsyncioTransport, Any]:
        try:
            transport, protocol = await open_transport(asyncio.get_running_loop(), destination, connector._factory)
        except OSError as exc:  # a refusal (a fault, a failed start): as aiohttp reports a closed port
            raise error(req.connection_key, exc) from exc
        protocol._should_close = True  # never pooled: the pool is for real connections
        return transport, protocol

    async def create_connection(self: Any, req: Any, traces: Any, timeout: Any) -> Any:
        upgrade = _pending.get()
        if upgrade is None or upgrade.request is not req or upgrade.connector is not self:
            return await create_original(self, req, traces, timeout)
        if upgrade.refused is not None:
            _pending.set(None)
            raise client_error(req.connection_key, upgrade.refused) from upgrade.refused
        assert upgrade.destination is not None
        if req.proxy is not None:
            upgrade.tunnel = True  # aiohttp's proxy code runs; its connection to the proxy is in memory
            return await create_original(self, req, traces, timeout)
        _pending.set(None)  # one connection per request
        _, protocol = await open_in_memory(self, req, upgrade.destination)
        return protocol

    async def create_direct_connection(self: Any, req: Any, traces: Any, timeout: Any, **kwargs: Any) -> Any:
        upgrade = _pending.get()
        if upgrade is None or not upgrade.tunnel or upgrade.connector is not self:
            return await direct_original(self, req, traces, timeout, **kwargs)
        _pending.set(None)
        assert upgrade.destination is not None
        transport, protocol = await open_in_memory(
            self, req, upgrade.destination, kwargs.get("client_error", client_error)
        )
        # As asyncio's socket transports declare: aiohttp < 3.9 warns about TLS in TLS without it.
        transport._start_tls_compatible = True  # type: ignore[attr-defined]
        return transport, protocol

    async def start_tls_connection(self: Any, underlying_transport: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(underlying_transport, AsyncioTransport):
            return await tls_original(self, underlying_transport, *args, **kwargs)
        protocol = self._factory()  # as start_tls would: a new protocol on the same, unencrypted, connection
        underlying_transport.set_protocol(protocol)
        protocol.connection_made(underlying_transport)
        protocol._should_close = True
        return underlying_transport, protocol

    hooks: list[tuple[Any, str, Any, Any]] = [
        (base, "connect", connect, connect_original),
        (base, "_get", get, get_original),
        (tcp, "_create_connection", create_connection, create_original),
        (tcp, "_create_direct_connection", create_direct_connection, direct_original),
        (tcp, "_start_tls_connection", start_tls_connection, tls_original),
    ]
    for cls, name, hook, original in hooks:
        hook.__wrapped__ = original
        setattr(cls, name, hook)

    def undo() -> None:
        for cls, name, _, original in reversed(hooks):
            setattr(cls, name, original)

    return undo
