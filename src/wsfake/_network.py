"""The in-memory network: routes, connections and their server tasks."""

from __future__ import annotations

import errno
import itertools
import sys
from typing import Any

import anyio

from ._pipe import DEFAULT_BUFFER_SIZE, Pipe
from ._records import Call, Calls
from ._runtime import Spawned, current_call_soon, spawn
from ._session import ConnectionLost, ServerSession
from ._targets import Target, as_target
from ._url import URL, AnyURL, Pattern, PatternLike

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup  # noqa: F401

_ports = itertools.count(50000)


def _client_address() -> tuple[str, int]:
    """A made-up local address for the client end, distinct per connection."""
    return ("127.0.0.1", 50000 + (next(_ports) - 50000) % 15000)


class Route:
    """A pattern and the target that serves the URLs it matches."""

    def __init__(self, pattern: Pattern, target: Target) -> None:
        self.pattern = pattern
        self.target = target
        #: Every connection this route served, oldest first.
        self.calls = Calls()
        #: Exceptions raised by the target (handler or app) while serving.
        self.errors: list[BaseException] = []

    @property
    def call_count(self) -> int:
        """How many connections this route served."""
        return len(self.calls)

    @property
    def called(self) -> bool:
        """True if this route served at least one connection."""
        return bool(self.calls)

    def __repr__(self) -> str:
        return f"<Route {self.pattern!r} -> {self.target!r}>"


PASS_THROUGH = object()


class _Live:
    __slots__ = ("session", "task")

    def __init__(self, session: ServerSession) -> None:
        self.session = session
        self.task: Spawned | None = None


class Network:
    """Routes WebSocket URLs to in-memory servers.

    Routes are tried in the order they were added; the first match serves the
    connection. A route added while connections are live applies to new ones.
    """

    def __init__(
        self, *, buffer_size: int = DEFAULT_BUFFER_SIZE, raise_server_errors: bool = True, shutdown_timeout: float = 5.0
    ) -> None:
        if buffer_size <= 0:
            raise ValueError("buffer_size must be a positive number of bytes")
        self.routes: list[Route] = []
        self._pass_through: list[Pattern] = []
        self.buffer_size = buffer_size
        self.raise_server_errors = raise_server_errors
        self.shutdown_timeout = shutdown_timeout
        #: Exceptions raised by targets, in the order they happened.
        self.errors: list[BaseException] = []
        self._live: set[_Live] = set()
        self._reported = 0

    def route(self, pattern: PatternLike, target: Any, **options: Any) -> Route:
        """Serve URLs matching ``pattern`` with ``target`` (a handler or an ASGI app).

        ``options`` go to :class:`~wsfake.Handler` or :class:`~wsfake.ASGI`
        (e.g. ``subprotocols=["chat"]``, ``process_request=...``).
        """
        route = Route(Pattern(pattern), as_target(target, **options))
        self.routes.append(route)
        return route

    def route_all(self, target: Any, **options: Any) -> Route:
        """Serve every ws:// and wss:// URL with ``target``."""
        route = Route(AnyURL(), as_target(target, **options))
        self.routes.append(route)
        return route

    def pass_through(self, pattern: PatternLike) -> None:
        """Let URLs matching ``pattern`` use the real network."""
        self._pass_through.append(Pattern(pattern))

    def resolve(self, url: URL) -> Route | object | None:
        """The route serving ``url``, :data:`PASS_THROUGH`, or None if nothing matches."""
        for route in self.routes:
            if route.pattern.matches(url):
                return route
        for pattern in self._pass_through:
            if pattern.matches(url):
                return PASS_THROUGH
        return None

    @property
    def connections(self) -> int:
        """Connections whose server side is still running."""
        return len(self._live)

    async def open(self, route: Route, url: URL, request_url: str) -> Pipe:
        """Create a pipe to ``route``'s target and start serving its server end.

        If the target cannot start (an ASGI lifespan startup failed), the
        connection is refused, as it would be by a server that never started.
        """
        try:
            await route.target.prepare()
        except Exception as exc:
            if not any(error is exc for error in self.errors):
                route.errors.append(exc)
                self.errors.append(exc)
            raise ConnectionRefusedError(
                errno.ECONNREFUSED,
                f"wsfake: connection to {request_url} refused: {route.target!r} failed to start ({exc})",
            ) from exc
        pipe = Pipe(
            current_call_soon(),
            buffer_size=self.buffer_size,
            client_address=_client_address(),
            server_address=(url.host, url.port),
        )
        call = Call(url=request_url, target=repr(route.target))

        def report(exc: BaseException) -> None:
            route.errors.append(exc)
            self.errors.append(exc)

        call._report = report
        route.calls.append(call)
        stream = pipe.server_stream()
        target = route.target
        session = ServerSession(
            stream,
            call,
            max_size=target.max_size,
            compression=target.compression,
            flavor=target.flavor,
        )
        live = _Live(session)
        self._live.add(live)

        async def serve() -> None:
            try:
                await route.target.serve(
                    session, call, scheme=url.scheme, client=pipe.client_address, server=pipe.server_address
                )
            except anyio.get_cancelled_exc_class():
                session.abort()
                raise
            except ConnectionLost:
                pass  # the client left; a real server would not report that either
            except Exception as exc:
                if call.error is not exc:
                    call._failed(exc)
            finally:
                stream.close()
                self._live.discard(live)

        live.task = spawn(serve, f"wsfake server {request_url}")
        return pipe

    async def aclose(self) -> None:
        """Close live connections with 1001, wait for their server tasks, run lifespan shutdown.

        Connections still in the opening handshake with their client present are
        cancelled at once. Open ones get a 1001 close frame; they, and handshakes
        whose client already left (the server may still be reacting to that, as
        an ASGI app receiving its disconnect), get ``shutdown_timeout`` seconds
        to finish before their tasks are cancelled.
        """
        live = list(self._live)
        for item in live:
            if item.session.open:
                try:
                    await item.session.send_close(1001, "")
                except Exception:
                    item.session.abort()
            elif item.session.connecting and not item.session.stream.pipe.client_gone and item.task is not None:
                item.task.cancel()
        with anyio.move_on_after(self.shutdown_timeout):
            for item in live:
                if item.task is not None:
                    await item.task.wait()
        for item in live:
            if item.task is not None and not item.task.done:
                item.task.cancel()
                await item.task.wait()
        for route in self.routes:
            try:
                await route.target.aclose()
            except Exception as exc:
                self.errors.append(exc)

    def close(self) -> None:
        """Synchronous close: drop live connections and cancel their server tasks."""
        for item in list(self._live):
            item.session.abort()
            if item.task is not None:
                item.task.cancel()
        for route in self.routes:
            route.target.close_now()

    def raise_errors(self) -> None:
        """Raise the target errors not reported yet (one, or an ExceptionGroup)."""
        new = self.errors[self._reported :]
        self._reported = len(self.errors)
        if not new or not self.raise_server_errors:
            return
        if len(new) == 1:
            raise new[0]
        raise ExceptionGroup(f"wsfake: {len(new)} server-side errors", [e for e in new if isinstance(e, Exception)])

    def describe_routes(self) -> list[str]:
        return [repr(route.pattern) for route in self.routes]
