"""A scripted server for testing client code: the test says what the server does, step by step.

:class:`MockServer` is a target like an app or a handler, but nothing runs on
its own: each connection is accepted (or rejected, if the test asked) and then
waits for the test to ``receive``, ``expect``, ``send``, ``ping``, ``close`` or
``drop``. Everything the client sends is kept, in order, until the test asks
for it; nothing is lost. The same object works in async tests (asyncio or trio:
``await conn.receive()``) and in plain sync tests with threaded clients
(``conn.receive()`` blocks), wherever the connection is served: each method
waits in the caller's own way and acts on the connection's loop.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json as json_module
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from ._closed import closed_exception
from ._conventions import websockets_conventions
from ._exceptions import add_note
from ._handshake import NegotiationError, failed, offered_subprotocols, select_subprotocol
from ._host import Host, Spawned, current_backend
from ._session import ConnectionLost, ServerSession, Sink
from ._targets import Target

T = TypeVar("T")

#: How long a mock waits by default for what the test expects.
DEFAULT_TIMEOUT = 10.0


class Signal:
    """Wakes waiters in any thread, on any loop, when something changed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._waiters: list[Callable[[], object]] = []

    def notify(self) -> None:
        with self.lock:
            waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    async def wait_for(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait on the running loop (asyncio or trio) until ``ready()``, at most ``timeout`` seconds."""
        import anyio

        with anyio.move_on_after(timeout):
            while True:
                event = anyio.Event()
                wake = _waker(event.set)
                with self.lock:
                    if ready():
                        return True
                    self._waiters.append(wake)
                await event.wait()
        with self.lock:
            return ready()

    def wait_for_blocking(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Block this thread until ``ready()``, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            event = threading.Event()
            with self.lock:
                if ready():
                    return True
                self._waiters.append(event.set)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not event.wait(remaining):
                with self.lock:
                    return ready()


def _waker(set_event: Callable[[], object]) -> Callable[[], object]:
    """A function that sets an event of the running loop from any thread."""
    if current_backend() == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()
        thread = threading.get_ident()

        def wake_trio() -> None:
            if threading.get_ident() == thread:
                set_event()
            else:
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(set_event)

        return wake_trio
    import asyncio

    loop = asyncio.get_running_loop()

    def wake_asyncio() -> None:
        if loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            set_event()
        else:
            loop.call_soon_threadsafe(set_event)

    return wake_asyncio


def _either(run_async: Callable[[], Awaitable[T]], run_blocking: Callable[[], T]) -> Any:
    """Awaitable in async code (asyncio or trio); the result itself, blocking, in sync code."""
    if current_backend() is None:
        return run_blocking()
    return run_async()


class MockConnection(Sink):
    """One connection to a :class:`MockServer`, driven by the test."""

    def __init__(self, server: MockServer, session: ServerSession) -> None:
        self.server = server
        self._session = session
        self._host: Host = session.host
        self._signal = server._signal
        self._inbox: deque[Any] = deque()
        self._parts: list[str | bytes] = []
        self._pongs: dict[bytes, concurrent.futures.Future[float]] = {}
        self._closed = False
        self._dropped = False
        #: Every message the client sent on this connection, in order (decoded JSON with ``json=True``).
        self.messages: list[Any] = []
        #: The client's close frame as ``(code, reason)``, ``(1006, "")`` if the connection was lost without one.
        self.close_frame: tuple[int, str] | None = None
        self.url = session.call.url
        self.path = "/"
        self.query = ""
        self.headers: Any = None
        #: The subprotocols the client offered, and the one the server chose.
        self.subprotocols: list[str] = []
        self.subprotocol: str | None = None
        self.looked_at = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<wsfake MockConnection {self.url} {state}, {len(self.messages)} messages>"

    # Events from the session (on the connection's loop)

    def on_request(self) -> None:
        from ._http import make_headers

        session = self._session
        call = session.call
        self.path, _, self.query = session.target.partition("?")
        self.headers = make_headers(call.request_headers)
        self.subprotocols = offered_subprotocols(call.request_headers)
        rejection = self.server._take_rejection()
        if rejection is not None:
            status, headers, body = rejection
            session.reject(status, headers, body)
            return
        if session.request is None:
            session.reject(400, [], failed(session.handshake_error or "invalid request").encode())
            return
        try:
            self.subprotocol = self.server._choose_subprotocol(self.subprotocols)
        except NegotiationError as exc:
            session.reject(400, [], failed(str(exc)).encode())
            return
        try:
            session.accept(self.subprotocol)
        except ConnectionLost:
            return
        self.server._arrived(self)

    def on_frame(self, data: str | bytes, fin: bool) -> None:
        self._parts.append(data)
        if not fin:
            return
        parts, self._parts = self._parts, []
        message: Any = "".join(parts) if isinstance(data, str) else b"".join(parts)  # type: ignore[arg-type]
        if self.server.json:
            message = _Decoded.of(message)
        with self._signal.lock:
            self._inbox.append(message)
            self.messages.append(_value(message))
            self.server.messages.append(_value(message))
        self._signal.notify()

    def on_pong(self, payload: bytes) -> None:
        future = self._pongs.pop(payload, None)
        if future is not None and not future.done():
            future.set_result(time.monotonic())

    def on_close(self, code: int, reason: str) -> None:
        # The closing handshake is complete: the connection is closed for the test, whether or not the client
        # then closes its TCP end (a client should wait for the server to; trio-websocket never does).
        self.close_frame = (code, reason)
        self.on_closed()

    def on_closed(self) -> None:
        with self._signal.lock:
            if self._closed:
                return
            self._closed = True
            if self.close_frame is None:
                self.close_frame = (1006, "")
        for future in self._pongs.values():
            if not future.done():
                future.set_exception(self._closed_error())
        self._signal.notify()

    def waiting(self) -> str | None:
        if not self.looked_at:
            return "the mock server holds the connection, but the test never took it (server.connected())"
        return "the mock server sends only what the test tells it to (conn.send)"

    def shutdown(self) -> None:
        session = self._session
        if not session.finished:
            try:
                session.send_close(*session.conventions.shutdown_close)
            except ConnectionLost:
                session.close_transport()

    # The test's side

    @property
    def closed(self) -> bool:
        """True once the closing handshake is over, or the connection is gone (lost or dropped)."""
        return self._closed

    def _closed_error(self) -> Exception:
        session = self._session
        exc = closed_exception(session.close_rcvd, session.close_sent, session.close_rcvd_then_sent)
        if self._dropped:
            add_note(
                exc,
                "wsfake: the test dropped this connection with conn.drop(); "
                "wait for the next one with server.connected()",
            )
        return exc

    def _pop(self) -> Any:
        message = self._inbox.popleft()
        if isinstance(message, _Decoded):
            return message.value()
        return message

    def receive(self, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """The next message from the client (``await`` it in async code; it blocks in sync code).

        Messages sent before the test asked are kept, in order. Raises
        ``TimeoutError`` after ``timeout`` seconds, websockets' ``ConnectionClosed``
        if the connection closed with nothing left to receive.
        """
        self.looked_at = True

        def ready() -> bool:
            return bool(self._inbox) or self._closed

        def take(arrived: bool) -> Any:
            if self._inbox:
                return self._pop()
            if not arrived:
                raise TimeoutError(
                    f"wsfake: no message from the client within {timeout} s on {self.url}; "
                    f"received so far: {self.messages!r}"
                )
            raise self._closed_error()

        async def run_async() -> Any:
            return take(await self._signal.wait_for(ready, timeout))

        return _either(run_async, lambda: take(self._signal.wait_for_blocking(ready, timeout)))

    def expect(self, expected: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Receive the next message and assert it equals ``expected`` (or that ``expected(message)`` is true).

        On a mismatch, a timeout or a closed connection, raises ``AssertionError``
        showing what was expected and everything received so far. Returns the message.
        """
        wanted = getattr(expected, "__name__", None) if callable(expected) else repr(expected)
        so_far_before = len(self.messages)

        def check(message: Any) -> Any:
            ok = bool(expected(message)) if callable(expected) else message == expected
            if not ok:
                raise AssertionError(
                    f"wsfake: expected {wanted} from the client on {self.url}, got {message!r}; "
                    f"received so far: {self.messages!r}"
                )
            return message

        def failure(exc: BaseException) -> AssertionError:
            if isinstance(exc, TimeoutError):
                what = f"nothing came within {timeout} s"
            else:
                what = f"the connection closed ({exc})"
            new = "" if len(self.messages) == so_far_before else " (after the messages already taken)"
            return AssertionError(
                f"wsfake: expected {wanted} from the client on {self.url}, but {what}{new}; "
                f"received so far: {self.messages!r}"
            )

        async def run_async() -> Any:
            try:
                message = await self.receive(timeout)
            except (TimeoutError, Exception) as exc:
                if isinstance(exc, ValueError) and "not JSON" in str(exc):
                    raise
                raise failure(exc) from exc
            return check(message)

        def run_blocking() -> Any:
            try:
                message = self.receive(timeout)
            except (TimeoutError, Exception) as exc:
                if isinstance(exc, ValueError) and "not JSON" in str(exc):
                    raise
                raise failure(exc) from exc
            return check(message)

        return _either(run_async, run_blocking)

    def assert_nothing_received(self) -> None:
        """Assert that no message from the client is waiting to be received now."""
        with self._signal.lock:
            pending = [_value(message) for message in self._inbox]
        if pending:
            raise AssertionError(f"wsfake: {len(pending)} messages from the client were not expected: {pending!r}")

    def send(self, message: Any) -> Any:
        """Send a message to the client: str (text), bytes (binary), or with ``json=True`` any JSON value."""
        data = self.server._encode(message)
        return self._act(lambda session: session.send_message(data), drain=True)

    def ping(self, data: bytes | str = b"", timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Send a ping and wait for the client's pong; returns the round-trip time in seconds."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        future: concurrent.futures.Future[float] = concurrent.futures.Future()
        sent_at = time.monotonic()

        def send(session: ServerSession) -> None:
            self._pongs[payload] = future
            session.send_ping(payload)

        def latency(result: float) -> float:
            return result - sent_at

        async def run_async() -> float:
            await self._act_async(send)
            return latency(await _await_future(future, timeout, f"no pong within {timeout} s on {self.url}"))

        def run_blocking() -> float:
            self._act_blocking(send)
            try:
                return latency(future.result(timeout))
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"wsfake: no pong within {timeout} s on {self.url}") from None

        return _either(run_async, run_blocking)

    def close(self, code: int = 1000, reason: str = "", timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Close with ``code`` and ``reason`` and wait for the client's answer; returns its close frame."""

        def start(session: ServerSession) -> None:
            session.send_close(code, reason)

        async def run_async() -> tuple[int, str] | None:
            await self._act_async(start, allow_closed=True)
            frame: tuple[int, str] | None = await self.wait_closed(timeout)
            return frame

        def run_blocking() -> tuple[int, str] | None:
            self._act_blocking(start, allow_closed=True)
            return self.wait_closed(timeout)  # type: ignore[no-any-return]

        return _either(run_async, run_blocking)

    def drop(self) -> None:
        """Cut the connection abruptly: no close frame; the client sees it as lost (1006)."""
        self._dropped = True
        self._run_on_loop(self._cut)

    def _cut(self) -> None:
        self._session.pipe.reset()
        self._session.close_transport()

    def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Wait until the connection is closed; returns the client's close frame ``(code, reason)``, or ``(1006, "")``.

        Closed means the closing handshake is over (close frames both ways) or the
        connection is gone without it; the TCP teardown that follows is the server's.
        """

        def ready() -> bool:
            return self._closed

        def result(done: bool) -> tuple[int, str] | None:
            if not done:
                raise TimeoutError(f"wsfake: the client did not close {self.url} within {timeout} s")
            return self.close_frame

        async def run_async() -> tuple[int, str] | None:
            return result(await self._signal.wait_for(ready, timeout))

        return _either(run_async, lambda: result(self._signal.wait_for_blocking(ready, timeout)))

    # Acting on the connection's loop, from wherever the test runs

    def _act(self, action: Callable[[ServerSession], object], *, drain: bool = False) -> Any:
        return _either(lambda: self._act_async(action, drain=drain), lambda: self._act_blocking(action, drain=drain))

    def _checked(self, action: Callable[[ServerSession], object], allow_closed: bool) -> Callable[[], None]:
        def run() -> None:
            if self._closed and not allow_closed:
                raise self._closed_error()
            try:
                action(self._session)
            except ConnectionLost:
                if not allow_closed:
                    raise self._closed_error() from None

        return run

    async def _act_async(
        self, action: Callable[[ServerSession], object], *, drain: bool = False, allow_closed: bool = False
    ) -> None:
        run = self._checked(action, allow_closed)
        if self._host.in_loop_thread() and _same_loop(self._host):
            run()
            if drain and self._session.must_drain:
                try:
                    await self._session.drain()
                except ConnectionLost:
                    raise self._closed_error() from None
            return
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._host.call_soon_threadsafe(lambda: _complete(future, run))
        await _await_future(future, DEFAULT_TIMEOUT, "the connection's loop did not answer")

    def _act_blocking(
        self, action: Callable[[ServerSession], object], *, drain: bool = False, allow_closed: bool = False
    ) -> None:
        self._run_on_loop(self._checked(action, allow_closed))

    def _run_on_loop(self, run: Callable[[], object]) -> None:
        if self._host.in_loop_thread():
            run()
            return
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._host.call_soon_threadsafe(lambda: _complete(future, run))
        future.result(DEFAULT_TIMEOUT)


def _same_loop(host: Host) -> bool:
    return current_backend() == host.backend


def _complete(future: concurrent.futures.Future[None], run: Callable[[], object]) -> None:
    try:
        run()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(None)


async def _await_future(future: concurrent.futures.Future[Any], timeout: float, what: str) -> Any:
    """Wait for a future set by another loop or thread, on the running loop."""
    import anyio

    signal_done = anyio.Event()
    wake = _waker(signal_done.set)
    future.add_done_callback(lambda _: wake())
    with anyio.move_on_after(timeout):
        await signal_done.wait()
    if not future.done():
        raise TimeoutError(f"wsfake: {what}")
    return future.result()


class _Decoded:
    """A JSON text message; decoded when the test takes it, so an invalid one fails the test, not the server."""

    __slots__ = ("text",)

    def __init__(self, text: str | bytes) -> None:
        self.text = text

    @classmethod
    def of(cls, message: str | bytes) -> Any:
        return cls(message)

    def value(self) -> Any:
        try:
            return json_module.loads(self.text)
        except ValueError:
            raise ValueError(
                f"wsfake: the client sent a message that is not JSON, to a MockServer(json=True): {self.text!r}"
            ) from None


def _value(message: Any) -> Any:
    if isinstance(message, _Decoded):
        try:
            return message.value()
        except ValueError:
            return message.text
    return message


class MockServer(Target):
    """A server whose behaviour the test scripts, for testing client code.

    ``json=True`` decodes the client's messages as JSON and encodes what the test
    sends. ``subprotocols`` are chosen as ``websockets.serve`` chooses them.
    Use it as any target (``net.route(pattern, MockServer())``, ``patch_client({url: server})``)
    or create it with ``net.mock(pattern)``.
    """

    def __init__(
        self,
        *,
        json: bool = False,
        subprotocols: Iterable[str] | None = None,
        max_size: int | None = 2**20,
        compression: str | None = "deflate",
    ) -> None:
        if compression not in ("deflate", None):
            raise ValueError(f"unsupported compression {compression!r}: use 'deflate' or None")
        self.json = json
        self.subprotocols = None if subprotocols is None else list(subprotocols)
        self.max_size = max_size
        self.compression = compression is not None
        self.close_timeout = 10.0
        self.conventions = websockets_conventions()
        self._signal = Signal()
        self._waiting: deque[MockConnection] = deque()
        self._rejections: deque[tuple[int, list[tuple[bytes, bytes]], bytes]] = deque()
        #: Every connection, in the order the clients opened them.
        self.connections: list[MockConnection] = []
        #: Every message from every client, in the order they arrived.
        self.messages: list[Any] = []
        #: The route serving this mock, when ``net.mock()`` made it (faults: ``server.route.refuse()``).
        self.route: Any = None
        self.connections_reported = False

    def __repr__(self) -> str:
        return f"MockServer({len(self.connections)} connections)"

    # Target

    def open(self, session: ServerSession, on_task: Callable[[Spawned], object]) -> Sink:
        return MockConnection(self, session)

    def _arrived(self, connection: MockConnection) -> None:
        with self._signal.lock:
            self.connections.append(connection)
            self._waiting.append(connection)
        self._signal.notify()

    def _take_rejection(self) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        with self._signal.lock:
            return self._rejections.popleft() if self._rejections else None

    def _choose_subprotocol(self, offered: list[str]) -> str | None:
        return select_subprotocol(self.subprotocols or [], offered)

    def _encode(self, message: Any) -> str | bytes:
        if isinstance(message, (bytes, bytearray, memoryview)):
            return bytes(message)
        if self.json:
            return json_module.dumps(message)
        if isinstance(message, str):
            return message
        raise TypeError(
            f"a MockServer sends str or bytes, not {type(message).__name__}; create it with json=True to send JSON"
        )

    # The test's side

    def connected(self, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """The next connection no earlier ``connected()`` returned (``await`` it in async code)."""

        def ready() -> bool:
            return bool(self._waiting)

        def take(arrived: bool) -> MockConnection:
            if not arrived:
                raise TimeoutError(
                    f"wsfake: no client connected within {timeout} s "
                    f"(connections so far: {len(self.connections)}, all already returned by connected())"
                )
            with self._signal.lock:
                connection = self._waiting.popleft()
            connection.looked_at = True
            return connection

        async def run_async() -> MockConnection:
            return take(await self._signal.wait_for(ready, timeout))

        return _either(run_async, lambda: take(self._signal.wait_for_blocking(ready, timeout)))

    def send(self, message: Any) -> Any:
        """Send ``message`` to every open connection."""
        open_connections = [c for c in self.connections if not c.closed]

        async def run_async() -> None:
            for connection in open_connections:
                await connection.send(message)

        def run_blocking() -> None:
            for connection in open_connections:
                connection.send(message)

        return _either(run_async, run_blocking)

    def reject_next(
        self,
        status: int = 403,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | str = b"",
    ) -> None:
        """Answer the next connection's handshake with this HTTP response instead of accepting it."""
        if not (isinstance(status, int) and 100 <= status < 600) or status == 101:
            raise ValueError(f"status must be an HTTP status other than 101, not {status!r}")
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in items]
        with self._signal.lock:
            self._rejections.append((status, raw, body.encode() if isinstance(body, str) else bytes(body)))

    def unattended(self) -> list[MockConnection]:
        """Connections the test never looked at (no ``connected()`` returned them)."""
        return [c for c in self.connections if not c.looked_at]

    def _report(self) -> None:
        """Note in the transcripts what the test left unattended."""
        for connection in self.connections:
            call = connection._session.call
            if not connection.looked_at:
                call._note("the test never looked at this connection: no server.connected() returned it")
            elif connection._inbox:
                call._note(f"{len(connection._inbox)} messages from the client were never received by the test")
        self.connections_reported = True

    async def aclose(self, host: Host) -> None:
        self._report()

    def stop(self, host: Host) -> None:
        self._report()


__all__ = ["MockConnection", "MockServer", "Signal"]
