"""The ``websockets`` sync client: ``websockets.sync.client.connect`` (threads, plain sync code).

The library opens its TCP connection with ``socket.create_connection``, looked
up as the module global ``socket`` of ``websockets.sync.client`` at call time:
that global is replaced by a module stand-in whose ``create_connection`` serves
a routed address with a :class:`~wsfake._blocking.BlockingSocket`, its server
running on the network's background loop, and forwards everything else to the
real ``socket`` module. The URI being connected comes from the library's own
``parse_uri`` (also a module global) or, from 17.1 on, from the ``reconnect``
object whose ``open_socket`` is running. TLS is skipped for in-memory sockets
(``ssl.SSLContext.wrap_socket`` returns them as they are) and, from 17.2 on,
the module global ``selectors`` of ``websockets.sync.connection`` gives a
selector that can wait on them.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import types
from collections.abc import Callable
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from .._blocking import BlockingSocket, Selector
from .._url import URL, normalize_host
from . import Destination, Dialer, Undo
from ._asyncio import check_arguments

NAME = "websockets (sync)"
MODULE = "websockets.sync.client"
SUPPORTED = "websockets >= 14.0"

_uri: ContextVar[Any] = ContextVar("wsfake_sync_uri", default=None)
_pending: ContextVar[Destination | None] = ContextVar("wsfake_sync_pending", default=None)
_original_wrap = ssl.SSLContext.wrap_socket


def _wrap_socket(self: ssl.SSLContext, sock: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(sock, BlockingSocket):
        return sock
    return _original_wrap(self, sock, *args, **kwargs)


def open_blocking(destination: Destination, timeout: float | None) -> BlockingSocket:
    """A connected in-memory socket to ``destination``, served on the network's background loop."""
    sock: BlockingSocket = destination.open_from_thread(BlockingSocket, timeout)
    return sock


def _socket_module(dialer: Dialer) -> ModuleType:
    """A stand-in for the ``socket`` module whose ``create_connection`` serves routed addresses."""
    stand_in = types.ModuleType("socket", "wsfake's stand-in for the socket module in websockets.sync.client")
    stand_in.__dict__.update({name: value for name, value in vars(socket).items() if not name.startswith("__")})

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        destination = _pending.get()
        if destination is None:
            uri = _uri.get()
            host, port = address[0], address[1]
            if uri is None:
                destination = dialer.resolve_address("wss" if port == 443 else "ws", str(host), int(port))
            else:
                path, _, query = uri.resource_name.partition("?")
                scheme = "wss" if uri.secure else "ws"
                destination = dialer.resolve(URL(scheme, normalize_host(str(host)), int(port), path or "/", query))
            if destination is None:
                with dialer.allow_real(str(host), int(port)):
                    return socket.create_connection(address, *args, **kwargs)
        check_arguments(socket.create_connection, address, *args, **kwargs)
        _pending.set(None)
        timeout = args[0] if args else kwargs.get("timeout", socket.getdefaulttimeout())
        if not isinstance(timeout, (int, float)):
            timeout = socket.getdefaulttimeout()
        sock = open_blocking(destination, timeout)
        sock.settimeout(timeout)
        return sock

    create_connection.__qualname__ = "create_connection"  # as the real function names itself in a TypeError
    stand_in.create_connection = create_connection  # type: ignore[attr-defined]
    return stand_in


def _selectors_module() -> ModuleType:
    import selectors

    stand_in = types.ModuleType("selectors", "wsfake's stand-in for the selectors module in websockets.sync")
    stand_in.__dict__.update({name: value for name, value in vars(selectors).items() if not name.startswith("__")})
    stand_in.DefaultSelector = Selector  # type: ignore[attr-defined]
    return stand_in


def _replace(module: ModuleType, name: str, value: Any) -> Callable[[], None]:
    original = module.__dict__[name]
    module.__dict__[name] = value

    def undo() -> None:
        module.__dict__[name] = original

    return undo


def install(module: ModuleType, dialer: Dialer) -> Undo:
    undo: list[Callable[[], None]] = []
    original_parse = module.__dict__["parse_uri"]

    def parse_uri(uri: str) -> Any:
        parsed = original_parse(uri)
        _uri.set(parsed)
        return parsed

    undo.append(_replace(module, "parse_uri", parse_uri))
    undo.append(_replace(module, "socket", _socket_module(dialer)))
    reconnect = getattr(module, "reconnect", None)
    if reconnect is not None and "open_socket" in vars(reconnect):
        original_open = vars(reconnect)["open_socket"]

        def open_socket(self: Any, deadline: Any) -> Any:
            kwargs = self.open_socket_kwargs
            if kwargs.get("unix"):
                return original_open(self, deadline)
            path, _, query = self.ws_uri.resource_name.partition("?")
            scheme = "wss" if self.ws_uri.secure else "ws"
            # The library connects to address= when given (the URI still names the resource and Host).
            host, port = kwargs.get("address") or (self.ws_uri.host, self.ws_uri.port)
            url = URL(scheme, normalize_host(str(host)), int(port), path or "/", query)
            destination = dialer.resolve(url)
            if destination is None:
                with dialer.allow_real(url.host, url.port):
                    return original_open(self, deadline)
            token = _pending.set(destination)
            try:
                return original_open(self, deadline)
            finally:
                _pending.reset(token)

        reconnect.open_socket = open_socket
        undo.append(lambda: setattr(reconnect, "open_socket", original_open))
    connection = sys.modules.get("websockets.sync.connection")
    if connection is not None and "selectors" in connection.__dict__:
        undo.append(_replace(connection, "selectors", _selectors_module()))
    ssl.SSLContext.wrap_socket = _wrap_socket  # type: ignore[method-assign]
    undo.append(lambda: setattr(ssl.SSLContext, "wrap_socket", _original_wrap))

    def undo_all() -> None:
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()

    return undo_all
