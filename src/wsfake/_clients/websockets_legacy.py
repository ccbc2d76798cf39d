"""The legacy ``websockets`` asyncio client: ``websockets.client.connect`` / ``websockets.legacy.client.connect``.

``connect`` is the class ``Connect``; every form (``await``, ``async with``,
``async for`` reconnect, a ``create_protocol`` subclass of
``WebSocketClientProtocol``) ends in ``Connect.__await_impl__``, which calls the
``loop.create_connection`` partial that ``Connect.__init__`` prepared from the
library's own arguments. The wrapper routes that partial's address and the URI's
path; the event-loop hook then serves the call in memory. The partial is
re-bound to the loop when it was prepared before the patch (its bound method
then skips the hook).
"""

from __future__ import annotations

import asyncio
import functools
from types import ModuleType
from typing import Any

from .._url import URL, normalize_host
from . import Dialer, Undo
from ._asyncio import hooked, install_loop_hook, open_transport, serving

NAME = "websockets (legacy asyncio)"
MODULE = "websockets.legacy.client"
SUPPORTED = "websockets >= 14.0"


def install(module: ModuleType, dialer: Dialer) -> Undo:
    cls = module.Connect
    original = vars(cls)["__await_impl__"]

    async def await_impl(self: Any) -> Any:
        partial = self._create_connection
        func = getattr(partial, "func", None)
        loop = getattr(func, "__self__", None)
        if func is None or getattr(func, "__name__", "") != "create_connection" or partial.keywords.get("sock"):
            return await original(self)
        wsuri = self._wsuri
        host, port = [*partial.args[1:3], None, None][:2]
        host = partial.keywords.get("host", host) or wsuri.host
        port = partial.keywords.get("port", port) or wsuri.port
        path, _, query = wsuri.resource_name.partition("?")
        url = URL("wss" if wsuri.secure else "ws", normalize_host(str(host)), int(port), path or "/", query)
        destination = dialer.resolve(url)
        if destination is None:
            with dialer.allow_real(url.host, url.port):
                return await original(self)
        if not isinstance(loop, asyncio.AbstractEventLoop) or not hooked(loop):
            factory = partial.args[0]

            async def create_in_memory(*args: Any, **kwargs: Any) -> Any:
                return await open_transport(asyncio.get_running_loop(), destination, factory)

            self._create_connection = create_in_memory
        else:
            self._create_connection = functools.partial(loop.create_connection, *partial.args, **partial.keywords)
        try:
            with serving(destination):
                return await original(self)
        finally:
            self._create_connection = partial

    undo_loop = install_loop_hook()
    cls.__await_impl__ = await_impl

    def undo() -> None:
        cls.__await_impl__ = original
        undo_loop()

    return undo
