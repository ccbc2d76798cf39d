"""Handler targets: ``async def handler(ws)`` written for ``websockets.serve``.

:class:`ServerConnection` offers the API of
``websockets.asyncio.server.ServerConnection`` on top of a wsproto
:class:`~wsfake._session.ServerSession`, and one connection runs the way
``websockets.serve`` runs it: ``process_request`` before the upgrade is checked
(so health-check answers work), the checks and their HTTP answers,
``select_subprotocol``/``subprotocols``, ``process_response``, the ``Server``
header, ``open_timeout``, keepalive, then the handler inside ``async with``
semantics: 1000 when it returns, 1011 (and a logged error) when it raises.
"""

from __future__ import annotations

import contextlib
import enum
import http
import inspect
import logging
import os
import uuid
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._closed import OK_CLOSE_CODES, ConcurrencyError, ConnectionClosed, ConnectionClosedOK, closed_exception
from ._handshake import NegotiationError, Refusal, check_request, failed, offered_subprotocols, select_subprotocol
from ._host import EventLike, Spawned, Timer, Waiter
from ._http import Request, Response, make_headers, response_parts
from ._session import ConnectionLost, ServerSession, Sink

Data = str | bytes
HandlerFunc = Callable[["ServerConnection"], Awaitable[None]]
ProcessRequest = Callable[["ServerConnection", Any], Any]
ProcessResponse = Callable[["ServerConnection", Any, Any], Any]
SelectSubprotocol = Callable[["ServerConnection", Any], Any]

_SERVER_ERROR_BODY = "Failed to open a WebSocket connection.\nSee server log for more information.\n"


class State(enum.IntEnum):
    """Connection state (mirrors ``websockets.protocol.State``)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


if not TYPE_CHECKING:
    with contextlib.suppress(ImportError):
        from websockets.protocol import State


class _PongWaiter:
    """Awaitable returned by :meth:`ServerConnection.ping`: resolves to the latency."""

    def __init__(self, event: EventLike, sent_at: float) -> None:
        self.sent_at = sent_at
        self.latency: float | None = None
        self.error: BaseException | None = None
        self._event = event

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
        self._connection._session.close_transport()

    def is_closing(self) -> bool:
        return self._connection._session.finished

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._connection.remote_address, "sockname": self._connection.local_address}.get(
            name, default
        )


class _Protocol:
    """The parts of websockets' sans-I/O ``ServerProtocol`` that handlers read (``ws.protocol.*``)."""

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    @property
    def state(self) -> Any:
        return self._connection.state

    @property
    def close_code(self) -> int | None:
        return self._connection.close_code

    @property
    def close_reason(self) -> str | None:
        return self._connection.close_reason

    @property
    def close_exc(self) -> Exception:
        return self._connection._close_exc()

    @property
    def close_rcvd(self) -> Any:
        rcvd = self._connection._session.close_rcvd
        return None if rcvd is None else _close_frame(*rcvd)

    @property
    def close_sent(self) -> Any:
        sent = self._connection._session.close_sent
        return None if sent is None else _close_frame(*sent)

    @property
    def close_rcvd_then_sent(self) -> bool | None:
        return self._connection._session.close_rcvd_then_sent

    @property
    def id(self) -> uuid.UUID:
        return self._connection.id

    @property
    def request(self) -> Any:
        return self._connection.request

    @property
    def response(self) -> Any:
        return self._connection.response

    @property
    def subprotocol(self) -> str | None:
        return self._connection.subprotocol

    @property
    def logger(self) -> Any:
        return self._connection.logger

    @property
    def handshake_exc(self) -> BaseException | None:
        return self._connection._handshake_exc

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"wsfake's ServerConnection.protocol has no {name!r}: it offers state, close_code, close_reason, "
            "close_exc, close_rcvd, close_sent, close_rcvd_then_sent, id, request, response, subprotocol, logger "
            "and handshake_exc (the frames themselves are wsproto's; see docs/guide.md)"
        )


def _close_frame(code: int, reason: str) -> Any:
    from ._closed import Close

    return Close(code, reason)


class ServerConnection(Sink):
    """The server side of a connection, as a ``websockets.serve`` handler sees it."""

    def __init__(self, session: ServerSession, options: HandlerOptions, on_task: Callable[[Spawned], object]) -> None:
        self._session = session
        self._options = options
        self._on_task = on_task
        self.host = session.host
        self.request: Any = None
        self.response: Any = None
        self.subprotocol: str | None = None
        self.id = uuid.uuid4()
        self.remote_address = session.client_address
        self.local_address = session.server_address
        self.latency = 0.0
        self.logger: Any = options.logger
        self._protocol: _Protocol | None = None
        self._handshake_exc: BaseException | None = None
        high, low = options.max_queue
        self._high, self._low = high, low
        self._frames: deque[tuple[Data, bool]] = deque()
        self._flow_paused = False
        self._reading = False
        self._recv_waiting: Waiter | None = None
        self._closed = self.host.event()
        self._pings: dict[bytes, _PongWaiter] = {}
        self._send_in_progress: EventLike | None = None
        self._state = State.CONNECTING
        self._open_timer: Timer | None = None
        self._keepalive_timer: Timer | None = None
        self._keepalive_waiter: _PongWaiter | None = None
        self.task: Spawned | None = None
        self._closed_callbacks: list[Callable[[], object]] = []
        self._stopping = False
        self._in_handshake = True
        if options.open_timeout is not None:
            self._open_timer = self.host.call_later(options.open_timeout, self._open_timed_out)

    def __repr__(self) -> str:
        path = getattr(self.request, "path", "?")
        return f"<wsfake ServerConnection {path} {self.state.name}>"

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
        """Build a plain-text HTTP response for ``process_request``/``process_response`` to return."""
        status = http.HTTPStatus(status)
        body = text.encode()
        headers = make_headers(
            [
                ("Date", _http_date()),
                ("Connection", "close"),
                ("Content-Length", str(len(body))),
                ("Content-Type", "text/plain; charset=utf-8"),
            ]
        )
        return Response(status.value, status.phrase, headers, body)

    @property
    def protocol(self) -> _Protocol:
        """The sans-I/O protocol view (built on first use: it refers back to the connection)."""
        if self._protocol is None:
            self._protocol = _Protocol(self)
        return self._protocol

    # Events from the session

    def on_request(self) -> None:
        self.task = self.host.spawn(self._run, f"wsfake handler {self._session.call.url}")
        self._on_task(self.task)

    @property
    def paused(self) -> bool:  # type: ignore[override]
        return self._flow_paused

    def on_frame(self, data: str | bytes, fin: bool) -> None:
        self._frames.append((data, fin))
        if self._high is not None and len(self._frames) > self._high and not self._flow_paused:
            self._flow_paused = True
            self._session.pause_reading()
        self._wake()

    def on_pong(self, payload: bytes) -> None:
        if payload not in self._pings:
            return
        now = self.host.time()
        # A pong acknowledges its ping and every earlier one, as in websockets.
        for key in list(self._pings):
            waiter = self._pings.pop(key)
            waiter.resolve(now)
            if key == payload:
                self.latency = waiter.latency or 0.0
                break

    def on_close(self, code: int, reason: str) -> None:
        if self._state is State.OPEN:
            self._state = State.CLOSING
        self._wake()

    def on_failed(self, code: int, reason: str) -> None:
        self._wake()

    def on_closed(self) -> None:
        self._set_closed()

    def waiting(self) -> str | None:
        if self._state is State.CONNECTING:
            return "the handshake is not answered (process_request or select_subprotocol still running)"
        if self._recv_waiting is not None:
            return "the handler waits in recv() for the client"
        return None

    def shutdown(self) -> None:
        """The server is stopping, as ``websockets.serve``'s close() stops it.

        An open connection gets 1001. A handshake still running (in
        ``process_request``, say) finishes, then is answered 503; one whose
        client already left has nobody to answer and is dropped at once.
        """
        session = self._session
        if session.finished:
            if self._in_handshake and self.task is not None:
                self.task.cancel()  # its client is gone: nobody to answer
            return
        if self._state is State.CONNECTING:
            if session.client_gone or self.task is None:
                if self.task is not None:
                    self.task.cancel()
                session.abort()
                self._set_closed()
            else:
                self._stopping = True
            return
        with contextlib.suppress(ConnectionLost):
            session.send_close(*session.conventions.shutdown_close)
        if self._state is State.OPEN:
            self._state = State.CLOSING

    # Receiving

    def _wake(self) -> None:
        if self._recv_waiting is not None:
            self._recv_waiting.set()

    async def _wait_change(self) -> None:
        self._recv_waiting = waiting = self.host.waiter()
        try:
            await waiting.wait()
        finally:
            self._recv_waiting = None

    def _pop_frame(self) -> tuple[Data, bool]:
        frame = self._frames.popleft()
        if self._flow_paused and self._low is not None and len(self._frames) <= self._low:
            self._flow_paused = False
            self._session.resume_reading()
        return frame

    def _has_message(self) -> bool:
        frames = self._frames
        return bool(frames) and (frames[-1][1] or any(fin for _, fin in frames))

    async def recv(self, decode: bool | None = None) -> Data:
        """Receive the next message: str for text, bytes for binary (see ``decode``)."""
        if self._reading:
            raise ConcurrencyError("cannot call recv while another coroutine is already running recv or recv_streaming")
        self._reading = True
        try:
            while not self._has_message():
                if self._state is State.CLOSED or self._session.finished:
                    raise self._close_exc()
                await self._wait_change()
            data, fin = self._pop_frame()
            if fin:  # a message in one frame, the common case
                return data if decode is None else _decode(data, decode)
            parts = [data]
            while not fin:
                data, fin = self._pop_frame()
                parts.append(data)
        finally:
            self._reading = False
        return _decode(_join(parts), decode)

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
                    if self._state is State.CLOSED or self._session.finished:
                        raise self._close_exc()
                    await self._wait_change()
                data, fin = self._pop_frame()
                yield _decode(data, decode)
                if fin:
                    return
        finally:
            self._reading = False

    def __aiter__(self) -> AsyncIterator[Data]:
        return _Messages(self)

    # Sending

    async def send(self, message: Data | Iterable[Data] | AsyncIterable[Data], text: bool | None = None) -> None:
        """Send a message; an iterable or async iterable is sent as a fragmented message.

        Framing and errors are websockets': each fragment is a frame, then an
        empty final frame; a fragment of the wrong type raises ``TypeError`` and
        fails the connection with 1011. ``text=True`` sends bytes in text frames
        unchecked, ``text=False`` sends str in binary frames.
        """
        if (type(message) is str or type(message) is bytes) and text is None and self._send_in_progress is None:
            # The common case, inline: one message on an open connection (what _send_frame does).
            session = self._session
            if self._state is State.OPEN and session.open:
                try:
                    session.send_message(message)
                    if session.must_drain:
                        await session.drain()
                except ConnectionLost:
                    await self._wait_closed_then_raise()
                return
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
        self._send_in_progress = done = self.host.event()
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
            self._session.fail(1011, "error in fragmented message")
            raise
        finally:
            self._send_in_progress = None
            done.set()

    async def _send_frame(self, message: Any, text: bool | None, *, fin: bool) -> None:
        if self._state is not State.OPEN or not self._session.open:
            await self._wait_closed_then_raise()
        if isinstance(message, str):
            data: Data = message.encode() if text is False else message
        else:
            data = bytes(message)
        session = self._session
        try:
            session.send_message(data, fin=fin, raw_text=text is True)
            if session.must_drain:
                await session.drain()
        except ConnectionLost:
            await self._wait_closed_then_raise()

    async def _wait_closed_then_raise(self) -> None:
        """As websockets: a send on a closing connection waits for the close, then raises ConnectionClosed."""
        if self._state is State.CLOSING:
            await self.wait_closed()
        raise self._close_exc()

    async def ping(self, data: Data | None = None) -> Awaitable[float]:
        """Send a ping; await the result to wait for the pong and get the latency."""
        payload = os.urandom(4) if data is None else _as_bytes(data)
        if payload in self._pings:
            raise ConcurrencyError("already waiting for a pong with the same data")
        if self._state is not State.OPEN:
            await self._wait_closed_then_raise()
        waiter = _PongWaiter(self.host.event(), self.host.time())
        self._pings[payload] = waiter
        try:
            self._session.send_ping(payload)
        except ConnectionLost:
            await self._wait_closed_then_raise()
        return waiter

    async def pong(self, data: Data = b"") -> None:
        """Send an unsolicited pong."""
        if self._state is not State.OPEN:
            await self._wait_closed_then_raise()
        try:
            self._session.send_pong(_as_bytes(data))
        except ConnectionLost:
            await self._wait_closed_then_raise()

    # Closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake and wait for it (bounded by ``close_timeout``); idempotent."""
        if self._state is State.OPEN:
            self._state = State.CLOSING
            with contextlib.suppress(ConnectionLost):
                self._session.send_close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (the client answered, left, or timed out)."""
        await self._closed.wait()

    def _set_closed(self) -> None:
        if self._state is State.CLOSED:
            return
        self._state = State.CLOSED
        self._cancel_timers()
        exc = self._close_exc()
        for waiter in self._pings.values():
            waiter.fail(exc)
        self._pings.clear()
        self._closed.set()
        self._wake()
        callbacks, self._closed_callbacks = self._closed_callbacks, []
        for callback in callbacks:
            callback()

    def _cancel_timers(self) -> None:
        for timer in (self._open_timer, self._keepalive_timer):
            if timer is not None:
                timer.cancel()
        self._open_timer = self._keepalive_timer = None

    # The connection's task, as websockets.serve runs it

    def _open_timed_out(self) -> None:
        self._open_timer = None
        if self._state is State.CONNECTING:
            if self.task is not None:
                self.task.cancel()
            self._session.abort()

    async def _run(self) -> None:
        session = self._session
        options = self._options
        try:
            accepted = await self._handshake()
        except anyio.get_cancelled_exc_class():
            session.abort()
            raise
        finally:
            self._in_handshake = False
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        if not accepted:
            self._set_closed()
            return
        self._state = State.OPEN
        self._start_keepalive()
        error: Exception | None = None
        try:
            await options.handler(self)
        except Exception as exc:
            error = exc
            self.logger.error("connection handler failed", exc_info=True)
            if isinstance(exc, ConnectionClosed) and self._departed_normally(exc):
                session.call._departed(exc)
            else:
                session.call._failed(exc)
        await self.close(1011 if error is not None else 1000)

    def _departed_normally(self, exc: ConnectionClosed) -> bool:
        """A ConnectionClosed that only reports the client's normal departure (or the server stopping)."""
        rcvd = self._session.close_rcvd
        sent = self._session.close_sent
        return isinstance(exc, ConnectionClosedOK) or (
            rcvd is not None and rcvd[0] in OK_CLOSE_CODES and sent is not None and sent[0] in OK_CLOSE_CODES
        )

    async def _handshake(self) -> bool:
        """Answer the request as websockets.serve does; True if the connection was accepted."""
        session = self._session
        options = self._options
        headers = make_headers(session.call.request_headers)
        self.request = Request(session.target, headers)
        before = list(_raw_items(headers))
        response: Any = None
        if options.process_request is not None:
            try:
                response = options.process_request(self, self.request)
                if inspect.isawaitable(response):
                    response = await response
            except Exception as exc:
                self._handshake_exc = exc
                self.logger.error("process_request failed", exc_info=True)
                response = self.respond(500, _SERVER_ERROR_BODY)
            if response is not None and not hasattr(response, "headers"):
                response = _as_response(response)
        subprotocol: str | None = None
        if response is None:
            items = list(_raw_items(self.request.headers))
            refusal = check_request(session.method, session.http_version, items, origins=options.origins)
            if refusal is None and (items != before or session.request is None or session.target != self.request.path):
                complaint = session.renegotiate(self.request.path, items)
                if complaint is not None:
                    refusal = Refusal(400, failed(complaint))
            if refusal is None:
                try:
                    subprotocol = await self._select_subprotocol(offered_subprotocols(items))
                except NegotiationError as exc:
                    self._handshake_exc = exc
                    refusal = Refusal(400, failed(str(exc)))
                except Exception as exc:
                    self._handshake_exc = exc
                    self.logger.error("opening handshake failed", exc_info=True)
                    refusal = Refusal(500, _SERVER_ERROR_BODY)
            if refusal is not None:
                response = self.respond(refusal.status, refusal.body)
                for name, value in refusal.headers:
                    response.headers[name] = value
        if response is None and self._stopping:
            status, body = session.conventions.shutdown_reject
            response = self.respond(status, body.decode())
        accepting = response is None
        if accepting:
            response = session.accept_response(subprotocol)
        if session.conventions.server_header is not None:
            response.headers["Server"] = session.conventions.server_header.decode("latin-1")
        self.response = response
        if options.process_response is not None:
            try:
                replaced = options.process_response(self, self.request, response)
                if inspect.isawaitable(replaced):
                    replaced = await replaced
            except Exception as exc:
                self._handshake_exc = exc
                self.logger.error("process_response failed", exc_info=True)
                replaced = self.respond(500, _SERVER_ERROR_BODY)
            if replaced is not None:
                self.response = response = _as_response(replaced) if not hasattr(replaced, "headers") else replaced
        status, raw_headers, body = response_parts(response)
        if session.finished:
            return False
        if status == 101 and accepting:
            self.subprotocol = subprotocol
            try:
                session.send_accept(raw_headers, subprotocol)
            except ConnectionLost:
                return False
            return True
        session.reject_raw(status, _serialize(status, raw_headers, body), body)
        return False

    async def _select_subprotocol(self, offered: list[str]) -> str | None:
        options = self._options
        if options.select_subprotocol is not None:
            chosen = options.select_subprotocol(self, offered)
            if inspect.isawaitable(chosen):
                chosen = await chosen
            if chosen is not None and chosen not in offered:
                raise NegotiationError(f"select_subprotocol returned {chosen!r}, which the client did not offer")
            return chosen  # type: ignore[no-any-return]
        return select_subprotocol(options.subprotocols or [], offered)

    # Keepalive, as websockets: ping, wait for the pong up to ping_timeout, sleep interval minus latency

    def _start_keepalive(self) -> None:
        if self._options.ping_interval is not None:
            self._keepalive_timer = self.host.call_later(max(0.0, self._options.ping_interval), self._keepalive_ping)

    def _keepalive_ping(self) -> None:
        self._keepalive_timer = None
        if self._state is not State.OPEN:
            return
        payload = os.urandom(4)
        while payload in self._pings:
            payload = os.urandom(4)
        waiter = _PongWaiter(self.host.event(), self.host.time())
        self._pings[payload] = waiter
        try:
            self._session.send_ping(payload)
        except ConnectionLost:
            return
        interval = self._options.ping_interval
        timeout = self._options.ping_timeout
        assert interval is not None
        if timeout is None:
            self._keepalive_timer = self.host.call_later(max(0.0, interval), self._keepalive_ping)
            return
        self._keepalive_waiter = waiter
        self._keepalive_timer = self.host.call_later(timeout, self._keepalive_timed_out)
        self.host.spawn(lambda: self._await_pong(waiter, interval), "wsfake keepalive")

    async def _await_pong(self, waiter: _PongWaiter, interval: float) -> None:
        try:
            latency = await waiter
        except Exception:
            return
        if self._keepalive_waiter is not waiter or self._state is not State.OPEN:
            return
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
        self._keepalive_waiter = None
        self._keepalive_timer = self.host.call_later(max(0.0, interval - latency), self._keepalive_ping)

    def _keepalive_timed_out(self) -> None:
        self._keepalive_timer = None
        self._keepalive_waiter = None
        if self._state is State.OPEN:
            self._session.fail(1011, "keepalive ping timeout")


class HandlerOptions:
    """``websockets.serve`` options that have a meaning without a socket, checked as serve() checks them."""

    def __init__(
        self,
        handler: HandlerFunc,
        *,
        origins: Any = None,
        subprotocols: Any = None,
        select_subprotocol: SelectSubprotocol | None = None,
        process_request: ProcessRequest | None = None,
        process_response: ProcessResponse | None = None,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        max_queue: int | tuple[int | None, int | None] | None = 16,
        logger: Any = None,
    ) -> None:
        self.handler = handler
        self.origins = None if origins is None else list(origins)
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.process_request = process_request
        self.process_response = process_response
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_queue = _water_marks(max_queue)
        if logger is None:
            logger = logging.getLogger("websockets.server")
        elif isinstance(logger, str):
            logger = logging.getLogger(logger)
        self.logger = logger


def _as_response(value: Any) -> Any:
    """A ``(status, headers, body)`` tuple as a Response (wsfake also takes that older form)."""
    status, raw, body = response_parts(value)
    items = [(name.decode("latin-1"), val.decode("latin-1")) for name, val in raw]
    return Response(status, http.HTTPStatus(status).phrase, make_headers(items), body)


def _water_marks(max_queue: int | tuple[int | None, int | None] | None) -> tuple[int | None, int | None]:
    """websockets' (high, low) flow-control marks for ``max_queue``."""
    if isinstance(max_queue, tuple):
        high, low = max_queue
    else:
        high, low = max_queue, None
    if high is not None and low is None:
        low = high // 4
    if high is None and low is not None:
        high = low * 4
    if high is not None and low is not None:
        if low < 0:
            raise ValueError("low must be positive or equal to zero")
        if high < low:
            raise ValueError("high must be greater than or equal to low")
    return high, low


def _raw_items(headers: Any) -> Iterable[tuple[str, str]]:
    if hasattr(headers, "raw_items"):
        return list(headers.raw_items())
    return list(headers.items())


def _serialize(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    from ._conventions import serialize_response

    return serialize_response(status, headers, body)


def _http_date() -> str:
    from ._conventions import http_date

    return http_date().decode()


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


__all__ = ["HandlerOptions", "ServerConnection", "State"]


class _Messages:
    """``async for message in connection``: messages until a normal close, as websockets iterates.

    An iterator object rather than an async generator: a handler that leaves the
    loop early (an exception in its body) leaves nothing to finalize, on asyncio
    and on trio alike.
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> Data:
        try:
            return await self._connection.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None
