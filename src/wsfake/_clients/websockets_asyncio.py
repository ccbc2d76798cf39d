"""Hook for the ``websockets`` asyncio client (``websockets.connect``).

``connect`` is a class and every import style ends in one of its methods:
``open_tcp_connection`` from 17.0 on, ``create_connection`` before. The hook
replaces that method; for a routed URL it builds the library's own
``ClientConnection`` over an in-memory transport, so the handshake, framing,
keepalive and close handshake are websockets' real code.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from .._asyncio_transport import AsyncioTransport
from .._url import URL


def install() -> Callable[[], None] | None:
    """Patch ``websockets.asyncio.client.connect``; return the undo, None if not installed."""
    try:
        from websockets.asyncio import client
        from websockets.uri import parse_uri
    except ImportError:
        return None
    cls = client.connect
    name = "open_tcp_connection" if "open_tcp_connection" in vars(cls) else "create_connection"
    original = vars(cls)[name]

    async def open_in_memory(self: Any) -> Any:
        from .._patch import resolve

        ws_uri = getattr(self, "ws_uri", None)
        if ws_uri is None:
            ws_uri = parse_uri(self.uri)
        kwargs = getattr(self, "create_connection_kwargs", None)
        if kwargs is None:
            kwargs = getattr(self, "connection_kwargs", {})
        if kwargs.get("sock") is not None or kwargs.get("unix"):
            return await original(self)
        path, _, query = ws_uri.resource_name.partition("?")
        url = URL("wss" if ws_uri.secure else "ws", ws_uri.host.lower(), ws_uri.port, path or "/", query)
        found = resolve(url)
        if found is None:
            return await original(self)
        loop = asyncio.get_running_loop()
        _check_create_connection_kwargs(loop, kwargs)
        network, route = found
        pipe = await network.open(route, url, str(url))
        factory = self.factory if hasattr(self, "factory") else self.protocol_factory
        connection = factory(ws_uri)
        connection.connection_made(AsyncioTransport(pipe, connection, loop))
        return connection

    open_in_memory.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(cls, name, open_in_memory)

    def undo() -> None:
        setattr(cls, name, original)

    return undo


def _check_create_connection_kwargs(loop: asyncio.AbstractEventLoop, kwargs: dict[str, Any]) -> None:
    """Reject what ``loop.create_connection`` would reject, with its own message.

    websockets passes unknown ``connect()`` keywords through to it, so a typo or
    an option of a newer websockets fails there on a real network; it must fail
    in memory too rather than be ignored.
    """
    create_connection = loop.create_connection
    accepted = inspect.signature(create_connection).parameters
    for name in kwargs:
        if name not in accepted:
            raise TypeError(f"{create_connection.__qualname__}() got an unexpected keyword argument {name!r}")
