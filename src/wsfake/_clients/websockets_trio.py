"""The ``websockets`` trio client: ``websockets.trio.client.connect`` (websockets 17+).

As for the asyncio client, the wrapper on ``connect.open_tcp_stream`` routes the
address the library will connect to; the library's own method then runs and its
``trio.open_tcp_stream`` call is served in memory. ``enable_tls`` leaves an
in-memory stream as it is (``wss://`` is served without TLS). A refusal is
raised as trio reports a closed port.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._trio_stream import is_trio_stream
from . import Dialer, Undo
from ._trio import install_trio_hook, refused_as_trio, serving
from .websockets_asyncio import target_url

NAME = "websockets (trio)"
MODULE = "websockets.trio.client"
SUPPORTED = "websockets >= 17.0"


def install(module: ModuleType, dialer: Dialer) -> Undo:
    cls = module.connect
    open_original = vars(cls)["open_tcp_stream"]
    tls_original = vars(cls)["enable_tls"]

    async def open_tcp_stream(self: Any) -> Any:
        kwargs = self.open_tcp_stream_kwargs
        if kwargs.get("unix"):
            return await open_original(self)
        url = target_url(self.ws_uri, kwargs)
        with refused_as_trio(url.host, url.port):
            destination = dialer.resolve(url)
            if destination is None:
                with dialer.allow_real(url.host, url.port):
                    return await open_original(self)
            with serving(destination):
                return await open_original(self)

    async def enable_tls(self: Any, stream: Any) -> Any:
        if is_trio_stream(stream):
            return stream
        return await tls_original(self, stream)

    undo_trio = install_trio_hook()
    cls.open_tcp_stream = open_tcp_stream
    cls.enable_tls = enable_tls

    def undo() -> None:
        cls.open_tcp_stream = open_original
        cls.enable_tls = tls_original
        undo_trio()

    return undo
