"""trio-websocket: ``open_websocket_url``, ``connect_websocket_url``, ``open_websocket``, ``connect_websocket``.

Every client form ends in ``connect_websocket``, which opens its connection
with ``trio.open_tcp_stream`` (``ws://``) or ``trio.open_ssl_over_tcp_stream``
(``wss://``), looking up ``trio`` as a module global of ``trio_websocket._impl``
at call time. That global is replaced by a stand-in for the ``trio`` module
whose two functions route the address trio-websocket is about to connect to:
a routed address is served in memory through the trio hook (``serving``), a
pass-through goes to trio inside ``allow_real``, and a refusal is raised as
trio raises a closed port (``OSError: all attempts to connect to ... failed``,
caused by the ``ConnectionRefusedError``), which trio-websocket then wraps in
``HandshakeError`` itself. Its handshake, framing, timeouts and exceptions run
unchanged.

The request path is known when the call went through the module global
``connect_websocket`` (every form but a direct call of a captured
``connect_websocket``, whose path is then routed when the request arrives).
``wss://`` is served without TLS: the plain in-memory stream is returned. The
module global ``_get_stream_endpoint`` answers ``local``/``remote`` for
in-memory streams with an ``Endpoint`` as for a socket (trio-websocket only
reads addresses from ``trio.SocketStream``/``trio.SSLStream``, which cannot be
subclassed).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import sys
import types
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from .._trio_stream import is_trio_stream
from .._url import URL, normalize_host
from . import Dialer, Undo
from ._trio import install_trio_hook, serving

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

NAME = "trio-websocket"
MODULE = "trio_websocket"
SUPPORTED = "trio-websocket >= 0.9"

#: The request target of the ``connect_websocket`` call running in this context.
_resource: ContextVar[str | None] = ContextVar("wsfake_trio_websocket_resource", default=None)
#: In-memory streams opened for ``wss://`` URLs (trio-websocket reports their endpoints with ``is_ssl``).
_secure: weakref.WeakSet[Any] = weakref.WeakSet()


def refusal_message(host: str, port: int) -> str:
    """The message of the ``OSError`` trio raises when every address of ``host`` refused the connection."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"all attempts to connect to {address} failed"


def _address(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    host = args[0] if args else kwargs.get("host")
    port = args[1] if len(args) > 1 else kwargs.get("port")
    return host, port


def _trio_module(dialer: Dialer) -> types.ModuleType:
    """A stand-in for ``trio`` in ``trio_websocket._impl``: its two connection functions route the address."""
    import trio

    def opener(name: str, scheme: str) -> Callable[..., Any]:
        async def open_stream(*args: Any, **kwargs: Any) -> Any:
            function = getattr(trio, name)  # the trio hook while wsfake is active
            resource = _resource.get()
            _resource.set(None)  # one connection per connect_websocket call
            host, port = _address(args, kwargs)
            if not isinstance(host, (str, bytes)) or not isinstance(port, int):
                return await function(*args, **kwargs)  # trio's own ValueError / TypeError
            text = host.decode("ascii") if isinstance(host, bytes) else host
            try:
                if resource is None:
                    destination = dialer.resolve_address(scheme, normalize_host(text), port)
                else:
                    path, _, query = resource.partition("?")
                    destination = dialer.resolve(URL(scheme, normalize_host(text), port, path or "/", query))
                if destination is None:
                    with dialer.allow_real(text, port):
                        return await function(*args, **kwargs)
                with serving(destination):
                    stream = await function(*args, **kwargs)
            except ConnectionRefusedError as exc:
                message = refusal_message(text, port)
                raise OSError(message) from ExceptionGroup(message, [exc])
            if scheme == "wss" and is_trio_stream(stream):
                _secure.add(stream)
            return stream

        open_stream.__name__ = open_stream.__qualname__ = name
        return open_stream

    stand_in = types.ModuleType("trio", "wsfake's stand-in for the trio module in trio_websocket._impl")
    stand_in.__dict__.update({key: value for key, value in vars(trio).items() if not key.startswith("__")})
    stand_in.__dict__["__getattr__"] = functools.partial(getattr, trio)  # names trio itself makes lazily
    stand_in.open_tcp_stream = opener("open_tcp_stream", "ws")  # type: ignore[attr-defined]
    stand_in.open_ssl_over_tcp_stream = opener("open_ssl_over_tcp_stream", "wss")  # type: ignore[attr-defined]
    return stand_in


def _connect_websocket(original: Callable[..., Any]) -> Callable[..., Any]:
    """``connect_websocket`` marking the context with its request target (``resource``)."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    async def connect_websocket(*args: Any, **kwargs: Any) -> Any:
        try:
            resource = signature.bind(*args, **kwargs).arguments.get("resource")
        except TypeError:
            resource = None  # the library raises its own TypeError
        token = _resource.set(resource if isinstance(resource, str) else None)
        try:
            return await original(*args, **kwargs)
        finally:
            _resource.reset(token)

    return connect_websocket


def _stream_endpoint(impl: types.ModuleType, original: Callable[..., Any]) -> Callable[..., Any]:
    """``_get_stream_endpoint`` answering for in-memory streams as trio-websocket does for sockets."""

    @functools.wraps(original)
    def get_stream_endpoint(stream: Any, *, local: bool) -> Any:
        if not is_trio_stream(stream):
            return original(stream, local=local)
        address, port = stream.socket.getsockname() if local else stream.socket.getpeername()
        if address == "localhost":
            address = "127.0.0.1"
        try:
            return impl.Endpoint(address, port, stream in _secure)
        except ValueError:  # a host name: no address to report, as for any stream that is not a socket
            return original(stream, local=local)

    return get_stream_endpoint


def install(module: types.ModuleType, dialer: Dialer) -> Undo:
    impl = importlib.import_module(f"{module.__name__}._impl")
    replaced: dict[str, Any] = {}

    def replace(name: str, value: Any) -> None:
        replaced[name] = impl.__dict__[name]
        impl.__dict__[name] = value

    undo_trio = install_trio_hook()
    replace("trio", _trio_module(dialer))
    replace("connect_websocket", _connect_websocket(impl.__dict__["connect_websocket"]))
    if "_get_stream_endpoint" in impl.__dict__:
        replace("_get_stream_endpoint", _stream_endpoint(impl, impl.__dict__["_get_stream_endpoint"]))

    def undo() -> None:
        for name, original in replaced.items():
            with contextlib.suppress(Exception):
                impl.__dict__[name] = original
        undo_trio()

    return undo
