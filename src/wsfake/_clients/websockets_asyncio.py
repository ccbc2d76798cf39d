"""The ``websockets`` asyncio client: ``websockets.connect`` / ``websockets.asyncio.client.connect``.

``connect`` is a class and every import style and form (``await``, ``async with``,
``async for`` reconnect) ends in one of its methods: ``open_tcp_connection``
from 17.0 on, ``create_connection`` before. The wrapper routes the address the
library will connect to (the URI's, or the ``host``/``port`` keywords), then
runs the library's own method; the event-loop hook serves its
``loop.create_connection`` call in memory, so websockets' own checks,
handshake, framing, keepalive and close handshake run unchanged. Through a
configured HTTP proxy (or one from the environment), the in-memory server
answers the tunnel request as the proxy would.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

from .._url import URL, normalize_host
from . import Dialer, Undo
from ._asyncio import hooked, install_loop_hook, open_transport, serving

NAME = "websockets (asyncio)"
MODULE = "websockets.asyncio.client"
SUPPORTED = "websockets >= 14.0"


def target_url(ws_uri: Any, kwargs: dict[str, Any]) -> URL:
    """The URL as routed: the address the library will connect to, with the URI's path."""
    path, _, query = ws_uri.resource_name.partition("?")
    host = kwargs.get("host") or ws_uri.host
    port = kwargs.get("port") or ws_uri.port
    return URL("wss" if ws_uri.secure else "ws", normalize_host(str(host)), int(port), path or "/", query)


def install(module: ModuleType, dialer: Dialer) -> Undo:
    from websockets.uri import parse_uri

    cls = module.connect
    name = "open_tcp_connection" if "open_tcp_connection" in vars(cls) else "create_connection"
    original = vars(cls)[name]

    async def open_in_memory(self: Any) -> Any:
        kwargs = getattr(self, "create_connection_kwargs", None)
        if kwargs is None:
            kwargs = getattr(self, "connection_kwargs", {})
        if kwargs.get("sock") is not None or kwargs.get("unix"):
            return await original(self)
        ws_uri = parse_uri(self.uri)
        url = target_url(ws_uri, kwargs)
        destination = dialer.resolve(url)
        if destination is None:
            with dialer.allow_real(url.host, url.port):
                return await original(self)
        loop = asyncio.get_running_loop()
        if not hooked(loop):
            # A loop that is not asyncio's own (uvloop): its create_connection cannot be hooked.
            factory = self.factory if hasattr(self, "factory") else self.protocol_factory
            _, connection = await open_transport(loop, destination, lambda: factory(ws_uri))
            return connection
        with serving(destination):
            return await original(self)

    open_in_memory.__wrapped__ = original  # type: ignore[attr-defined]
    undo_loop = install_loop_hook()
    setattr(cls, name, open_in_memory)

    def undo() -> None:
        setattr(cls, name, original)
        undo_loop()

    return undo
