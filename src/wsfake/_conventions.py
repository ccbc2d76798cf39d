"""How each kind of real server behaves where real servers differ.

A target supplies one :class:`Conventions` value: handler targets follow
``websockets.serve``, ASGI targets follow uvicorn (its default ``websockets-sansio``
implementation). The server side reads these fields instead of asking which
server it imitates. Every field was observed against the real server on
127.0.0.1 and is checked by the differential suite (``tests/differential/``).
"""

from __future__ import annotations

import email.utils
import http
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

RawHeaders = list[tuple[bytes, bytes]]


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class _HttpDate:
    """The Date header value, formatted once per second as servers cache it."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = email.utils.formatdate(now, usegmt=True).encode()
        return self._value


http_date = _HttpDate()


@dataclass(frozen=True)
class Conventions:
    """One real server's observable habits."""

    #: Shown in transcripts and messages: ``"websockets.serve"`` or ``"uvicorn"``.
    name: str
    #: The ``Server`` header value (None: not sent) and the header's spelling.
    server_header: bytes | None
    #: Whether HTTP answers other than 101 carry the ``Server`` header.
    server_header_on_rejects: bool
    #: Whether the 101 carries a ``Date`` header, and its spelling.
    date_header: bytes | None
    #: The 101's header layout: ``*`` wsproto's headers, ``+`` the target's, ``date``/``server`` the defaults.
    #: (websockets.serve adds its Server header to every response itself, after process_response hooks.)
    accept_order: tuple[bytes, ...]
    #: Close frame sent to open connections when the server stops.
    shutdown_close: tuple[int, str]
    #: Answer to a connection still in its opening handshake when the server stops.
    shutdown_reject: tuple[int, bytes]
    #: Answer to a request that is not valid HTTP; None closes the connection without answering.
    malformed_response: Callable[[], bytes] | None
    #: Close reason for invalid UTF-8, given the decoder's position and reason.
    invalid_utf8_reason: Callable[[int, str], str]
    #: After close_timeout without the client's close frame: abort (True) or close (False) the transport.
    close_timeout_aborts: bool
    #: After the closing handshake, or failing the connection: half-close and read (discarding) until the
    #: client closes, as websockets' protocol does (True); or close both directions at once, as uvicorn (False).
    half_close: bool

    def accept_headers(
        self, wsproto_headers: Sequence[tuple[bytes, bytes]], extra: Sequence[tuple[bytes, bytes]]
    ) -> RawHeaders:
        """The 101 response headers in the real server's order.

        ``wsproto_headers`` are what wsproto produced (Upgrade, Connection,
        Sec-WebSocket-Accept, Sec-WebSocket-Extensions); ``extra`` what the
        target adds (app headers, then Sec-WebSocket-Protocol).
        """
        headers: RawHeaders = []
        date = http_date() if self.date_header is not None else None
        for name in self.accept_order:
            if name == b"*":
                headers.extend(wsproto_headers)
            elif name == b"+":
                headers.extend(extra)
            elif name.lower() == b"date" and self.date_header is not None and date is not None:
                headers.append((self.date_header, date))
            elif name.lower() == b"server" and self.server_header is not None:
                headers.append((name, self.server_header))
        return headers

    def reject_response(
        self,
        status: int,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        *,
        trailing: Sequence[tuple[bytes, bytes]] = (),
    ) -> bytes:
        """An HTTP answer instead of the upgrade, with the defaults both real servers add."""
        names = {name.lower() for name, _ in headers}
        out = list(headers)
        for name, value in (
            (b"Date", http_date()),
            (b"Connection", b"close"),
            (b"Content-Length", str(len(body)).encode()),
            (b"Content-Type", b"text/plain; charset=utf-8"),
        ):
            if name.lower() not in names:
                out.append((name, value))
        out.extend(trailing)
        if self.server_header_on_rejects and self.server_header is not None and b"server" not in names:
            out.append((b"Server", self.server_header))
        return serialize_response(status, out, body)


def serialize_response(status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    """HTTP/1.1 status line, headers and body, with the standard reason phrase."""
    lines = [f"HTTP/1.1 {status} {_phrase(status)}".encode("latin-1")]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _websockets_server_header() -> bytes:
    try:
        from websockets.http11 import SERVER
    except ImportError:
        from . import __version__

        SERVER = f"Python/{sys.version_info.major}.{sys.version_info.minor} wsfake/{__version__}"
    return SERVER.encode("latin-1")


def websockets_conventions(server_header: str | object | None = ...) -> Conventions:
    """``websockets.serve``: ``server_header`` defaults to websockets' own (``Python/x.y websockets/X.Y``)."""
    if server_header is ...:
        header: bytes | None = _websockets_server_header()
    elif server_header is None:
        header = None
    else:
        header = str(server_header).encode("latin-1")
    return Conventions(
        name="websockets.serve",
        server_header=header,
        server_header_on_rejects=True,
        date_header=b"Date",
        accept_order=(b"Date", b"*", b"+"),
        shutdown_close=(1001, ""),
        shutdown_reject=(503, b"Server is shutting down.\n"),
        malformed_response=None,
        invalid_utf8_reason=lambda position, reason: f"{reason} at position {position}",
        close_timeout_aborts=True,
        half_close=True,
    )


def _uvicorn_bad_request() -> bytes:
    body = b"Invalid HTTP request received."
    headers = [
        (b"date", http_date()),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"connection", b"close"),
    ]
    return serialize_response(400, headers, body)


def uvicorn_conventions(*, server_header: bool = True, date_header: bool = True) -> Conventions:
    """uvicorn (``websockets-sansio``): ``server: uvicorn`` and ``date`` only on the 101, as uvicorn sends them."""
    return Conventions(
        name="uvicorn",
        server_header=b"uvicorn" if server_header else None,
        server_header_on_rejects=False,
        date_header=b"date" if date_header else None,
        accept_order=(b"*", b"date", b"server", b"+"),
        shutdown_close=(1012, ""),
        shutdown_reject=(500, b"Internal Server Error"),
        malformed_response=_uvicorn_bad_request,
        invalid_utf8_reason=lambda position, reason: "",
        close_timeout_aborts=False,
        half_close=False,
    )
