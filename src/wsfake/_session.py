"""The server side of one WebSocket connection, spoken by wsproto.

:class:`ServerSession` reads the client's bytes from a
:class:`~wsfake._pipe.PipeStream`, lets wsproto parse the opening handshake
and every frame, and writes wsproto's bytes back. It answers pings and echoes
close frames as ``websockets.serve`` and uvicorn do, enforces ``max_size``, and
records what crossed the wire. Handler and ASGI targets sit on top of it.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
from collections.abc import Sequence
from typing import Any, Literal

import anyio
import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.frame_protocol import Opcode
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ._deflate import ServerDeflate
from ._fastpath import complete_data_frame
from ._pipe import PipeStream
from ._records import Call

RawHeaders = Sequence[tuple[bytes, bytes]]

#: Whose conventions the session follows where real servers differ: ``websockets.serve``
#: (handler targets) or uvicorn (ASGI targets).
Flavor = Literal["websockets", "uvicorn"]


class ConnectionLost(Exception):
    """The client went away (EOF or reset) before a close frame arrived."""


class ServerSession:
    """wsproto over a server byte stream, with the framing rules of a real server."""

    def __init__(
        self,
        stream: PipeStream,
        call: Call,
        *,
        max_size: int | None,
        compression: bool,
        flavor: Flavor = "websockets",
    ) -> None:
        self.stream = stream
        self.flavor = flavor
        self.call = call
        self.max_size = max_size
        self.compression = compression
        self._ws = WSConnection(ConnectionType.SERVER)
        self.request: Request | None = None
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.close_sent: tuple[int, str] | None = None
        self.close_rcvd: tuple[int, str] | None = None
        #: True once a close frame was received and the one we sent came after it.
        self.close_rcvd_then_sent: bool | None = None
        self.eof = False
        self._message_size = 0

    @property
    def connecting(self) -> bool:
        """True until the opening handshake was answered."""
        return self._ws.state is ConnectionState.CONNECTING

    @property
    def open(self) -> bool:
        return self._ws.state is ConnectionState.OPEN

    async def _write(self, data: bytes) -> None:
        if data:
            try:
                await self.stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                raise ConnectionLost from None

    async def _read(self) -> bytes | None:
        try:
            return await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.eof = True
            return None

    # Opening handshake

    async def read_request(self) -> Request | None:
        """Read the upgrade request; None if the client left or sent garbage (answered 400).

        wsproto validates the request; the header block is also kept verbatim in
        :attr:`raw_headers` (original case, order and duplicates), because
        wsproto's event leaves out ``Host`` and the ``Sec-WebSocket-*`` offers.
        """
        head = bytearray()
        while True:
            data = await self._read()
            if data is not None and not self.raw_headers:
                head += data
                end = head.find(b"\r\n\r\n")
                if end >= 0:
                    self.raw_headers = _parse_header_block(bytes(head[:end]))
            try:
                self._ws.receive_data(data)
                for event in self._ws.events():
                    if isinstance(event, Request):
                        self.request = event
                        self.call._requested(
                            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in self.raw_headers],
                            list(event.subprotocols),
                        )
                        return event
            except RemoteProtocolError as exc:
                if isinstance(exc.__context__, h11.RemoteProtocolError):
                    await self._answer_malformed_request()
                elif self._ws.state is ConnectionState.CONNECTING and isinstance(exc.event_hint, RejectConnection):
                    body = f"Failed to open a WebSocket connection: {exc}.\n".encode()
                    await self.reject(exc.event_hint.status_code, list(exc.event_hint.headers), body)
                return None
            if data is None:
                return None

    async def _answer_malformed_request(self) -> None:
        """A request that is not valid HTTP: uvicorn answers 400, websockets.serve just closes."""
        if self.flavor == "uvicorn":
            body = b"Invalid HTTP request received."
            self.call._answered(400, body=body)
            head = (
                "HTTP/1.1 400 Bad Request\r\n"
                f"date: {email.utils.formatdate(usegmt=True)}\r\n"
                "content-type: text/plain; charset=utf-8\r\nconnection: close\r\n\r\n"
            )
            with contextlib.suppress(ConnectionLost):
                await self._write(head.encode() + body)
        self.stream.close()

    async def accept(self, subprotocol: str | None, extra_headers: RawHeaders = ()) -> None:
        """Answer 101; permessage-deflate is negotiated when enabled and offered."""
        headers = [(b"Date", email.utils.formatdate(usegmt=True).encode()), *extra_headers]
        extensions: list[Extension] = [ServerDeflate()] if self.compression else []
        data = self._ws.send(AcceptConnection(subprotocol=subprotocol, extensions=extensions, extra_headers=headers))
        self.call._answered(101, subprotocol)
        await self._write(data)

    async def reject(self, status: int, headers: RawHeaders, body: bytes) -> None:
        """Answer with a plain HTTP response and close the connection.

        A client that already left is not an error: there is nobody to answer.
        """
        names = {name.lower() for name, _ in headers}
        extra: list[tuple[bytes, bytes]] = []
        if b"date" not in names:
            extra.append((b"Date", email.utils.formatdate(usegmt=True).encode()))
        if b"connection" not in names:
            extra.append((b"Connection", b"close"))
        if b"content-length" not in names:
            extra.append((b"Content-Length", str(len(body)).encode()))
        if b"content-type" not in names:
            extra.append((b"Content-Type", b"text/plain; charset=utf-8"))
        event = RejectConnection(status_code=status, headers=[*extra, *headers], has_body=True)
        data = self._ws.send(event) + self._ws.send(RejectData(data=body, body_finished=True))
        self.call._answered(status, body=body)
        try:
            await self._write(data)
        except ConnectionLost:
            pass
        finally:
            self.stream.close()

    # Data transfer

    async def send_message(self, data: str | bytes, *, fin: bool = True, raw_text: bool = False) -> None:
        """Send one frame of a message (``fin=False`` for a fragment).

        ``raw_text=True`` sends ``bytes`` in a text frame without checking them,
        as ``websockets``' ``send(data, text=True)`` does; wsproto's event API
        cannot, so this drives its frame serializer directly.
        """
        if not self.open:
            raise ConnectionLost
        if raw_text and isinstance(data, bytes):
            self.call._sent(data.decode("utf-8", "replace"), fin)
            payload = self._raw_text_frame(data, fin)
        else:
            self.call._sent(data, fin)
            fast = complete_data_frame(self._ws.connection, data) if fin and self._ws.connection else None
            if fast is not None:
                payload = fast
            else:
                event: Event = (
                    TextMessage(data=data, message_finished=fin)
                    if isinstance(data, str)
                    else BytesMessage(data=data, message_finished=fin)
                )
                payload = self._ws.send(event)
        await self._write(payload)

    def _raw_text_frame(self, data: bytes, fin: bool) -> bytes:
        proto = self._ws.connection._proto  # type: ignore[union-attr]
        if proto._outbound_opcode is None:
            opcode = proto._outbound_opcode = Opcode.TEXT
        else:
            opcode = Opcode.CONTINUATION
        if fin:
            proto._outbound_opcode = None
        return bytes(proto._serialize_frame(opcode, data, fin))

    async def send_ping(self, payload: bytes) -> None:
        await self._write(self._ws.send(Ping(payload=payload)))

    async def send_pong(self, payload: bytes) -> None:
        await self._write(self._ws.send(Pong(payload=payload)))

    async def send_close(self, code: int, reason: str = "") -> None:
        """Start (or finish) the closing handshake; a no-op if a close was sent."""
        if self.close_sent is not None or self._ws.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return
        self.close_sent = (int(code), reason)
        self.call._close_sent(*self.close_sent)
        if self.close_rcvd_then_sent is None:
            self.close_rcvd_then_sent = self.close_rcvd is not None
        try:
            data = self._ws.send(CloseConnection(code=code, reason=reason))
        except LocalProtocolError:  # pragma: no cover - guarded by the state check
            return
        await self._write(data)

    async def receive_events(self) -> list[Event]:
        """Read once from the client and return the events worth reporting.

        Pings are answered and close frames echoed here, as a real server does;
        on EOF or reset before a close frame, :class:`ConnectionLost` is raised.
        An oversize message or a protocol error sends the matching close code.
        """
        return await self.process(await self.read_chunk())

    async def read_chunk(self) -> bytes:
        """The next bytes from the client; :class:`ConnectionLost` at EOF or reset."""
        data = await self._read()
        if data is None:
            raise ConnectionLost
        return data

    async def process(self, data: bytes) -> list[Event]:
        """Feed bytes read with :meth:`read_chunk` to wsproto; see :meth:`receive_events`."""
        if self._ws.state is ConnectionState.CLOSED:
            return []
        self._ws.receive_data(data)
        out: list[Event] = []
        for event in self._ws.events():
            if isinstance(event, Message):
                error = self._check_size(event)
                if error is not None:
                    await self.fail(1009, error)
                    break
                self.call._received(event.data, event.message_finished)
                out.append(event)
            elif isinstance(event, Ping):
                if self.open:
                    await self._write(self._ws.send(event.response()))
                out.append(event)
            elif isinstance(event, CloseConnection):
                if self.close_rcvd is None and self._ws.state in (
                    ConnectionState.REMOTE_CLOSING,
                    ConnectionState.CLOSED,
                ):
                    self.close_rcvd = (int(event.code), event.reason or "")
                    self.call._close_received(*self.close_rcvd)
                    if self._ws.state is ConnectionState.REMOTE_CLOSING:
                        await self.send_close(event.code, event.reason or "")
                    out.append(event)
                else:
                    reason = self._failure_reason(event.code, event.reason or "")
                    await self.fail(event.code, reason)
                    out.append(CloseConnection(event.code, reason))
                    break
            else:
                out.append(event)
        return out

    def _failure_reason(self, code: int, wsproto_reason: str) -> str:
        """The close reason the real server sends for a frame wsproto rejected.

        For invalid UTF-8, websockets sends ``"<reason> at position <n>"`` and
        uvicorn an empty reason; wsproto's own text is the decoder's message.
        """
        if code != 1007:
            return wsproto_reason
        if self.flavor == "uvicorn":
            return ""
        match = _DECODE_ERROR.search(wsproto_reason)
        return f"{match[2]} at position {match[1]}" if match else wsproto_reason

    def _check_size(self, event: Message[Any]) -> str | None:
        """Return websockets' 1009 reason if this fragment takes the message over max_size."""
        if self.max_size is None:
            return None
        data = event.data
        if isinstance(event, TextMessage) and len(data) * 4 > self.max_size - self._message_size:
            size = len(data.encode("utf-8", "surrogatepass"))
        else:
            size = len(data)
        before = self._message_size
        self._message_size += size
        if self._message_size > self.max_size:
            self._message_size = 0
            frame = f"frame with {self._frame_length(size)} bytes "
            if before:
                frame += f"after reading {before} bytes "
            return f"{frame}exceeds limit of {self.max_size} bytes"
        if event.message_finished:
            self._message_size = 0
        return None

    def _frame_length(self, seen: int) -> int:
        """The declared payload length of the frame being read (wsproto streams partial frames)."""
        decoder = getattr(getattr(self._ws.connection, "_proto", None), "_frame_decoder", None)
        header = getattr(decoder, "header", None)
        length = getattr(header, "payload_len", None)
        return length if isinstance(length, int) and length >= seen else seen

    async def fail(self, code: int, reason: str) -> None:
        """Fail the connection: send a close frame with ``code`` and close the stream."""
        with contextlib.suppress(ConnectionLost):
            await self.send_close(code, reason)
        self.finish()

    def finish(self) -> None:
        """Close the stream (the client sees EOF after what was sent)."""
        self.stream.close()

    def abort(self) -> None:
        """Drop the connection without a close frame, as a crashed server does."""
        self.stream.close()


_DECODE_ERROR = re.compile(r"in position (\d+): (.+)$")


def _parse_header_block(block: bytes) -> list[tuple[bytes, bytes]]:
    """Header lines after the request line, as ``(name, value)`` with the name's case kept."""
    headers = []
    for line in block.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return headers


__all__ = ["ConnectionLost", "ServerSession"]
