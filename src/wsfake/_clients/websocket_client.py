"""websocket-client: ``create_connection``, ``WebSocket().connect`` and ``WebSocketApp.run_forever``.

Every form ends in ``WebSocket.connect``, which opens each connection (the
first and every redirect) with the module global ``connect`` of
``websocket._core``, looked up at call time. Its wrapper routes the URL, as
parsed by the library's own ``parse_url``, and marks the current context with
the destination while the library's ``connect`` runs unchanged: its proxy
decision (options or environment), its ``getaddrinfo``/``socket``/``connect``
loop with the timeout and socket options, its ``CONNECT`` tunnel through an
HTTP proxy (answered by the in-memory server as the proxy would) and its TLS
set-up. Only the network is replaced, through two module globals of
``websocket._http``: ``socket`` (its ``getaddrinfo`` answers without DNS and
its ``socket`` gives an in-memory socket that ``connect`` opens on the
network's background loop; a refusal is the ``ConnectionRefusedError`` the
library handles as for a closed port) and, when python-socks is installed,
``Proxy`` (a SOCKS proxy hands back the in-memory connection). The socket goes
through ``ssl.SSLContext.wrap_socket`` as it is, so ``wss://`` is served
without TLS after the library built its context. URLs that are not routed go
to the original inside ``dialer.allow_real``; a socket the caller passes is
left alone.

``WebSocketApp``'s dispatchers wait with ``selectors`` (a module global of
``websocket._dispatcher``, of ``websocket._app`` before 1.9): its stand-in
gives :class:`~wsfake._blocking.Selector`, which waits on in-memory sockets and
real descriptors alike.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import ssl
import sys
import types
from collections.abc import Callable
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from .._blocking import BlockingSocket, Selector
from .._exceptions import NoRoute
from .._pipe import Pipe
from .._url import URL, normalize_host
from . import Destination, Dialer, Undo

NAME = "websocket-client"
MODULE = "websocket"
SUPPORTED = "websocket-client >= 1.6"

#: Where the connection the library is opening in this context goes (a refusal: the error to raise).
_pending: ContextVar[Destination | NoRoute | None] = ContextVar("wsfake_websocket_client", default=None)


class _Socket(BlockingSocket):
    """An in-memory socket, created unconnected by the library's own code and opened by ``connect``."""

    def __init__(self, target: Destination | NoRoute, family: int = -1, type: int = -1, proto: int = -1) -> None:
        # Until connect() attaches a pipe, only what the library sets first exists.
        self.family = socket.AF_INET if family == -1 else socket.AddressFamily(family)
        self._target = target
        self._timeout = socket.getdefaulttimeout()
        self._closed = False
        self._attached = False

    def connect(self, address: Any) -> None:
        self._check_open()
        if self._attached:
            raise OSError(errno.EISCONN, "Transport endpoint is already connected")
        target = self._target
        if isinstance(target, NoRoute):
            raise target
        timeout = self._timeout
        target.open_from_thread(self._attach, timeout)
        self._timeout = timeout

    def _attach(self, pipe: Pipe) -> _Socket:
        BlockingSocket.__init__(self, pipe)
        self._attached = True
        return self

    def close(self) -> None:
        if self._attached:
            super().close()
        self._closed = True

    def shutdown(self, how: int) -> None:
        if not self._attached:
            self._check_open()
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        super().shutdown(how)

    def pending(self) -> int:
        """0: no TLS layer holds bytes back (``wss://`` dispatchers ask); readiness comes from the selector."""
        return 0

    @property
    def readable(self) -> bool:
        return self._attached and super().readable


def _open(target: Destination | NoRoute, timeout: float | None) -> _Socket:
    sock = _Socket(target)
    sock.settimeout(timeout)
    sock.connect(None)
    return sock


def _socket_module() -> ModuleType:
    """The ``socket`` module as ``websocket._http`` sees it: routed connections are made in memory."""
    stand_in = types.ModuleType("socket", "wsfake's stand-in for the socket module in websocket._http")
    stand_in.__dict__.update({name: value for name, value in vars(socket).items() if not name.startswith("__")})

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
        if _pending.get() is None:
            return socket.getaddrinfo(host, port, family, type, proto, flags)
        # Served in memory: no DNS. The address is the one the library asked for (proxy or server).
        if ":" in str(host):
            return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(host), int(port), 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(host), int(port)))]

    class socket_(socket.socket):
        def __new__(cls, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> Any:
            target = _pending.get()
            if target is None or fileno is not None:
                return socket.socket(family, type, proto, fileno)
            return _Socket(target, family, type, proto)

    socket_.__name__ = socket_.__qualname__ = "socket"
    stand_in.getaddrinfo = getaddrinfo  # type: ignore[attr-defined]
    stand_in.socket = socket_  # type: ignore[attr-defined]
    return stand_in


def _socks_proxy(original: Any) -> Any:
    """python-socks' ``Proxy`` as ``websocket._http`` sees it: a SOCKS proxy hands back the in-memory connection."""

    class InMemory:
        def connect(self, dest_host: str, dest_port: int, timeout: float | None = None, **kwargs: Any) -> _Socket:
            target = _pending.get()
            assert target is not None
            return _open(target, timeout)

    class Proxy:
        @classmethod
        def create(cls, *args: Any, **kwargs: Any) -> Any:
            if _pending.get() is None:
                return original.create(*args, **kwargs)
            original.create(*args, **kwargs)  # the library's proxy settings are checked as on the network
            return InMemory()

    return Proxy


def _selectors_module() -> ModuleType:
    stand_in = types.ModuleType("selectors", "wsfake's stand-in for the selectors module in websocket-client")
    stand_in.__dict__.update({name: value for name, value in vars(selectors).items() if not name.startswith("__")})
    stand_in.DefaultSelector = Selector  # type: ignore[attr-defined]
    return stand_in


def _replace(module: ModuleType, name: str, value: Any) -> Callable[[], None]:
    original = module.__dict__[name]
    module.__dict__[name] = value

    def undo() -> None:
        module.__dict__[name] = original

    return undo


def _replace_wrap_socket() -> Callable[[], None]:
    """Let in-memory sockets through ``ssl.SSLContext.wrap_socket`` as they are (no TLS in memory)."""
    original = ssl.SSLContext.wrap_socket

    def wrap_socket(self: ssl.SSLContext, sock: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(sock, _Socket):
            return sock
        return original(self, sock, *args, **kwargs)

    ssl.SSLContext.wrap_socket = wrap_socket  # type: ignore[method-assign]
    return lambda: setattr(ssl.SSLContext, "wrap_socket", original)


def install(module: ModuleType, dialer: Dialer) -> Undo:
    core = sys.modules["websocket._core"]
    http = sys.modules["websocket._http"]
    from websocket._url import parse_url

    original_connect = core.__dict__["connect"]

    def connect(url: str, options: Any, proxy: Any, socket: Any, *args: Any, **kwargs: Any) -> Any:
        if socket:
            return original_connect(url, options, proxy, socket, *args, **kwargs)
        hostname, port, resource, is_secure = parse_url(url)
        path, _, query = resource.partition("?")
        target = URL("wss" if is_secure else "ws", normalize_host(hostname), int(port), path or "/", query)
        destination: Destination | NoRoute | None
        try:
            destination = dialer.resolve(target)
        except NoRoute as exc:
            destination = exc  # refused when the library connects, as a closed port refuses
        if destination is None:
            with dialer.allow_real(target.host, target.port):
                return original_connect(url, options, proxy, socket, *args, **kwargs)
        token = _pending.set(destination)
        try:
            return original_connect(url, options, proxy, socket, *args, **kwargs)
        finally:
            _pending.reset(token)

    connect.__wrapped__ = original_connect  # type: ignore[attr-defined]
    undo = [_replace(core, "connect", connect), _replace(http, "socket", _socket_module())]
    if "Proxy" in http.__dict__:
        undo.append(_replace(http, "Proxy", _socks_proxy(http.__dict__["Proxy"])))
    for name in ("websocket._dispatcher", "websocket._app"):
        dispatcher = sys.modules.get(name)
        if dispatcher is not None and "selectors" in dispatcher.__dict__:
            undo.append(_replace(dispatcher, "selectors", _selectors_module()))
    undo.append(_replace_wrap_socket())

    def undo_all() -> None:
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()

    return undo_all
