"""The server side of one WebSocket connection, spoken by wsproto.

A :class:`ServerSession` is driven by the pipe: when the client's bytes become
readable (always in a later loop iteration than the client's write) the session
feeds them to wsproto and hands the resulting events to its :class:`Sink` (the
handler, ASGI or mock connection on top). It answers pings and echoes close
frames as real servers do, enforces ``max_size``, fails the connection on
protocol errors with the close code and reason the real server sends, and
records what crossed the wire. No task reads for it: the only task of a
connection is the app (or handler) itself.

Writes are synchronous (bytes go into the pipe at once); a sender that must
respect backpressure awaits :meth:`ServerSession.drain` afterwards.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, Opcode, ParseFailed, RsvBits
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from . import _compat
from ._conventions import Conventions
from ._deflate import ServerDeflate
from ._fastpath import (
    close_frame,
    close_frame_out,
    complete_data_frame,
    incoming_decoder,
    inflated_message,
    plain_data_frame,
    plain_message,
)
from ._handshake import offered_subprotocols
from ._host import Host, Timer
from ._pipe import Pipe
from ._records import Call

RawHeaders = Sequence[tuple[bytes, bytes]]

#: The most bytes the session takes from the pipe per read, like a socket read.
READ_SIZE = 65536


class ConnectionLost(Exception):
    """The connection is gone: the client closed or reset it, or the server already closed it."""


class Sink:
    """What the layer above a session (handler, ASGI or mock connection) is told.

    Callbacks run on the session's loop, from the pipe's delivery callback, never
    re-entrantly inside a write. ``paused`` is checked after each event: while it
    is True the session stops reading, so unread bytes push back on the client.
    """

    paused = False

    def on_request(self) -> None:
        """The opening handshake request arrived (``session.request``); answer it with accept or reject."""

    def on_frame(self, data: str | bytes, fin: bool) -> None:
        """One complete frame of a data message; ``fin`` ends the message."""

    def on_pong(self, payload: bytes) -> None:
        """A pong arrived."""

    def on_close(self, code: int, reason: str) -> None:
        """The client's close frame arrived (echoed already when the client started the close)."""

    def on_failed(self, code: int, reason: str) -> None:
        """The session failed the connection (protocol error, oversize message) and sent this close frame."""

    def on_closed(self) -> None:
        """The transport is gone (closed by either side or reset). Called once, last."""

    def waiting(self) -> str | None:
        """What the server side waits for, for a stuck connection's report (None: nothing known)."""
        return None


class ServerSession:
    """wsproto over one pipe, with the framing rules of a real server."""

    __slots__ = (
        "_close_timer",
        "_discarding",
        "_drain_waiter",
        "_fast",
        "_frame_parts",
        "_head",
        "_in",
        "_out",
        "_plain_out",
        "_read_message",
        "_reading_paused",
        "_watch",
        "_ws",
        "answered",
        "call",
        "client_address",
        "close_rcvd",
        "close_rcvd_then_sent",
        "close_sent",
        "close_timeout",
        "closed_cleanly",
        "compression",
        "conventions",
        "finished",
        "handshake_error",
        "host",
        "http_version",
        "max_fragment",
        "max_size",
        "method",
        "on_finished",
        "pipe",
        "raw_headers",
        "request",
        "scheme",
        "server_address",
        "sink",
        "target",
        "write_high",
        "write_low",
    )

    def __init__(
        self,
        pipe: Pipe,
        host: Host,
        call: Call,
        conventions: Conventions,
        *,
        scheme: str,
        max_size: int | tuple[int | None, int | None] | None,
        compression: bool,
        close_timeout: float | None = 10,
        write_limit: int | tuple[int, int | None] = 2**16,
    ) -> None:
        self.pipe = pipe
        self.host = host
        self.call = call
        self.conventions = conventions
        self.scheme = scheme
        self.max_size, self.max_fragment = max_size if isinstance(max_size, tuple) else (max_size, None)
        high, low = write_limit if isinstance(write_limit, tuple) else (write_limit, None)
        #: The server's own write buffer beyond the socket buffer: senders wait above ``high`` until ``low``.
        self.write_high, self.write_low = high, high // 4 if low is None else low
        self.compression = compression
        self.close_timeout = close_timeout
        self.client_address = pipe.client_address
        self.server_address = pipe.server_address
        self.sink: Sink = Sink()
        self._ws = WSConnection(ConnectionType.SERVER)
        self._in = pipe.to_server
        self._out = pipe.to_client
        self.request: Request | None = None
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.method = "GET"
        self.target = "/"
        self.http_version = "HTTP/1.1"
        #: wsproto's complaint about a request that is valid HTTP but not an upgrade it accepts.
        self.handshake_error: str | None = None
        self._head = bytearray()
        #: The request was read without h11 (see :meth:`_fast_request`).
        self._fast = False
        self.close_sent: tuple[int, str] | None = None
        self.close_rcvd: tuple[int, str] | None = None
        #: True once a close frame was received and the one we sent came after it.
        self.close_rcvd_then_sent: bool | None = None
        #: The client's close frame arrived (as opposed to the connection being lost).
        self.closed_cleanly = False
        self.answered = False
        self.finished = False
        self._reading_paused = False
        self._watch: _FrameWatch | None = None
        #: No negotiated extension changes outgoing frames (see :func:`plain_data_frame`).
        self._plain_out = False
        #: How the incoming fast path reads a data message (chosen at negotiation, see :meth:`_receive`).
        self._read_message: Callable[..., tuple[str | bytes, int] | None] = plain_message
        self._discarding = False
        self._frame_parts: list[Any] = []
        self._drain_waiter: Any = None
        self._close_timer: Timer | None = None
        #: Called once after ``sink.on_closed`` (the network's bookkeeping).
        self.on_finished: Callable[[], object] | None = None
        self._in.on_readable = self._readable
        self._out.on_writable = self._writable

    def start(self, sink: Sink) -> None:
        """Attach the layer above and start reading."""
        self.sink = sink
        if self._in.visible_size or self._in.eof or self._in.reset:
            self.host.call_soon(self._readable)

    # State

    @property
    def connecting(self) -> bool:
        """True until the opening handshake was answered."""
        return self._ws.state is ConnectionState.CONNECTING

    @property
    def open(self) -> bool:
        return self._ws.state is ConnectionState.OPEN

    @property
    def state(self) -> ConnectionState:
        return self._ws.state

    @property
    def client_gone(self) -> bool:
        return self.pipe.client_gone

    # Reading

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        """Read again; bytes already waiting are processed in a later loop iteration."""
        if self._reading_paused:
            self._reading_paused = False
            if not self.finished:
                self.host.call_soon(self._readable)

    def _readable(self) -> None:
        incoming = self._in
        while not (self._reading_paused or self.finished):
            if incoming.visible_size:
                self._receive(incoming.read_segment(READ_SIZE))
                continue
            if incoming.reset or incoming.eof:
                self._lost()
            return

    def _receive(self, data: bytes) -> None:
        if self._discarding:
            return
        state = self._ws.state
        if state is ConnectionState.OPEN:
            connection = self._ws.connection
            decoder = incoming_decoder(connection)
            if decoder is not None:
                # The fast path: whole data frames (and a close frame) read as wsproto reads them.
                assert connection is not None
                read, watch, call, sink = self._read_message, self._watch, self.call, self.sink
                offset, size = 0, len(data)
                try:
                    while offset < size and (found := read(decoder, data, offset, watch)) is not None:
                        message, offset = found
                        if watch is not None:
                            error = self._check_size(message, True)
                            if error is not None:
                                self.fail(1009, error)
                                return
                        call._received(message, True)
                        sink.on_frame(message, True)
                        if self.finished:
                            return
                    if offset == size:
                        return
                    closing = close_frame(connection, decoder, data, offset)
                except ParseFailed as failure:
                    _compat.fail_reader(connection, failure)
                    self._on_close_frame(CloseConnection(code=failure.code, reason=str(failure)))
                    return
                if closing is not None:
                    _compat.closed_by_remote(connection)
                    self._on_close_frame(CloseConnection(code=closing[0], reason=closing[1]))
                    return
                if offset:
                    data = data[offset:]
            self._ws.receive_data(data)
            self._process_events()
        elif state is ConnectionState.CONNECTING:
            self._receive_handshake(data)
        elif state is ConnectionState.LOCAL_CLOSING:
            self._ws.receive_data(data)
            self._process_events()

    def _receive_handshake(self, data: bytes) -> None:
        if not self.raw_headers:
            whole = not self._head  # the request may arrive in one piece
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self._head[:end])
                if head[:8].upper() == b"CONNECT ":
                    self._tunnel(head, bytes(self._head[end + 4 :]))
                    return
                self.raw_headers = _parse_header_block(head)
                self.method, self.target, self.http_version = _request_line(head)
                trailing = len(self._head) - end - 4
                del self._head[:]
                if whole and not trailing and self._fast_request(head):
                    return
        try:
            self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, Request):
                    self._on_request(event)
                    return
        except RemoteProtocolError as exc:
            if isinstance(exc.__context__, h11.RemoteProtocolError) or not self.raw_headers:
                self._answer_malformed_request()
            else:
                # Valid HTTP, but not an upgrade wsproto accepts: the target decides what to
                # answer (websockets.serve runs process_request first; the checks then refuse it).
                self.handshake_error = str(exc)
                self._on_request(None)

    def _fast_request(self, head: bytes) -> bool:
        """Read a plain upgrade request with wsproto, without h11's state machine; False to leave it to h11.

        Only a request h11 would take exactly as it stands, in one piece and
        with nothing after it, takes this path (see ``_compat.plain_request``);
        wsproto's own request processing then reads it, with the verdict and
        complaints it has on the full path. The 101 is built without h11 too
        (:meth:`negotiate`); a refusal never involves h11 (the conventions
        write it).
        """
        request = _compat.plain_request(head)
        if request is None:
            return False
        self._fast = True
        try:
            event = _compat.process_request(self._ws, request)
        except RemoteProtocolError as exc:
            self.handshake_error = str(exc)
            self._on_request(None)
            return True
        self._on_request(event)
        return True

    def _tunnel(self, head: bytes, rest: bytes) -> None:
        """Answer a client that reaches the server through an HTTP proxy, as the proxy would.

        The client library's own proxy code runs: it asks for a tunnel with
        ``CONNECT`` and, once answered 200, speaks WebSocket through it. In
        memory the server is the other end of the tunnel.
        """
        self.call._note(f"through an HTTP proxy: {head.split(b' ')[1].decode('latin-1')} tunnelled")
        del self._head[:]
        try:
            self._write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        except ConnectionLost:
            return
        if rest:
            self._receive_handshake(rest)

    def _on_request(self, event: Request | None) -> None:
        self.request = event
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in self.raw_headers]
        self.call._requested(headers, offered_subprotocols(headers))
        self.sink.on_request()

    def renegotiate(self, target: str, headers: Sequence[tuple[str, str]]) -> str | None:
        """Redo the handshake on a request modified before it was answered (``process_request``).

        wsproto reads the modified request as if it had come from the client, so
        its verdict, offered extensions and subprotocols are those of the request
        the server actually answers. Returns wsproto's complaint, or None.
        """
        lines = [f"GET {target} HTTP/1.1".encode("latin-1")]
        lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
        ws = WSConnection(ConnectionType.SERVER)
        try:
            ws.receive_data(b"\r\n".join(lines) + b"\r\n\r\n")
            for event in ws.events():
                if isinstance(event, Request):
                    self._ws = ws
                    self._fast = False  # this one went through h11
                    self.request = event
                    self.handshake_error = None
                    return None
        except RemoteProtocolError as exc:
            return str(exc)
        return "incomplete request"  # pragma: no cover - a serialized request is always complete

    def _answer_malformed_request(self) -> None:
        respond = self.conventions.malformed_response
        if respond is not None:
            response = respond()
            self.answered = True
            self.call._answered(400, body=response.partition(b"\r\n\r\n")[2])
            with contextlib.suppress(ConnectionLost):
                self._write(response)
        self.close_transport()

    def _process_events(self) -> None:
        sink = self.sink
        for event in self._ws.events():
            if isinstance(event, Message):
                error = self._check_size(event.data, event.frame_finished)
                if error is not None:
                    self.fail(1009, error)
                    return
                self.call._received(event.data, event.message_finished)
                if not event.frame_finished:
                    self._frame_parts.append(event.data)
                    continue
                data = event.data
                if self._frame_parts:
                    self._frame_parts.append(data)
                    parts, self._frame_parts = self._frame_parts, []
                    data = "".join(parts) if isinstance(data, str) else b"".join(parts)
                sink.on_frame(data if isinstance(data, str) else bytes(data), event.message_finished)
            elif isinstance(event, Ping):
                if self._ws.state is ConnectionState.OPEN:
                    with contextlib.suppress(ConnectionLost):
                        self._write(self._ws.send(event.response()))
            elif isinstance(event, Pong):
                sink.on_pong(bytes(event.payload))
            elif isinstance(event, CloseConnection):
                self._on_close_frame(event)
                return
            if self.finished:
                return

    def _on_close_frame(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state not in (ConnectionState.REMOTE_CLOSING, ConnectionState.CLOSED):
            # wsproto reports a protocol error as a CloseConnection event without changing state.
            code = int(event.code)
            if code == 1009 and self._watch is not None and self._watch.too_big is not None:
                self.fail(code, self._watch.too_big)
            else:
                self.fail(code, self._failure_reason(code, event.reason or ""))
            return
        self.close_rcvd = (int(event.code), event.reason or "")
        self.closed_cleanly = True
        self.call._close_received(*self.close_rcvd)
        if state is ConnectionState.REMOTE_CLOSING:
            with contextlib.suppress(ConnectionLost):
                self.send_close(*self.close_rcvd)
        self._cancel_close_timer()
        self.sink.on_close(*self.close_rcvd)
        self._end_after_close()

    def _end_after_close(self) -> None:
        """The closing handshake is over (or the connection failed): close, as the real server closes."""
        if not self.conventions.half_close:
            self.close_transport()
            return
        # Half-close and read on, discarding, until the client closes too (or close_timeout passes).
        self._discarding = True
        self._out.write_eof()
        if self.close_timeout is not None and self._close_timer is None and not self.finished:
            self._close_timer = self.host.call_later(self.close_timeout, self._close_timed_out)

    def _lost(self) -> None:
        """EOF or reset from the client before a close frame (or after it, unanswered)."""
        self.close_transport()

    def _failure_reason(self, code: int, wsproto_reason: str) -> str:
        """The close reason the real server sends for a frame wsproto rejected.

        Both real servers word protocol errors as websockets' protocol does. An
        invalid UTF-8 text message is the exception: uvicorn decodes it itself
        (``conventions.invalid_utf8_reason``), while a close frame's reason is
        checked by the protocol, in websockets' words, by both.
        """
        if code == 1007:
            match = _DECODE_ERROR.search(wsproto_reason)
            if match:
                position, reason = int(match[1]), match[2]
                if wsproto_reason.startswith("Error decoding CLOSE reason"):
                    return f"{reason} at position {position}"
                return self.conventions.invalid_utf8_reason(position, reason)
        for pattern, words in _WEBSOCKETS_REASONS:
            if pattern.search(wsproto_reason):
                return words
        return wsproto_reason

    def _check_size(self, data: str | bytes, frame_finished: bool) -> str | None:
        """websockets' 1009 reason if this chunk takes a compressed message over ``max_size``.

        Uncompressed frames were checked when their header arrived (by their
        declared length, as websockets checks them); a compressed frame's size
        is only known as it is decompressed.
        """
        watch = self._watch
        if watch is None or not watch.compressed:
            return None
        size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
        watch.decompressed += size
        left = watch.left()
        if left is not None and watch.decompressed > left:
            return too_big_reason(None, left, watch.message_size or None)
        if frame_finished:
            watch.message_size += watch.decompressed
            watch.decompressed = 0
        return None

    # Writing

    def _write(self, data: bytes) -> None:
        out = self._out
        if out.reset or out.reader_closed or self.finished:
            raise ConnectionLost
        out.write(data)

    @property
    def must_drain(self) -> bool:
        """True while more than the write limit waits beyond the socket buffer (the client is not reading)."""
        out = self._out
        # ``over_capacity > write_high``, without the property (this runs before every send).
        return out.size - out.capacity > self.write_high and not (out.reset or out.reader_closed)

    async def drain(self) -> None:
        """Wait until the client has read enough (a sender's backpressure); ConnectionLost if it left."""
        out = self._out
        while out.over_capacity > self.write_low and not (out.reset or out.reader_closed):
            waiter = self._drain_waiter = self.host.event()
            try:
                await waiter.wait()
            finally:
                self._drain_waiter = None
        if out.reset or out.reader_closed:
            raise ConnectionLost

    def _writable(self) -> None:
        if self._drain_waiter is not None and self._out.over_capacity <= self.write_low:
            self._drain_waiter.set()

    # Opening handshake

    def negotiate(self) -> list[tuple[bytes, bytes]]:
        """Let wsproto accept the request; its 101 headers (Upgrade, Connection, Accept, Extensions).

        permessage-deflate is negotiated when enabled and offered. From here on
        wsproto speaks frames; the 101 itself is sent by :meth:`send_accept`.
        """
        request = self.request
        assert request is not None, "negotiate() needs a request wsproto accepted"
        extensions: list[Extension] = [ServerDeflate()] if self.compression and request.extensions else []
        if self.max_size is not None or self.max_fragment is not None:
            self._watch = _FrameWatch(self.max_size, self.max_fragment)
            extensions.append(self._watch)
        self._plain_out = all(type(extension) is _FrameWatch for extension in extensions)
        deflate = any(isinstance(extension, PerMessageDeflate) for extension in extensions)
        self._read_message = inflated_message if deflate else plain_message
        if self._fast:
            return _compat.accept_without_h11(self._ws, extensions)
        data = self._ws.send(AcceptConnection(extensions=extensions))
        head, _, _ = data.partition(b"\r\n\r\n")
        return _compat.accept_headers(_parse_header_block(head))

    def send_accept(self, headers: RawHeaders, subprotocol: str | None) -> None:
        """Send the 101 with these headers (after :meth:`negotiate`)."""
        lines = [b"HTTP/1.1 101 Switching Protocols", *(name + b": " + value for name, value in headers)]
        self.answered = True
        self.call._answered(101, subprotocol)
        self._write(b"\r\n".join(lines) + b"\r\n\r\n")

    def accept(self, subprotocol: str | None, extra_headers: RawHeaders = ()) -> None:
        """Answer 101 with the server's headers in its order.

        The subprotocol is announced even if the client did not offer it, as
        real servers do; the client library decides what to make of that.
        """
        extra = list(extra_headers)
        if subprotocol is not None:
            extra.append((b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1")))
        self.send_accept(self.conventions.accept_headers(self.negotiate(), extra), subprotocol)

    def accept_response(self, subprotocol: str | None) -> Any:
        """Negotiate and return the 101 as a ``Response`` object a ``process_response`` hook may change."""
        from ._http import Response, make_headers

        extra = [] if subprotocol is None else [(b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1"))]
        headers = self.conventions.accept_headers(self.negotiate(), extra)
        items = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
        return Response(101, "Switching Protocols", make_headers(items), b"")

    def reject(self, status: int, headers: RawHeaders, body: bytes, *, trailing: RawHeaders = ()) -> None:
        """Answer with a plain HTTP response and close the connection.

        ``headers`` come first, then the server's defaults, then ``trailing``.
        A client that already left is not an error: there is nobody to answer.
        """
        data = self.conventions.reject_response(status, headers, body, trailing=trailing)
        self.reject_raw(status, data, body)

    def reject_raw(self, status: int, data: bytes, body: bytes) -> None:
        """Send a complete HTTP response (already serialized) instead of the upgrade, then close."""
        self.answered = True
        self.call._answered(status, body=body)
        with contextlib.suppress(ConnectionLost):
            self._write(data)
        self.close_transport()

    # Data transfer

    def send_message(self, data: str | bytes, *, fin: bool = True, raw_text: bool = False) -> None:
        """Send one frame of a message (``fin=False`` for a fragment).

        ``raw_text=True`` sends ``bytes`` in a text frame without checking them,
        as ``websockets``' ``send(data, text=True)`` does.
        """
        connection = self._ws.connection
        if connection is None or self._ws.state is not ConnectionState.OPEN:
            raise ConnectionLost
        if raw_text and isinstance(data, bytes):
            self.call._sent(data.decode("utf-8", "replace"), fin)
            payload = _compat.raw_text_frame(connection, data, fin)
        else:
            self.call._sent(data, fin)
            if not fin:
                fast = None
            elif self._plain_out:
                fast = plain_data_frame(connection, data)
            else:
                fast = complete_data_frame(connection, data)
            if fast is not None:
                payload = fast
            else:
                event = (
                    TextMessage(data=data, message_finished=fin)
                    if isinstance(data, str)
                    else BytesMessage(data=data, message_finished=fin)
                )
                payload = self._ws.send(event)
        self._write(payload)

    def send_ping(self, payload: bytes) -> None:
        if self._ws.state is not ConnectionState.OPEN:
            raise ConnectionLost
        self._write(self._ws.send(Ping(payload=payload)))

    def send_pong(self, payload: bytes) -> None:
        if self._ws.state is not ConnectionState.OPEN:
            raise ConnectionLost
        self._write(self._ws.send(Pong(payload=payload)))

    def send_close(self, code: int, reason: str = "") -> None:
        """Start (or finish) the closing handshake; a no-op if a close was sent already.

        When the server starts the close, the client gets ``close_timeout``
        seconds to answer before the transport is closed (or aborted, as the
        real server does).
        """
        if self.close_sent is not None or self._ws.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return
        if len(reason.encode("utf-8")) > 123:
            raise control_frame_too_long()
        starting = self._ws.state is ConnectionState.OPEN
        connection = self._ws.connection
        assert connection is not None
        fast = close_frame_out(connection, int(code), reason)
        if fast is not None:
            data = fast
            _compat.close_sent(connection)
        else:
            try:
                data = self._ws.send(CloseConnection(code=code, reason=reason))
            except LocalProtocolError:  # pragma: no cover - guarded by the state check
                return
        self.close_sent = (int(code), _sent_reason(data))
        self.call._close_sent(*self.close_sent)
        if self.close_rcvd_then_sent is None:
            self.close_rcvd_then_sent = self.close_rcvd is not None
        if starting and self.close_timeout is not None and not self.finished:
            self._close_timer = self.host.call_later(self.close_timeout, self._close_timed_out)
        self._write(data)

    @property
    def waiting_for_eof(self) -> bool:
        """The closing handshake is over and the server half-closed: only the client's EOF is still to come."""
        return self._discarding and not self.finished

    def expire_close_timeout(self) -> None:
        """End a closing handshake the client has not finished now, as ``close_timeout`` would later (at exit)."""
        if self._close_timer is not None:
            self._cancel_close_timer()
            self._close_timed_out()

    def _close_timed_out(self) -> None:
        self._close_timer = None
        if self.finished:
            return
        if self.conventions.close_timeout_aborts:
            self.abort()
        else:
            self.close_transport()

    def _cancel_close_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection: send a close frame with ``code``, then end it as the real server does."""
        with contextlib.suppress(ConnectionLost):
            self.send_close(code, reason)
        self._cancel_close_timer()
        self.sink.on_failed(code, reason)
        self._end_after_close()

    # Ending

    def close_transport(self) -> None:
        """Close the connection: the client reads what was sent, then EOF."""
        if self.finished:
            return
        self.finished = True
        self._cancel_close_timer()
        self._out.write_eof()
        self._in.close_reader()
        self._writable_all()
        self.sink.on_closed()
        if self.on_finished is not None:
            self.on_finished()

    def detach(self) -> None:
        """Drop the links back from the pipe and to the layer above, once the connection and its task are over.

        A finished connection is then freed by reference counting, as a real
        server's is once its transport is closed, instead of waiting for the
        cyclic garbage collector (which a test suite opening thousands of
        connections would otherwise keep busy).
        """
        self._in.on_readable = self._out.on_writable = _nothing
        self.on_finished = None
        self.sink = _DETACHED

    def abort(self) -> None:
        """Drop the connection without a close frame, as ``transport.abort()`` does.

        The bytes already handed to the network still arrive, then EOF: the
        client sees the connection end without a close frame (1006).
        """
        self.close_transport()

    def _writable_all(self) -> None:
        if self._drain_waiter is not None:
            self._drain_waiter.set()


_DETACHED = Sink()


def _nothing() -> None:
    pass


class _FrameWatch(Extension):
    """Sees each incoming frame header, to check ``max_size`` as websockets does.

    It is never offered or announced (the client does not see it); wsproto runs
    it with the negotiated extensions. websockets refuses a frame whose declared
    length exceeds what is left of ``max_size`` (or the fragment limit) before
    reading its payload; for a compressed message the decompressed size counts,
    checked as it grows. wsproto reads a header again when the rest of it (the
    masking key) had not arrived, so a frame's length is counted only once the
    frame is complete.
    """

    name = "wsfake-frame-watch"

    def __init__(self, max_message: int | None, max_fragment: int | None) -> None:
        self.max_message = max_message
        self.max_fragment = max_fragment
        #: Bytes of the current message in frames already complete.
        self.message_size = 0
        #: Bytes the frame being read adds to ``message_size`` once complete.
        self.pending = 0
        #: Decompressed bytes of the current frame so far.
        self.decompressed = 0
        #: The current message is compressed (RSV1 on its first frame).
        self.compressed = False
        self.too_big: str | None = None

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool | str:
        return False

    def left_for_new_message(self) -> int | None:
        """The most bytes the first frame of a new message may carry."""
        if self.max_fragment is None:
            return self.max_message
        return self.max_fragment if self.max_message is None else min(self.max_message, self.max_fragment)

    def left(self) -> int | None:
        """The most bytes the current frame may carry (websockets' ``max_size`` for the frame)."""
        left = None if self.max_message is None else self.max_message - self.message_size
        if self.max_fragment is not None:
            left = self.max_fragment if left is None else min(left, self.max_fragment)
        return left

    def frame_inbound_header(
        self, proto: Any, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> RsvBits | CloseReason:
        if opcode.iscontrol():
            return _NO_RSV
        if opcode is not Opcode.CONTINUATION:
            self.message_size = 0
            self.compressed = rsv.rsv1
        self.decompressed = 0
        left = self.left()
        if left is not None and payload_length > left:
            self.too_big = too_big_reason(payload_length, left, self.message_size or None)
            return CloseReason.MESSAGE_TOO_BIG
        self.pending = 0 if self.compressed else payload_length
        return _NO_RSV

    def frame_inbound_complete(self, proto: Any, fin: bool) -> None:
        self.message_size += self.pending
        self.pending = 0


_NO_RSV = RsvBits(False, False, False)


def control_frame_too_long() -> Exception:
    """What websockets (the protocol of both real servers) raises for a close reason over 123 bytes."""
    try:
        from websockets.exceptions import ProtocolError
    except ImportError:  # pragma: no cover - exercised in the no-websockets job
        return ValueError("control frame too long")
    return ProtocolError("control frame too long")


def too_big_reason(size: int | None, max_size: int, current: int | None) -> str:
    """The 1009 close reason, worded as the ``websockets`` protocol (used by both real servers) words it."""
    try:
        from websockets.exceptions import PayloadTooBig
    except ImportError:
        message = "frame "
        if size is not None:
            message += f"with {size} bytes "
        if current is not None:
            message += f"after reading {current} bytes "
        return message + f"exceeds limit of {max_size + (current or 0)} bytes"
    try:
        exc = PayloadTooBig(size, max_size)
    except TypeError:  # pragma: no cover - websockets < 14 took a message only
        return f"over size limit ({size} > {max_size} bytes)"
    if current is not None and hasattr(exc, "set_current_size"):
        exc.set_current_size(current)
    return str(exc)


def _sent_reason(frame: bytes) -> str:
    """The reason as it went on the wire (wsproto truncates a reason that does not fit a control frame)."""
    length = frame[1] & 0x7F
    payload = frame[2 : 2 + length]
    return payload[2:].decode("utf-8", "replace") if len(payload) > 2 else ""


_DECODE_ERROR = re.compile(r"in position (\d+): (.+)$")

#: wsproto's words for a protocol error, and websockets' words for the same error.
_WEBSOCKETS_REASONS = [
    (re.compile(r"unexpected unmasked frame|unexpected masked frame"), "incorrect masking"),
    (re.compile(r"^Invalid opcode"), "invalid opcode"),
    (re.compile(r"^Reserved bit set unexpectedly"), "reserved bits must be 0"),
    (re.compile(r"^Control frame with payload len > 125"), "control frame too long"),
    (re.compile(r"^Invalid attempt to fragment control frame"), "fragmented control frame"),
    (
        re.compile(r"^CLOSE with invalid code|^CLOSE with unknown reserved code|local-only reason"),
        "invalid status code",
    ),
    (re.compile(r"^CLOSE with 1 byte payload"), "close frame too short"),
    (re.compile(r"^unexpected CONTINUATION"), "unexpected continuation frame"),
    (re.compile(r"^expected CONTINUATION"), "expected a continuation frame"),
]


def _request_line(head: bytes) -> tuple[str, str, str]:
    method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
    target, _, version = rest.rpartition(" ")
    return method, target, version


def _parse_header_block(block: bytes) -> list[tuple[bytes, bytes]]:
    """Header lines after the status or request line, as ``(name, value)`` with the name's case kept."""
    headers = []
    for line in block.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return headers


__all__ = ["ConnectionLost", "ServerSession", "Sink", "too_big_reason"]
