"""Route targets: what serves a connection, and how a callable's kind is detected.

A target supplies what its real server would: the options it takes (checked as
that server checks them), its :class:`~wsfake._conventions.Conventions`, and one
:class:`~wsfake._session.Sink` per connection. Per-loop state (an ASGI app's
lifespan) lives per :class:`~wsfake._host.Host`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._asgi import ASGIApp, ASGIConnection, Lifespan
from ._conventions import Conventions, uvicorn_conventions, websockets_conventions
from ._exceptions import InvalidTarget
from ._handler import HandlerFunc, HandlerOptions, ProcessRequest, ProcessResponse, SelectSubprotocol, ServerConnection
from ._handshake import validate_subprotocols
from ._host import Host, Spawned
from ._session import ServerSession, Sink

_WRAP_HINT = "wrap it explicitly: wsfake.ASGI(app) for an ASGI app, wsfake.Handler(fn) for `async def handler(ws)`"

MaxSize = int | None | tuple[int | None, int | None]

#: ``websockets.serve`` / ``loop.create_server`` options that only mean something for a real socket.
_SOCKET_OPTIONS = frozenset(
    {
        "host",
        "port",
        "family",
        "flags",
        "sock",
        "backlog",
        "ssl",
        "reuse_address",
        "reuse_port",
        "ssl_handshake_timeout",
        "ssl_shutdown_timeout",
        "start_serving",
        "unix",
        "path",
        "keep_alive",
    }
)


class Target:
    """Base class of route targets."""

    max_size: MaxSize
    compression: bool
    close_timeout: float | None
    conventions: Conventions

    async def prepare(self, host: Host) -> None:
        """Called on ``host`` before a connection is opened there (ASGI lifespan startup)."""

    def open(self, session: ServerSession, on_task: Callable[[Spawned], object]) -> Sink:
        """The layer that serves ``session``; ``on_task`` is told about the task it starts."""
        raise NotImplementedError

    async def aclose(self, host: Host) -> None:
        """Called when the server on ``host`` stops (ASGI lifespan shutdown)."""

    def stop(self, host: Host) -> None:
        """Synchronous counterpart of :meth:`aclose`, for a loop that cannot be awaited."""


class Handler(Target):
    """A ``websockets.serve``-style handler: ``async def handler(ws)``.

    Takes ``websockets.serve``'s options that have a meaning without a socket,
    with its defaults: ``origins``, ``subprotocols`` (server's preference order),
    ``select_subprotocol``, ``compression`` ("deflate" or None),
    ``process_request``/``process_response``, ``server_header`` (websockets'
    ``Python/x.y websockets/X.Y``; None to omit), ``open_timeout`` (10 s),
    ``ping_interval``/``ping_timeout`` (20 s), ``close_timeout`` (10 s),
    ``max_size`` (1 MiB, or ``(message, fragment)``), ``max_queue`` (16, or
    ``(high, low)``), ``write_limit`` and ``logger``. Socket options (``host``,
    ``port``, ``ssl``, ...) and ``create_connection`` are refused by name.
    """

    def __init__(
        self,
        handler: HandlerFunc,
        *,
        origins: Any = None,
        extensions: Any = None,
        subprotocols: Any = None,
        select_subprotocol: SelectSubprotocol | None = None,
        compression: str | None = "deflate",
        process_request: ProcessRequest | None = None,
        process_response: ProcessResponse | None = None,
        server_header: str | Any | None = ...,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_size: MaxSize = 2**20,
        max_queue: int | tuple[int | None, int | None] | None = 16,
        write_limit: int | tuple[int, int | None] = 2**15,
        logger: Any = None,
        create_connection: Any = None,
        **socket_options: Any,
    ) -> None:
        if not callable(handler):
            raise InvalidTarget(f"Handler() needs an `async def handler(ws)` function, not {type(handler).__name__}")
        _refuse_socket_options("Handler", socket_options)
        if create_connection is not None:
            raise TypeError(
                "Handler() cannot take create_connection: it subclasses websockets' own ServerConnection, "
                "which needs a socket; wsfake's ServerConnection offers the same API to the handler"
            )
        if extensions:
            raise TypeError(
                "Handler() cannot take custom extensions: they are websockets' extension classes and wsfake's "
                "server side is wsproto; use compression='deflate' (the default) or None"
            )
        if subprotocols is not None:
            validate_subprotocols(subprotocols)
        if compression not in ("deflate", None):
            raise ValueError(f"unsupported compression: {compression}")
        self.handler = handler
        self.options = HandlerOptions(
            handler,
            origins=origins,
            subprotocols=None if subprotocols is None else list(subprotocols),
            select_subprotocol=select_subprotocol,
            process_request=process_request,
            process_response=process_response,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_queue=max_queue,
            logger=logger,
        )
        self.max_size = max_size
        self.compression = compression is not None
        self.close_timeout = close_timeout
        self.write_limit = write_limit
        self.conventions = websockets_conventions(server_header)
        #: Connections currently being handled.
        self.connections: set[ServerConnection] = set()

    def __repr__(self) -> str:
        return f"Handler({_name(self.handler)})"

    def open(self, session: ServerSession, on_task: Callable[[Spawned], object]) -> Sink:
        connection = ServerConnection(session, self.options, on_task)
        self.connections.add(connection)
        connection._closed_callbacks.append(lambda: self.connections.discard(connection))
        return connection


class ASGI(Target):
    """An ASGI application (FastAPI, Starlette, or any ``app(scope, receive, send)``), served as uvicorn serves it.

    ``lifespan=True`` runs the lifespan protocol on each event loop that serves
    connections: startup before the first connection, shutdown when the patch
    context exits. ``max_size`` is uvicorn's ``ws_max_size`` (16 MiB),
    ``ping_interval``/``ping_timeout`` its keepalive (20 s each; 0 or None
    disables), ``compression`` its permessage-deflate, ``server_header`` and
    ``date_header`` its options of the same names.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        lifespan: bool = True,
        root_path: str = "",
        max_size: int | None = 16 * 2**20,
        compression: str | None = "deflate",
        close_timeout: float = 10,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        server_header: bool = True,
        date_header: bool = True,
        shutdown_timeout: float = 5.0,
    ) -> None:
        if not callable(app):
            raise InvalidTarget(f"ASGI() needs an ASGI application, not {type(app).__name__}")
        if compression not in ("deflate", None):
            raise ValueError(f"unsupported compression {compression!r}: use 'deflate' or None")
        self.app = app
        self.root_path = root_path
        self.max_size = max_size
        self.compression = compression is not None
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.lifespan = lifespan
        self.shutdown_timeout = shutdown_timeout
        self.conventions = uvicorn_conventions(server_header=server_header, date_header=date_header)
        self._lifespans: dict[object, Lifespan] = {}

    def __repr__(self) -> str:
        return f"ASGI({_name(self.app)})"

    def lifespan_for(self, host: Host) -> Lifespan | None:
        """The lifespan running on ``host``, if any."""
        return self._lifespans.get(host.key)

    async def prepare(self, host: Host) -> None:
        if not self.lifespan:
            return
        lifespan = self._lifespans.get(host.key)
        if lifespan is None:
            lifespan = self._lifespans[host.key] = Lifespan(self.app, host, shutdown_timeout=self.shutdown_timeout)
        await lifespan.startup()

    def open(self, session: ServerSession, on_task: Callable[[Spawned], object]) -> Sink:
        lifespan = self._lifespans.get(session.host.key)
        return ASGIConnection(
            session,
            self.app,
            root_path=self.root_path,
            state=lifespan.state if lifespan is not None else {},
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            on_task=on_task,
        )

    async def aclose(self, host: Host) -> None:
        lifespan = self._lifespans.pop(host.key, None)
        if lifespan is not None:
            await lifespan.shutdown()
            if lifespan.error is not None and lifespan.started:
                raise lifespan.error

    def stop(self, host: Host) -> None:
        lifespan = self._lifespans.pop(host.key, None)
        if lifespan is not None:
            lifespan.stop()


def _refuse_socket_options(kind: str, options: dict[str, Any]) -> None:
    for name in options:
        if name in _SOCKET_OPTIONS:
            raise TypeError(
                f"{kind}() does not take {name!r}: it configures the listening socket of a real server, "
                "and wsfake serves without one (route the URL instead: net.route('ws://host:port/*', target))"
            )
        raise TypeError(f"{kind}() got an unexpected keyword argument {name!r}")


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__qualname__


def _positional_arity(fn: Any) -> int | None:
    """How many positional arguments ``fn`` takes, None if it takes *args or cannot be inspected."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    count = 0
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def as_target(obj: Any, **options: Any) -> Target:
    """Turn what the user passed into a :class:`Target`, detecting handler vs ASGI app."""
    if isinstance(obj, Target):
        if options:
            raise TypeError(f"options {sorted(options)} go to the wrapper itself: {type(obj).__name__}(target, ...)")
        return obj
    if not callable(obj):
        raise InvalidTarget(
            f"a route target must be an ASGI app or an `async def handler(ws)` function, not {type(obj).__name__}"
        )
    arity = _positional_arity(obj)
    is_coroutine = inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(type(obj).__call__)
    if arity == 3:
        return ASGI(obj, **options)
    if arity == 1 and is_coroutine:
        return Handler(obj, **options)
    if arity == 1:
        raise InvalidTarget(f"{_name(obj)!r} takes one argument but is not a coroutine function; {_WRAP_HINT}")
    raise InvalidTarget(
        f"cannot tell whether {_name(obj)!r} is a handler or an ASGI app "
        f"(it takes {'*args' if arity is None else arity} positional arguments); {_WRAP_HINT}"
    )
