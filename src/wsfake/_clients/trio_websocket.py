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
``wss://`` is served without TLS: the plain in-memory ``trio.SocketStream`` is
returned, and the module global ``_get_stream_endpoint`` reports its endpoints
with ``is_ssl`` as the library would for the ``trio.SSLStream`` it expected.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import types
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from .._trio_stream import is_trio_stream
from .._url import URL, normalize_host
from . import Dialer, Undo
from ._trio import install_trio_hook, refused_as_trio, serving

NAME = "trio-websocket"
MODULE = "trio_websocket"
SUPPORTED = "trio-websocket >= 0.10.4"

#: The request target of the ``connect_websocket`` call running in this context.
_resource: ContextVar[str | None] = ContextVar("wsfake_trio_websocket_resource", default=None)
#: In-memory streams opened for ``wss://`` URLs (trio-websocket reports their endpoints with ``is_ssl``).
_secure: weakref.WeakSet[Any] = weakref.WeakSet()


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
            with refused_as_trio(text, port):
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
    """``_get_stream_endpoint`` reporting ``is_ssl`` for ``wss://`` streams served without TLS."""

    @functools.wraps(original)
    def get_stream_endpoint(stream: Any, *, local: bool) -> Any:
        endpoint = original(stream, local=local)
        if stream in _secure and isinstance(endpoint, impl.Endpoint):
            endpoint.is_ssl = True  # over the network the library would find a trio.SSLStream
        return endpoint

    return get_stream_endpoint


def install(module: types.ModuleType, dialer: Dialer) -> Undo:
    impl = importlib.import_module(f"{module.__name__}._impl")
    replaced: dict[str, Any] = {}

    def replace(name: str, value: Any) -> None:
        replaced[name] = impl.__dict__[name]
        impl.__dict__[name] = value

    undo_trio = install_trio_hook()

    def undo() -> None:
        for name, original in replaced.items():
            with contextlib.suppress(Exception):
                impl.__dict__[name] = original
        undo_trio()

    try:
        replace("trio", _trio_module(dialer))
        replace("connect_websocket", _connect_websocket(impl.__dict__["connect_websocket"]))
        if "_get_stream_endpoint" in impl.__dict__:
            replace("_get_stream_endpoint", _stream_endpoint(impl, impl.__dict__["_get_stream_endpoint"]))
    except BaseException:
        undo()
        raise
    return undo
