"""Route targets: what serves a connection, and how a callable's kind is detected."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ._asgi import ASGIApp, Lifespan, serve_asgi
from ._exceptions import InvalidTarget
from ._handler import HandlerFunc, ProcessRequest, ServerConnection, serve_handler
from ._records import Call
from ._session import Flavor, ServerSession

_WRAP_HINT = "wrap it explicitly: wsfake.ASGI(app) for an ASGI app, wsfake.Handler(fn) for `async def handler(ws)`"


class Target:
    """Base class of route targets."""

    max_size: int | None
    compression: bool
    #: Whose conventions to follow where real servers differ (see ServerSession).
    flavor: Flavor = "websockets"

    async def prepare(self) -> None:
        """Called before a connection is opened (ASGI lifespan startup)."""

    async def serve(
        self, session: ServerSession, call: Call, *, scheme: str, client: tuple[str, int], server: tuple[str, int]
    ) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Called when the patch context exits (ASGI lifespan shutdown)."""

    def close_now(self) -> None:
        """Synchronous counterpart of :meth:`aclose`."""


class Handler(Target):
    """A ``websockets.serve``-style handler: ``async def handler(ws)``.

    Options mirror ``websockets.serve``: ``subprotocols`` (server's preference
    order), ``process_request(connection, request)`` returning None or a
    response, ``max_size`` (1 MiB), ``compression`` ("deflate" or None),
    ``ping_interval``/``ping_timeout`` (20 s), ``close_timeout`` (10 s),
    ``open_timeout`` (10 s, for the opening handshake) and ``max_queue`` (16).
    """

    def __init__(
        self,
        handler: HandlerFunc,
        *,
        subprotocols: Sequence[str] | None = None,
        process_request: ProcessRequest | None = None,
        max_size: int | None = 2**20,
        compression: str | None = "deflate",
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        open_timeout: float | None = 10,
        max_queue: int = 16,
    ) -> None:
        if not callable(handler):
            raise InvalidTarget(f"Handler() needs an `async def handler(ws)` function, not {type(handler).__name__}")
        if compression not in ("deflate", None):
            raise ValueError(f"unsupported compression {compression!r}: use 'deflate' or None")
        self.handler = handler
        self.subprotocols = list(subprotocols or [])
        self.process_request = process_request
        self.max_size = max_size
        self.compression = compression is not None
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.open_timeout = open_timeout
        self.max_queue = max_queue
        #: Connections currently being handled.
        self.connections: set[ServerConnection] = set()

    def __repr__(self) -> str:
        return f"Handler({_name(self.handler)})"

    async def serve(
        self, session: ServerSession, call: Call, *, scheme: str, client: tuple[str, int], server: tuple[str, int]
    ) -> None:
        connections = self.connections
        holder: list[ServerConnection] = []

        def register(conn: ServerConnection) -> None:
            holder.append(conn)
            connections.add(conn)

        try:
            await serve_handler(
                session,
                self.handler,
                remote_address=client,
                local_address=server,
                subprotocols=self.subprotocols,
                process_request=self.process_request,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                close_timeout=self.close_timeout,
                open_timeout=self.open_timeout,
                max_queue=self.max_queue,
                on_connection=register,
            )
        finally:
            for conn in holder:
                connections.discard(conn)


class ASGI(Target):
    """An ASGI application (FastAPI, Starlette, or any ``app(scope, receive, send)``).

    ``lifespan=True`` runs the lifespan protocol: startup before the first
    connection, shutdown when the patch context exits. ``max_size`` defaults to
    uvicorn's 16 MiB; ``compression`` to permessage-deflate as uvicorn offers it;
    ``ping_interval``/``ping_timeout`` to uvicorn's keepalive (20 s each).
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
        self.lifespan: Lifespan | None = Lifespan(app) if lifespan else None
        self.flavor = "uvicorn"

    def __repr__(self) -> str:
        return f"ASGI({_name(self.app)})"

    async def prepare(self) -> None:
        if self.lifespan is not None:
            await self.lifespan.startup()

    async def serve(
        self, session: ServerSession, call: Call, *, scheme: str, client: tuple[str, int], server: tuple[str, int]
    ) -> None:
        state = self.lifespan.state if self.lifespan is not None else {}
        await serve_asgi(
            session,
            self.app,
            call,
            scheme=scheme,
            root_path=self.root_path,
            state=state,
            client=client,
            server=server,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
        )

    async def aclose(self) -> None:
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    def close_now(self) -> None:
        if self.lifespan is not None:
            self.lifespan.cancel()


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
