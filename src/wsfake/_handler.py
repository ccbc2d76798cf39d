"""Handler targets: ``async def handler(ws)`` written for ``websockets.serve``.

:class:`ServerConnection` offers the API of
``websockets.asyncio.server.ServerConnection`` on top of a wsproto
:class:`~wsfake._session.ServerSession`, so such handlers run unchanged.
"""

from __future__ import annotations

import contextlib
import enum
import http
import inspect
import os
import uuid
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from wsproto.events import CloseConnection, Message, Pong

from ._closed import ConcurrencyError, ConnectionClosedOK, closed_exception
from ._http import Request, Response, make_headers, response_parts
from ._runtime import EventLike, event_factory
from ._session import ConnectionLost, ServerSession

Data = str | bytes
HandlerFunc = Callable[["ServerConnection"], Awaitable[None]]
ProcessRequest = Callable[["ServerConnection", Any], Any]


class State(enum.IntEnum):
    """Connection state (mirrors ``websockets.protocol.State``)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


if not TYPE_CHECKING:
    with contextlib.suppress(ImportError):
        from websockets.protocol import State


class NegotiationError(Exception):
    """No acceptable subprotocol; the handshake is answered with HTTP 400."""


class _PongWaiter:
    """Awaitable returned by :meth:`ServerConnection.ping`: resolves to the latency."""

    def __init__(self, sent_at: float) -> None:
        self.sent_at = sent_at
        self.latency: float | None = None
        self.error: BaseException | None = None
        self._event = anyio.Event()

    def resolve(self, now: float) -> None:
        self.latency = now - self.sent_at
        self._event.set()

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self._event.set()

    def __await__(self) -> Generator[Any, None, float]:
        yield from self._event.wait().__await__()
        if self.error is not None:
            raise self.error
        assert self.latency is not None
        return self.latency


class _Transport:
    """What handlers use of ``ServerConnection.transport``: drop the connection or ask about it."""

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    def abort(self) -> None:
        """Drop the connection at once, without a close frame (the client sees 1006)."""
        self._connection._session.abort()

    def close(self) -> None:
        """Close the connection without a close frame, after what was sent."""
        self._connection._session.finish()

    def is_closing(self) -> bool:
        return self._connection._session.stream.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._connection.remote_address, "sockname": self._connection.local_address}.get(
            name, default
        )


class ServerConnection:
    """The server side of a connection, as a ``websockets.serve`` handler sees it."""

    def __init__(
        self,
        session: ServerSession,
        request: Any,
        remote_address: tuple[str, int],
        local_address: tuple[str, int],
        *,
        max_queue: int = 16,
        close_timeout: float | None = 10,
    ) -> None:
        self._session = session
        self.request = request
        self.response: Any = None
        self.subprotocol: str | None = None
        self.id = uuid.uuid4()
        self.remote_address = remote_address
        self.local_address = local_address
        self.latency = 0.0
        self._max_queue = max_queue
        self._close_timeout = close_timeout
        self._frames: deque[tuple[Data, bool]] = deque()
        self._complete = 0
        self._reading = False
        self._new_event = event_factory()
        self._recv_waiting: EventLike | None = None
        self._reader_waiting: EventLike | None = None
        self._closed = self._new_event()
        self._pings: dict[bytes, _PongWaiter] = {}
        self._send_in_progress: EventLike | None = None
        self._state = State.CONNECTING

    def __repr__(self) -> str:
        return f"<wsfake ServerConnection {self.request.path} {self.state.name}>"

    # State

    @property
    def state(self) -> Any:
        """CONNECTING, OPEN, CLOSING or CLOSED (websockets' ``State`` when installed)."""
        return self._state

    @property
    def close_code(self) -> int | None:
        """The close code received, 1006 if the connection dropped, None while open."""
        if self._state is not State.CLOSED:
            return None
        rcvd = self._session.close_rcvd
        return 1006 if rcvd is None else rcvd[0]

    @property
    def close_reason(self) -> str | None:
        """The close reason received, "" if none, None while open."""
        if self._state is not State.CLOSED:
            return None
        rcvd = self._session.close_rcvd
        return "" if rcvd is None else rcvd[1]

    def _close_exc(self) -> Exception:
        s = self._session
        return closed_exception(s.close_rcvd, s.close_sent, s.close_rcvd_then_sent)

    @property
    def transport(self) -> _Transport:
        """A stand-in for the asyncio transport, for handlers that abort or close it."""
        return _Transport(self)

    def respond(self, status: http.HTTPStatus | int, text: str) -> Any:
        """Build a plain-text HTTP response for ``process_request`` to return."""
        status = http.HTTPStatus(status)
        body = text.encode()
        headers = make_headers(
            [
                ("Connection", "close"),
                ("Content-Length", str(len(body))),
                ("Content-Type", "text/plain; charset=utf-8"),
            ]
        )
        return Response(status.value, status.phrase, headers, body)

    # Receiving

    def _wake(self) -> None:
        if self._recv_waiting is not None:
            self._recv_waiting.set()

    async def _wait_change(self) -> None:
        self._recv_waiting = waiting = self._new_event()
        try:
            await waiting.wait()
        finally:
            self._recv_waiting = None

    def _drained(self) -> None:
        if self._reader_waiting is not None:
            self._reader_waiting.set()

    async def recv(self, decode: bool | None = None) -> Data:
        """Receive the next message: str for text, bytes for binary (see ``decode``)."""
        if self._reading:
            raise ConcurrencyError("cannot call recv while another coroutine is already running recv or recv_streaming")
        self._reading = True
        try:
            while not self._complete:
                if self._state is State.CLOSED or (self._session.eof and not self._frames):
                    raise self._close_exc()
                await self._wait_change()
            parts: list[Data] = []
            while True:
                data, fin = self._frames.popleft()
                parts.append(data)
                if fin:
                    break
            self._complete -= 1
            self._drained()
        finally:
            self._reading = False
        return _decode(parts[0] if len(parts) == 1 else _join(parts), decode)

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """Receive the next message frame by frame."""
        if self._reading:
            raise ConcurrencyError(
                "cannot call recv_streaming while another coroutine is already running recv or recv_streaming"
            )
        self._reading = True
        try:
            while True:
                while not self._frames:
                    if self._state is State.CLOSED or self._session.eof:
                        raise self._close_exc()
                    await self._wait_change()
                data, fin = self._frames.popleft()
                if fin:
                    self._complete -= 1
                    self._drained()
                yield _decode(data, decode)
                if fin:
                    return
        finally:
            self._reading = False

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    # Sending

    async def send(self, message: Data | Iterable[Data] | AsyncIterable[Data], text: bool | None = None) -> None:
        """Send a message; an iterable or async iterable is sent as a fragmented message.

        Framing and errors are websockets': each fragment is a frame, then an
        empty final frame; a fragment of the wrong type raises ``TypeError`` and
        fails the connection with 1011. ``text=True`` sends bytes in text frames
        unchecked, ``text=False`` sends str in binary frames.
        """
        while self._send_in_progress is not None:
            await self._send_in_progress.wait()
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            await self._send_frame(message, text, fin=True)
        elif isinstance(message, Mapping):
            raise TypeError("data is a dict-like object")
        elif isinstance(message, Iterable):
            await self._send_fragments(_aiter_sync(message), text, "iterable")
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(aiter(message), text, "async iterable")
        else:
            raise TypeError("data must be str, bytes, iterable, or async iterable")

    async def _send_fragments(self, fragments: AsyncIterator[Any], text: bool | None, kind: str) -> None:
        try:
            first = await anext(fragments)
        except StopAsyncIteration:
            return
        self._send_in_progress = done = self._new_event()
        try:
            if not isinstance(first, (str, bytes, bytearray, memoryview)):
                raise TypeError(f"{kind} must contain bytes or str")
            is_str = isinstance(first, str)
            await self._send_frame(first, text, fin=False)
            async for fragment in fragments:
                if not isinstance(fragment, (str, bytes, bytearray, memoryview)) or isinstance(fragment, str) != is_str:
                    raise TypeError(f"{kind} must contain uniform types")
                await self._send_frame(fragment, text, fin=False)
            await self._send_frame("" if is_str else b"", text, fin=True)
        except Exception:
            await self._session.fail(1011, "error in fragmented message")
            self._set_closed()
            raise
        finally:
            self._send_in_progress = None
            done.set()

    async def _send_frame(self, message: Any, text: bool | None, *, fin: bool) -> None:
        if self._state is not State.OPEN or not self._session.open:
            raise self._close_exc()
        if isinstance(message, str):
            data: Data = message.encode() if text is False else message
        else:
            data = bytes(message)
        try:
            await self._session.send_message(data, fin=fin, raw_text=text is True)
        except ConnectionLost:
            raise self._close_exc() from None

    async def ping(self, data: Data | None = None) -> Awaitable[float]:
        """Send a ping; await the result to wait for the pong and get the latency."""
        payload = os.urandom(4) if data is None else _as_bytes(data)
        if payload in self._pings:
            raise ConcurrencyError("already waiting for a pong with the same data")
        if self._state is not State.OPEN:
            raise self._close_exc()
        waiter = _PongWaiter(anyio.current_time())
        self._pings[payload] = waiter
        try:
            await self._session.send_ping(payload)
        except ConnectionLost:
            raise self._close_exc() from None
        return waiter

    async def pong(self, data: Data = b"") -> None:
        """Send an unsolicited pong."""
        if self._state is not State.OPEN:
            raise self._close_exc()
        payload = _as_bytes(data)
        try:
            await self._session.send_pong(payload)
        except ConnectionLost:
            raise self._close_exc() from None

    # Closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake; idempotent."""
        if self._state is State.OPEN:
            self._state = State.CLOSING
            with contextlib.suppress(ConnectionLost):
                await self._session.send_close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (the client answered, left, or timed out)."""
        if self._close_timeout is None or self._state is not State.CLOSING:
            await self._closed.wait()
            return
        with anyio.move_on_after(self._close_timeout):
            await self._closed.wait()
        if not self._closed.is_set():
            self._session.abort()
            self._set_closed()

    def _set_closed(self) -> None:
        if self._state is State.CLOSED:
            return
        self._state = State.CLOSED
        self._session.finish()
        exc = self._close_exc()
        for waiter in self._pings.values():
            waiter.fail(exc)
        self._pings.clear()
        self._closed.set()
        self._drained()
        self._wake()

    async def _read_loop(self) -> None:
        """Feed frames to the message queue until the connection is closed."""
        session = self._session
        frame_parts: list[Data] = []
        try:
            while True:
                while self._complete >= self._max_queue:
                    self._reader_waiting = waiting = self._new_event()
                    try:
                        await waiting.wait()
                    finally:
                        self._reader_waiting = None
                    if self._state is State.CLOSED:
                        return
                for event in await session.receive_events():
                    if isinstance(event, Message):
                        # wsproto may split a frame into chunks; websockets hands out whole frames.
                        frame_parts.append(event.data)
                        if not event.frame_finished:
                            continue
                        data = frame_parts[0] if len(frame_parts) == 1 else _join(frame_parts)
                        frame_parts.clear()
                        fin = event.message_finished
                        self._frames.append((data, fin))
                        if fin:
                            self._complete += 1
                        self._wake()
                    elif isinstance(event, Pong):
                        self._pong(bytes(event.payload))
                    elif isinstance(event, CloseConnection):
                        if self._state is State.OPEN:
                            self._state = State.CLOSING
                        self._wake()
                if session.close_rcvd is not None and session.close_sent is not None:
                    return
        except ConnectionLost:
            return
        finally:
            self._set_closed()

    def _pong(self, payload: bytes) -> None:
        now = anyio.current_time()
        if payload not in self._pings:
            return
        # A pong acknowledges its ping and every earlier one, as in websockets.
        for key in list(self._pings):
            waiter = self._pings.pop(key)
            waiter.resolve(now)
            if key == payload:
                self.latency = waiter.latency or 0.0
                break

    async def _keepalive(self, interval: float, timeout: float | None) -> None:
        while self._state is State.OPEN:
            await anyio.sleep(interval)
            if self._state is not State.OPEN:
                return
            try:
                waiter = await self.ping()
            except Exception:
                return
            if timeout is None:
                continue
            with anyio.move_on_after(timeout):
                try:
                    await waiter
                except Exception:
                    return
                continue
            await self._session.fail(1011, "keepalive ping timeout")
            self._set_closed()
            return


def _join(parts: list[Data]) -> Data:
    if isinstance(parts[0], str):
        return "".join(part for part in parts if isinstance(part, str))
    return b"".join(part for part in parts if isinstance(part, bytes))


def _decode(message: Data, decode: bool | None) -> Data:
    if decode is None:
        return message
    if decode:
        return message if isinstance(message, str) else message.decode()
    return message.encode() if isinstance(message, str) else message


def _as_bytes(data: Any) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


async def _aiter_sync(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def select_subprotocol(supported: Sequence[str], offered: Sequence[str]) -> str | None:
    """Pick a subprotocol the way ``websockets.serve`` does (server's order wins)."""
    if not supported:
        return None
    if not offered:
        raise NegotiationError("missing subprotocol")
    for subprotocol in supported:
        if subprotocol in offered:
            return subprotocol
    raise NegotiationError("invalid subprotocol; expected one of " + ", ".join(supported))


async def serve_handler(
    session: ServerSession,
    handler: HandlerFunc,
    *,
    remote_address: tuple[str, int],
    local_address: tuple[str, int],
    subprotocols: Sequence[str] = (),
    process_request: ProcessRequest | None = None,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    open_timeout: float | None = 10,
    max_queue: int = 16,
    on_connection: Callable[[ServerConnection], object] = lambda conn: None,
) -> None:
    """Run one connection for a handler target, as ``websockets.serve`` would.

    The opening handshake (including ``process_request``) must finish within
    ``open_timeout`` or the connection is dropped. The handler's own exception,
    if any, propagates after the connection was closed with 1011.
    """
    conn: ServerConnection | None = None
    with anyio.move_on_after(open_timeout) as deadline:
        conn = await _handshake(
            session,
            remote_address,
            local_address,
            subprotocols,
            process_request,
            close_timeout,
            max_queue,
            on_connection,
        )
    if deadline.cancelled_caught:
        session.abort()
        if conn is not None:
            conn._set_closed()
        return
    if conn is None:
        return
    error: BaseException | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(conn._read_loop)
        if ping_interval is not None:
            tg.start_soon(conn._keepalive, ping_interval, ping_timeout)
        try:
            await handler(conn)
        except Exception as exc:
            error = exc
            session.call._failed(exc)
        await conn.close(1011 if error is not None else 1000)
        tg.cancel_scope.cancel()
    if error is not None:
        raise error


async def _handshake(
    session: ServerSession,
    remote_address: tuple[str, int],
    local_address: tuple[str, int],
    subprotocols: Sequence[str],
    process_request: ProcessRequest | None,
    close_timeout: float | None,
    max_queue: int,
    on_connection: Callable[[ServerConnection], object],
) -> ServerConnection | None:
    """Read the request and answer it; the open connection, or None if it was refused."""
    wsrequest = await session.read_request()
    if wsrequest is None:
        session.finish()
        return None
    headers = make_headers(session.call.request_headers)
    conn = ServerConnection(
        session,
        Request(wsrequest.target, headers),
        remote_address,
        local_address,
        max_queue=max_queue,
        close_timeout=close_timeout,
    )
    on_connection(conn)
    if process_request is not None:
        response = process_request(conn, conn.request)
        if inspect.isawaitable(response):
            response = await response
        if response is not None:
            await session.reject(*response_parts(response))
            conn._set_closed()
            return None
    try:
        conn.subprotocol = select_subprotocol(subprotocols, list(wsrequest.subprotocols))
    except NegotiationError as exc:
        await session.reject(400, [], f"Failed to open a WebSocket connection: {exc}.\n".encode())
        conn._set_closed()
        return None
    try:
        await session.accept(conn.subprotocol)
    except ConnectionLost:
        conn._set_closed()
        return None
    conn._state = State.OPEN
    return conn


__all__ = ["ServerConnection", "State", "serve_handler"]
