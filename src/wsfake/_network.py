"""The in-memory network: routes, connections, the loops that serve them, and stopping.

A :class:`Network` routes WebSocket URLs to targets. Each connection's server
side runs on a :class:`~wsfake._host.Host`: the loop of the client that opened
it, or, for threaded clients, a loop in a background thread the network starts
on first need. A network serves any number of loops, one after the other or at
once; per-loop state (an ASGI app's lifespan) lives with each loop's host.

Stopping follows uvicorn's order: stop accepting (a reconnecting client is
refused), close live connections (the target's shutdown close: 1012 for ASGI,
1001 for handlers), wait for their tasks (``shutdown_timeout``), then run
lifespan shutdown.
"""

from __future__ import annotations

import errno
import sys
import threading
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ._exceptions import ClientDepartureWarning, DeadlineExceeded, ShadowedRouteWarning, add_note
from ._faults import DirectionName, Faults, Rejection, _check_direction, _check_times, check_delivery
from ._host import EventLike, Host, HostGone, PortalHost, Spawned, Timer, current_host_key, new_host_for_current_loop
from ._pipe import DEFAULT_BUFFER_SIZE, Pipe
from ._records import DEFAULT_KEEP_CALLS, Call, Calls
from ._session import ServerSession, Sink
from ._targets import Target, as_target
from ._url import URL, AnyURL, Pattern, PatternLike, socket_addresses

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

if TYPE_CHECKING:
    from ._mock import MockServer


class Route:
    """A pattern and the target that serves the URLs it matches."""

    def __init__(self, pattern: Pattern, target: Target, *, keep_calls: int | None = DEFAULT_KEEP_CALLS) -> None:
        self.pattern = pattern
        self.target = target
        #: The connections this route served, oldest first (the most recent ``keep_calls``).
        self.calls = Calls(keep_calls)
        #: Exceptions raised by the target (handler or app) while serving.
        self.errors: list[BaseException] = []
        #: What the next connections suffer (see :meth:`refuse`, :meth:`latency`, ...).
        self.faults = Faults()

    @property
    def call_count(self) -> int:
        """How many connections this route served (all of them, also those no longer kept in :attr:`calls`)."""
        return self.calls.total

    @property
    def called(self) -> bool:
        """True if this route served at least one connection."""
        return self.calls.total > 0

    def __repr__(self) -> str:
        return f"<Route {self.pattern!r} -> {self.target!r}>"

    # Faults, for the next connections

    def refuse(self, times: int = 1) -> Route:
        """Refuse the next ``times`` connections as a closed port does (each client library's own error)."""
        _check_times(times)
        self.faults.refuse += times
        return self

    def reject(
        self,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | str = b"",
        *,
        times: int | None = 1,
    ) -> Route:
        """Answer the next ``times`` handshakes (None: all of them) with this HTTP response instead of 101."""
        _check_times(times)
        if not (isinstance(status, int) and 100 <= status < 600) or status == 101:
            raise ValueError(f"status must be an HTTP status other than 101, not {status!r}")
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
        rejection = Rejection(status, items, body.encode() if isinstance(body, str) else bytes(body))
        if times is None:
            self.faults.reject_always = rejection
        else:
            self.faults.rejections.extend([rejection] * times)
        return self

    def stall_handshake(self, *, times: int | None = None) -> Route:
        """Read the next upgrade requests and never answer them (the client's open timeout must fire)."""
        _check_times(times)
        self.faults.stall = None if times is None else (self.faults.stall or 0) + times
        return self

    def drop_after(
        self,
        *,
        messages: int | None = None,
        bytes: int | None = None,
        direction: DirectionName = "to_client",
    ) -> Route:
        """Cut the next connections after ``messages`` complete messages (or ``bytes`` bytes) in ``direction``.

        Both count after the opening handshake (0: cut right after it). The cut is
        abrupt: no close frame; both sides see the connection reset.
        """
        if (messages is None) == (bytes is None):
            raise ValueError("drop_after needs exactly one of messages=N or bytes=N")
        _check_direction(direction)
        check_delivery(messages=messages, nbytes=bytes)
        for faults in self.faults.directions(direction):
            faults.drop_messages, faults.drop_bytes = messages, bytes
        return self

    def latency(self, seconds: float, *, direction: DirectionName = "both") -> Route:
        """Deliver every write ``seconds`` later (on the loop's clock), in order."""
        _check_direction(direction)
        check_delivery(seconds=seconds)
        for faults in self.faults.directions(direction):
            faults.latency = seconds
        return self

    def bandwidth(self, bytes_per_second: float, *, direction: DirectionName = "both") -> Route:
        """Deliver no faster than ``bytes_per_second``."""
        _check_direction(direction)
        check_delivery(bytes_per_second=bytes_per_second)
        for faults in self.faults.directions(direction):
            faults.bandwidth = bytes_per_second
        return self

    def chunked(
        self, size: int | Literal["random"] = 1, *, seed: int | None = 0, direction: DirectionName = "both"
    ) -> Route:
        """Split every write into pieces of ``size`` bytes (or seeded random sizes), one per loop iteration."""
        _check_direction(direction)
        check_delivery(size=size)
        for faults in self.faults.directions(direction):
            faults.chunk, faults.seed = size, seed
        return self

    def clear_faults(self) -> Route:
        """Serve the next connections normally again."""
        self.faults = Faults()
        return self


PASS_THROUGH = object()


#: Seconds server code gets to finish once its stuck connection was closed at exit, before it is cancelled.
_GRACE_AFTER_CLOSE = 1.0


class _Live:
    """A connection whose server side is running: its session and its task, if it started one."""

    __slots__ = ("session", "sink", "task")

    def __init__(self, session: ServerSession) -> None:
        self.session = session
        self.sink: Sink | None = None
        self.task: Spawned | None = None


class _HostState:
    """What a network keeps per loop: the host, its live connections and the targets prepared there."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.live: set[_Live] = set()
        self.targets: list[Target] = []
        self.watchdog: Timer | None = None
        #: Set when a live connection finishes, for a stop waiting on connections without a task.
        self.changed: EventLike | None = None
        self.last_activity = -1
        self.idle_since = 0.0
        #: Client ends used from other threads, woken when this host stops.
        self.ends: weakref.WeakSet[Any] = weakref.WeakSet()


class Network:
    """Routes WebSocket URLs to in-memory servers.

    Routes are tried in the order they were added; the first match serves the
    connection. A route added while connections are live applies to new ones.

    ``deadline`` (seconds, default None: off; the pytest plugin sets one): when
    nothing moved on any connection for that long, the stuck connections are
    reported with who waits for what, cut (waking any client blocked on them),
    and :class:`~wsfake.DeadlineExceeded` is raised when the context exits.

    ``raise_server_errors`` (default True): exceptions raised by targets are
    raised when the patch context exits (attached to the body's own exception
    if it raised one). ``raise_departure_errors`` (default False): exceptions
    that only mirror the client's normal departure are reported with
    :class:`~wsfake.ClientDepartureWarning` instead. ``keep_calls``: how many
    calls each route keeps with full records (``None``: all).
    """

    def __init__(
        self,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        raise_server_errors: bool = True,
        raise_departure_errors: bool = False,
        shutdown_timeout: float = 5.0,
        keep_calls: int | None = DEFAULT_KEEP_CALLS,
        deadline: float | None = None,
    ) -> None:
        if buffer_size <= 0:
            raise ValueError("buffer_size must be a positive number of bytes")
        if keep_calls is not None and keep_calls < 1:
            raise ValueError("keep_calls must be a positive number of calls, or None to keep them all")
        self.routes: list[Route] = []
        self._pass_through: list[Pattern] = []
        self.buffer_size = buffer_size
        self.raise_server_errors = raise_server_errors
        self.raise_departure_errors = raise_departure_errors
        self.shutdown_timeout = shutdown_timeout
        self.keep_calls = keep_calls
        #: Exceptions raised by targets, in the order they happened.
        self.errors: list[BaseException] = []
        #: Exceptions that only mirrored the client's normal departure (reported as warnings).
        self.departures: list[BaseException] = []
        self._reported = 0
        self._departures_reported = 0
        self._hosts: dict[object, _HostState] = {}
        self._portal: PortalHost | None = None
        self._lock = threading.Lock()
        self.closing = False
        #: URLs no active network routes use the real network (the pytest fallback's networks only).
        self.pass_unrouted = False
        if deadline is not None and not deadline > 0:
            raise ValueError("deadline must be a positive number of seconds, or None for none")
        #: Seconds without progress on any connection after which the stuck ones are reported and cut.
        self.deadline = deadline
        #: The DeadlineExceeded this network reported, if any.
        self.deadline_exceeded: DeadlineExceeded | None = None
        #: Called (on the loop that noticed) when the deadline passes: the pytest plugin stops the test there.
        self.on_deadline: list[Callable[[DeadlineExceeded], object]] = []

    # Routes

    def route(self, pattern: PatternLike, target: Any, **options: Any) -> Route:
        """Serve URLs matching ``pattern`` with ``target`` (a handler or an ASGI app).

        ``options`` go to :class:`~wsfake.Handler` or :class:`~wsfake.ASGI`
        (e.g. ``subprotocols=["chat"]``, ``process_request=...``).
        """
        return self._add(Route(Pattern(pattern), as_target(target, **options), keep_calls=self.keep_calls))

    def route_all(self, target: Any, **options: Any) -> Route:
        """Serve every ws:// and wss:// URL with ``target``."""
        return self._add(Route(AnyURL(), as_target(target, **options), keep_calls=self.keep_calls))

    def _add(self, route: Route) -> Route:
        for earlier in self.routes:
            if earlier.pattern.shadows(route.pattern):
                warnings.warn(
                    ShadowedRouteWarning(
                        f"wsfake: route {route.pattern!r} can never serve a connection: the earlier route "
                        f"{earlier.pattern!r} matches every URL it matches (routes are tried in order; add the "
                        "more specific one first)"
                    ),
                    stacklevel=3,
                )
                break
        self.routes.append(route)
        return route

    def mock(
        self, pattern: PatternLike, *, json: bool = False, subprotocols: Iterable[str] | None = None, **options: Any
    ) -> MockServer:
        """Serve ``pattern`` with a new :class:`~wsfake.MockServer` that the test scripts; returns it.

        ``server.route`` is its route, for faults (``server.route.refuse(times=2)``).
        """
        from ._mock import MockServer

        spec = repr(Pattern(pattern))
        for route in self.routes:
            if isinstance(route.target, MockServer) and repr(route.pattern) == spec:
                raise ValueError(
                    f"a MockServer already serves {spec} in this network: use the one net.mock() returned "
                    "(or a fresh network per test, as the wsfake fixture gives)"
                )
        server = MockServer(json=json, subprotocols=subprotocols, **options)
        server.route = self.route(pattern, server)
        return server

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

    def claims(self, scheme: str | None, host: str, port: int) -> Route | object | None:
        """Who takes a connection to ``host:port`` whose path is not known yet.

        A route that covers the address (its path is then matched when the
        request arrives), :data:`PASS_THROUGH`, or None. Routes win over
        pass-through, as in :meth:`resolve`; an uncertain answer (a regex or a
        predicate) counts after the certain ones.
        """
        uncertain: Route | object | None = None
        for route in self.routes:
            covered = route.pattern.covers(scheme, host, port)
            if covered:
                return route
            if covered is None and uncertain is None:
                uncertain = route
        for pattern in self._pass_through:
            covered = pattern.covers(scheme, host, port)
            if covered:
                return PASS_THROUGH if uncertain is None else uncertain
            if covered is None and uncertain is None:
                uncertain = PASS_THROUGH
        return uncertain

    def describe_routes(self) -> list[str]:
        return [repr(route.pattern) for route in self.routes]

    @property
    def connections(self) -> int:
        """Connections whose server side is still running, on every loop."""
        return sum(len(state.live) for state in list(self._hosts.values()))

    # Opening connections

    def _state_for(self, host_key: object) -> _HostState:
        state = self._hosts.get(host_key)
        if state is None or not state.host.alive:
            state = self._hosts[host_key] = _HostState(new_host_for_current_loop())
        return state

    def current_host(self) -> Host:
        """The host for the loop running in this thread (created on first use)."""
        key = current_host_key()
        if key is None:
            raise RuntimeError("wsfake needs a running asyncio or trio event loop here")
        return self._state_for(key).host

    def portal(self) -> PortalHost:
        """The background loop that serves threaded clients (started on first need)."""
        with self._lock:
            if self._portal is None:
                self._portal = PortalHost()
                self._hosts[self._portal.key] = _HostState(self._portal)
            return self._portal

    async def open(self, route: Route | None, url: URL, *, address: tuple[str, int] | None = None) -> Pipe:
        """Open a connection on the current loop: a pipe whose server end ``route`` serves.

        ``route`` None dispatches on the request path when it arrives (for clients
        whose hook only sees the host and port). If the target cannot start (an
        ASGI lifespan startup failed), the connection is refused, as by a server
        that never started.
        """
        state = self._state_for(current_host_key())
        return await self._open_on(state, route, url, address)

    def open_from_thread(
        self, route: Route | None, url: URL, make_end: Callable[[Pipe], Any], timeout: float | None
    ) -> Any:
        """Open a connection served on the portal loop, from a thread; returns ``make_end(pipe)`` built there."""
        portal = self.portal()
        state = self._hosts[portal.key]

        async def open_and_attach() -> Any:
            pipe = await self._open_on(state, route, url, None)
            end = make_end(pipe)
            state.ends.add(end)
            return end

        return portal.run_blocking(open_and_attach, timeout)

    async def _open_on(self, state: _HostState, route: Route | None, url: URL, address: tuple[str, int] | None) -> Pipe:
        if self.closing:
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"wsfake: connection to {url} refused: the server is stopping (context exiting)"
            )
        host = state.host
        if route is not None and route.faults.take_refusal():
            call = self._new_call(route, url)
            call._note("fault: connection refused")
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"Connect call failed {(url.host, url.port)} (wsfake fault)"
            )
        if route is not None:
            await self._prepare(state, route)
        client_address, server_address = socket_addresses(*(address or (url.host, url.port)))
        pipe = Pipe(host, buffer_size=self.buffer_size, client_address=client_address, server_address=server_address)
        if route is None:
            self._dispatch(state, pipe, url)
        else:
            self._serve(state, route, pipe, url)
        return pipe

    async def _prepare(self, state: _HostState, route: Route) -> None:
        target = route.target
        try:
            await target.prepare(state.host)
        except Exception as exc:
            self._record_error(route, exc)
            raise ConnectionRefusedError(
                errno.ECONNREFUSED,
                f"wsfake: connection to {route.pattern!r} refused: {target!r} failed to start ({exc})",
            ) from exc
        if target not in state.targets:
            state.targets.append(target)

    def _record_error(self, route: Route, exc: BaseException) -> None:
        if not any(error is exc for error in self.errors):
            route.errors.append(exc)
            self.errors.append(exc)

    def _new_call(self, route: Route, url: URL) -> Call:
        call = Call(url=str(url), target=repr(route.target))
        call._report = lambda exc: self._record_error(route, exc)
        call._report_departure = self.departures.append
        route.calls.append(call)
        return call

    def _serve(self, state: _HostState, route: Route, pipe: Pipe, url: URL) -> None:
        target = route.target
        session = ServerSession(
            pipe,
            state.host,
            self._new_call(route, url),
            target.conventions,
            scheme=url.scheme,
            max_size=target.max_size,
            compression=target.compression,
            close_timeout=target.close_timeout,
            write_limit=getattr(target, "write_limit", 2**16),
        )
        live = _Live(session)
        state.live.add(live)
        route.faults.apply(pipe, state.host, session.call._note)
        live.sink = sink = self._faulty_sink(route, session) or target.open(
            session, lambda task: self._track_task(state, live, task)
        )
        session.on_finished = lambda: self._maybe_done(state, live)
        session.start(sink)
        self._watch(state)

    # The deadline

    def _watch(self, state: _HostState) -> None:
        if self.deadline is None or state.watchdog is not None:
            return
        state.idle_since = state.host.time()
        state.last_activity = -1
        state.watchdog = state.host.call_later(min(self.deadline / 4, 1.0), lambda: self._check(state))

    def _check(self, state: _HostState) -> None:
        state.watchdog = None
        if self.deadline is None or not state.live or self.deadline_exceeded is not None:
            return
        now = state.host.time()
        activity = sum(live.session.pipe.activity for live in state.live) + len(state.live)
        if activity != state.last_activity:
            state.last_activity, state.idle_since = activity, now
        elif now - state.idle_since >= self.deadline:
            self._deadline_passed(state, now - state.idle_since)
            return
        state.watchdog = state.host.call_later(min(self.deadline / 4, 1.0), lambda: self._check(state))

    def _deadline_passed(self, state: _HostState, idle: float) -> None:
        lines = []
        for live in sorted(state.live, key=lambda item: item.session.call.started):
            session = live.session
            lines.append(f"  {session.call.url}: {_who_waits(live)}")
            session.call._note(f"deadline: nothing moved for {idle:.1f} s; the connection was cut")
        calls = "\n\n".join(live.session.call.format_transcript() for live in state.live)
        exc = DeadlineExceeded(
            f"wsfake: nothing moved on any connection for {idle:.1f} s (deadline {self.deadline} s); stuck:\n"
            + "\n".join(lines)
            + f"\ntranscripts:\n{calls}"
        )
        self.deadline_exceeded = exc
        self.errors.append(exc)
        for live in list(state.live):
            # What the server code raises once its connection is cut is a consequence of the cut: it is shown
            # with the deadline's report, never raised on its own (a later teardown would report it twice).
            live.session.call._report = lambda error: attach_server_errors(exc, [error])
            live.session.pipe.reset()
            live.session.close_transport()
        for callback in list(self.on_deadline):
            callback(exc)

    def _faulty_sink(self, route: Route, session: ServerSession) -> Sink | None:
        """A handshake fault for this connection: an HTTP answer instead of the upgrade, or none at all."""
        rejection = route.faults.take_rejection()
        if rejection is not None:
            return _Reject(session, rejection)
        if route.faults.take_stall():
            return _Stall(session)
        return None

    def _track_task(self, state: _HostState, live: _Live, task: Spawned) -> None:
        live.task = task
        task.add_done_callback(lambda: self._maybe_done(state, live))

    def _maybe_done(self, state: _HostState, live: _Live) -> None:
        if live.session.finished and (live.task is None or live.task.done):
            state.live.discard(live)
            live.session.detach()
            live.sink = live.task = None  # the target's connection keeps a callback that refers to ``live``
            if state.changed is not None:
                state.changed.set()

    def _dispatch(self, state: _HostState, pipe: Pipe, url: URL) -> None:
        """Serve a connection whose path is only known once the request arrives."""
        network = self
        placeholder = Route(AnyURL(), _Dispatching(), keep_calls=1)
        session = ServerSession(
            pipe,
            state.host,
            Call(url=str(url)),
            placeholder.target.conventions,
            scheme=url.scheme,
            max_size=None,
            compression=False,
        )
        live = _Live(session)
        state.live.add(live)

        class Dispatcher(Sink):
            def on_request(self) -> None:
                full = URL(url.scheme, url.host, url.port, *_split_target(session.target))
                found = network.resolve(full)
                if not isinstance(found, Route):
                    call = session.call
                    call.url = str(full)
                    network.errors.append(_no_route_after_connect(full, network.describe_routes()))
                    session.abort()
                    return
                route = found
                session.pause_reading()

                async def prepare_then_serve() -> None:
                    try:
                        await network._prepare(state, route)
                    except ConnectionRefusedError:
                        session.abort()
                        return
                    target = route.target
                    session.call = network._new_call(route, full)
                    session.call._requested(*_request_info(session))
                    session.conventions = target.conventions
                    session.max_size, session.max_fragment = (
                        target.max_size if isinstance(target.max_size, tuple) else (target.max_size, None)
                    )
                    session.compression = target.compression
                    session.close_timeout = target.close_timeout
                    live.sink = sink = target.open(session, lambda task: network._track_task(state, live, task))
                    session.sink = sink
                    sink.on_request()
                    session.resume_reading()

                live.task = state.host.spawn(prepare_then_serve, f"wsfake dispatch {url}")

        session.on_finished = lambda: network._maybe_done(state, live)
        session.start(Dispatcher())

    # Stopping

    async def aclose(self) -> None:
        """Stop serving: refuse new connections, close live ones, wait for them, run lifespan shutdown.

        Open connections get the target's shutdown close (ASGI 1012, handlers
        1001), whose server code hears it at once; connections still in their
        handshake get the server's shutdown answer (500 / 503); those whose closing
        handshake is over and only wait for the client's EOF end now. Their tasks get
        ``shutdown_timeout`` seconds to finish. A connection whose client never
        finished the closing handshake is then ended as the server's
        ``close_timeout`` would end it (its server code sees it closed) and gets
        a moment more; what still runs is cancelled. Loops in other threads (the
        portal of threaded clients) are stopped from here.
        """
        self.closing = True
        here = current_host_key()
        for key, state in list(self._hosts.items()):
            if key == here:
                await self._stop_host(state)
            else:
                self._stop_elsewhere(state)
        self._stop_portal()
        self._hosts.clear()
        self.closing = False

    def close(self) -> None:
        """Stop serving from synchronous code.

        Loops in other threads are stopped and waited for. The loop running in
        this thread, if any (a ``with`` block inside async code), cannot be
        awaited: its connections get the same shutdown close frames at once and
        their tasks finish on the loop's next turns.
        """
        self.closing = True
        here = current_host_key()
        for key, state in list(self._hosts.items()):
            if key == here:
                self._stop_host_now(state)
            else:
                self._stop_elsewhere(state)
        self._stop_portal()
        self._hosts.clear()
        self.closing = False

    def _stop_elsewhere(self, state: _HostState) -> None:
        host = state.host
        if not host.alive:
            return  # the loop has ended; its tasks and lifespan were wound down with it
        try:
            host.run_blocking(lambda: self._stop_host(state), timeout=self.shutdown_timeout + 5)
        except HostGone:
            pass
        except TimeoutError as exc:  # pragma: no cover - a loop blocked elsewhere
            self.errors.append(exc)

    def _stop_portal(self) -> None:
        with self._lock:
            portal, self._portal = self._portal, None
        if portal is not None:
            state = self._hosts.get(portal.key)
            portal.stop()
            for end in list(state.ends) if state is not None else []:
                end.abandon()

    async def _stop_host(self, state: _HostState) -> None:
        if state.watchdog is not None:
            state.watchdog.cancel()
            state.watchdog = None
        live = list(state.live)
        for item in live:
            if item.session.waiting_for_eof:
                # Nothing the server code can observe is left but the client's EOF, which a client that
                # never closes its socket never sends: end it now rather than after close_timeout.
                item.session.expire_close_timeout()
            _shutdown(item)
        tasks = [item.task for item in live if item.task is not None and not item.task.done]
        patience = self.shutdown_timeout
        if self.deadline_exceeded is not None and self.deadline is not None:
            patience = min(patience, self.deadline)  # the stuck connections were cut: they get a deadline more
        with anyio.move_on_after(patience):
            for task in tasks:
                if _waits_forever(task, live):
                    task.cancel()
                await task.wait()
            await self._settle(state, live)
        stuck = [item for item in live if not _stopped(item)]
        if stuck:
            # Connections whose client never finished closing end as close_timeout would end
            # them (the server code sees the connection closed, not a cancellation), sooner.
            for item in stuck:
                item.session.expire_close_timeout()
            with anyio.move_on_after(min(patience, _GRACE_AFTER_CLOSE)):
                for item in stuck:
                    if item.task is not None:
                        await item.task.wait()
                await self._settle(state, stuck)
        for task in tasks:
            if not task.done:
                task.cancel()
                await task.wait()
        for item in live:
            if item.task is None and not item.session.finished:
                item.session.abort()  # a mock's connection still closing: cut, as a stopped server would
        for target in state.targets:
            try:
                await target.aclose(state.host)
            except Exception as exc:
                self.errors.append(exc)
        state.targets.clear()

    async def _settle(self, state: _HostState, items: list[_Live]) -> None:
        """Wait until the connections among ``items`` that run no task (a mock's) have finished."""
        while any(item.task is None and not item.session.finished for item in items):
            state.changed = changed = state.host.event()
            try:
                await changed.wait()
            finally:
                state.changed = None

    def _stop_host_now(self, state: _HostState) -> None:
        if state.watchdog is not None:
            state.watchdog.cancel()
            state.watchdog = None
        for item in list(state.live):
            if item.session.waiting_for_eof:
                item.session.expire_close_timeout()
            _shutdown(item)
        for target in state.targets:
            target.stop(state.host)
        state.targets.clear()

    # Reporting

    def report(self, body_exc: BaseException | None = None) -> None:
        """Report what the targets raised since the last report.

        Departure echoes become :class:`~wsfake.ClientDepartureWarning` (errors with
        ``raise_departure_errors``). Errors are raised (one, or an ExceptionGroup)
        unless ``raise_server_errors`` is False; if the body of the context raised
        ``body_exc``, they are attached to it as notes instead, so the body's own
        failure is the one the test reports.
        """
        departures = self.departures[self._departures_reported :]
        self._departures_reported = len(self.departures)
        errors = self.errors[self._reported :]
        self._reported = len(self.errors)
        if self.raise_departure_errors:
            errors = errors + departures
        else:
            for exc in departures:
                warnings.warn(
                    ClientDepartureWarning(
                        f"wsfake: the server raised {type(exc).__name__}({exc}) only because the client left "
                        "normally (or the server stopped); a real server logs this and goes on. "
                        "Catch it in the server code, or pass raise_departure_errors=True to fail on it."
                    ),
                    stacklevel=3,
                )
        deadline = self.deadline_exceeded
        if deadline is not None and any(error is deadline for error in errors):
            # The test hung: that is the failure to report, whatever the body raised after the cut.
            self.deadline_exceeded = None
            others = [error for error in errors if error is not deadline]
            if others and self.raise_server_errors:
                attach_server_errors(deadline, others)
            if body_exc is deadline:
                return
            raise deadline from body_exc
        if not errors or not self.raise_server_errors:
            return
        if body_exc is not None:
            attach_server_errors(body_exc, errors)
            return
        if len(errors) == 1:
            raise errors[0]
        raise ExceptionGroup(
            f"wsfake: {len(errors)} server-side errors", [e for e in errors if isinstance(e, Exception)]
        )

    def raise_errors(self) -> None:
        """Raise the target errors not reported yet (one, or an ExceptionGroup)."""
        self.report()


def attach_server_errors(exc: BaseException, errors: list[BaseException]) -> None:
    """Attach each server error, with its traceback, to ``exc`` as a note (PEP 678)."""
    for error in errors:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
        add_note(exc, f"wsfake: meanwhile the server raised:\n{text}")


def _who_waits(live: _Live) -> str:
    """Who waits for what on a stuck connection, in words."""
    session = live.session
    parts = []
    if session.request is None and not session.raw_headers:
        parts.append("the client has not sent its upgrade request")
    if live.sink is not None and (server := live.sink.waiting()):
        parts.append(server)
    if session.answered and session.pipe.client_waiting:
        parts.append("nothing is on its way to the client (if it reads, it waits for the server)")
    return "; ".join(parts) or "no side is known to wait"


def _shutdown(item: _Live) -> None:
    sink = item.sink
    shutdown = getattr(sink, "shutdown", None)
    if shutdown is not None:
        shutdown()
    elif not item.session.finished:
        item.session.close_transport()


def _stopped(item: _Live) -> bool:
    """True once a connection's task has finished, or (without a task) its session has."""
    return item.task.done if item.task is not None else item.session.finished


def _waits_forever(task: Spawned, live: list[_Live]) -> bool:
    """True if the task's app waits for an event after its last disconnect (uvicorn would wait forever)."""
    for item in live:
        if item.task is task:
            return bool(getattr(item.sink, "waiting_after_disconnect", False))
    return False


def _split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path or "/", query


def _request_info(session: ServerSession) -> tuple[list[tuple[str, str]], list[str]]:
    from ._handshake import offered_subprotocols

    headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in session.raw_headers]
    return headers, offered_subprotocols(headers)


def _no_route_after_connect(url: URL, routes: list[str]) -> Exception:
    from ._exceptions import NoRoute

    return NoRoute(
        str(url),
        routes,
        f"wsfake: no route matches {url} (routes: {', '.join(routes) or 'none'}). The client library opened the "
        "connection before its path was known, so wsfake reset it when the request arrived. Add a route for this "
        "path, or route the whole host and port.",
    )


class _Reject(Sink):
    """Answers the upgrade request with a configured HTTP response (a ``reject`` fault)."""

    def __init__(self, session: ServerSession, rejection: Rejection) -> None:
        self.session = session
        self.rejection = rejection

    def on_request(self) -> None:
        rejection = self.rejection
        self.session.call._note(f"fault: handshake rejected with HTTP {rejection.status}")
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in rejection.headers]
        self.session.reject(rejection.status, headers, rejection.body)


class _Stall(Sink):
    """Reads the upgrade request and never answers it (a ``stall_handshake`` fault)."""

    def __init__(self, session: ServerSession) -> None:
        self.session = session

    def waiting(self) -> str:
        return "the handshake is stalled on purpose (route.stall_handshake())"

    def on_request(self) -> None:
        self.session.call._note("fault: handshake read, never answered")

    def shutdown(self) -> None:
        self.session.close_transport()


class _Dispatching(Target):
    """Placeholder target while a connection's path is unknown."""

    max_size = None
    compression = False
    close_timeout = None

    def __init__(self) -> None:
        from ._conventions import websockets_conventions

        self.conventions = websockets_conventions()


__all__ = ["PASS_THROUGH", "Network", "Route", "attach_server_errors"]
