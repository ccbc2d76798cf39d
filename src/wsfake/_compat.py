"""The one place where wsfake reaches into wsproto's and h11's private parts.

wsproto is the protocol authority; a few things real servers do are not in its
public API (sending bytes in a text frame unchecked, serializing a complete frame without the
event dispatch, reading a plain opening handshake without h11's state machine,
and for the incoming fast path: whether the reader is idle, reading a close
frame with wsproto's own rules, and ending the reader after a close frame or a
failure as wsproto ends it).
They are reached here, checked against the wsproto releases wsfake is tested
with, so a release that moves them fails loudly at import. From h11 only its
request grammar is borrowed; without it every request goes through h11.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, NamedTuple, cast

import wsproto
from wsproto import WSConnection
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import Request
from wsproto.frame_protocol import Frame, FrameDecoder, FrameProtocol, Opcode, ParseFailed
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import generate_accept_token, normed_header_dict

#: The Upgrade value of a 101 as uvicorn and ``websockets.serve`` write it (wsproto 1.3 names it
#: ``wsproto.handshake.WEBSOCKET_UPGRADE``; wsproto 1.2 has no such name and writes ``WebSocket``).
WEBSOCKET_UPGRADE = b"websocket"

#: wsproto releases whose private attributes below were checked.
TESTED_WSPROTO = ((1, 2), (1, 3))


def _version(text: str) -> tuple[int, int]:
    major, minor, *_ = (int(part) for part in [*text.split(".")[:2], "0"])
    return major, minor


_WSPROTO_VERSION = _version(getattr(wsproto, "__version__", "0.0"))
if _WSPROTO_VERSION not in TESTED_WSPROTO:  # pragma: no cover - depends on the installed release
    raise ImportError(
        f"wsfake was tested with wsproto {', '.join('.'.join(map(str, v)) for v in TESTED_WSPROTO)} "
        f"and relies on some of its internals; wsproto {wsproto.__version__} is installed. "
        "Install a tested release (pip install 'wsproto>=1.2,<1.4')."
    )


def frame_protocol(connection: Connection) -> FrameProtocol:
    """The frame layer of an open connection."""
    proto: FrameProtocol = connection._proto
    return proto


def raw_text_frame(connection: Connection, data: bytes, fin: bool) -> bytes:
    """A text frame carrying ``data`` unchecked, as websockets' ``send(bytes, text=True)`` sends it."""
    proto = connection._proto
    if proto._outbound_opcode is None:
        opcode = proto._outbound_opcode = Opcode.TEXT
    else:
        opcode = Opcode.CONTINUATION
    if fin:
        proto._outbound_opcode = None
    return bytes(proto._serialize_frame(opcode, data, fin))


def extensions(connection: Connection) -> list[Any]:
    """The extensions negotiated on the connection, in wsproto's order."""
    return list(connection._proto.extensions)


def idle_server_writer(connection: Connection) -> FrameProtocol | None:
    """The frame layer of a server connection between outgoing messages; None otherwise."""
    return None if server_writer_busy(connection) else connection._proto


def server_writer_busy(connection: Connection) -> bool:
    """True while a fragmented outgoing message is in progress (or the connection is not a server's)."""
    proto: FrameProtocol = connection._proto
    return proto.client or proto._outbound_opcode is not None


def idle_decoder(connection: Connection) -> FrameDecoder | None:
    """The frame decoder while wsproto's reader is idle; None otherwise.

    Idle: no incoming byte buffered, no frame or fragmented message in
    progress, and the reader still alive (wsproto reads nothing more after a
    parse error or a close frame).
    """
    proto = connection._proto
    decoder: FrameDecoder = proto._frame_decoder
    if (
        decoder.header is not None
        or decoder.buffer.buffer
        or proto._message_decoder.opcode is not None
        or getattr(proto._parse_more, "gi_frame", None) is None
    ):
        return None
    return decoder


def fail_reader(connection: Connection, failure: ParseFailed) -> None:
    """End wsproto's reader with ``failure``, as a parse error ends it: it reads nothing more."""
    with contextlib.suppress(ParseFailed):
        connection._proto._parse_more.throw(failure)


def read_close(connection: Connection, payload: bytes) -> tuple[int, str]:
    """A close frame's code and reason as wsproto reads them (raises its ``ParseFailed`` for an invalid one)."""
    frame = connection._proto._process_close(Frame(Opcode.CLOSE, payload, True, True))
    return cast("tuple[int, str]", frame.payload)


def closed_by_remote(connection: Connection) -> None:
    """What wsproto does on reading the peer's close frame: the state moves on, and it reads no more."""
    if connection._state is ConnectionState.LOCAL_CLOSING:
        connection._state = ConnectionState.CLOSED
    else:
        connection._state = ConnectionState.REMOTE_CLOSING
    connection._proto._parse_more.close()


def close_sent(connection: Connection) -> None:
    """What wsproto's ``send(CloseConnection(...))`` does to the state once the frame is written."""
    if connection._state is ConnectionState.REMOTE_CLOSING:
        connection._state = ConnectionState.CLOSED
    else:
        connection._state = ConnectionState.LOCAL_CLOSING


def accept_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """wsproto's 101 headers as wsproto 1.3 and both real servers write them.

    wsproto 1.2 writes ``Upgrade: WebSocket``; uvicorn and ``websockets.serve``
    write ``Upgrade: websocket``, which a client may see.
    """
    return [(name, b"websocket") if name.lower() == b"upgrade" else (name, value) for name, value in headers]


# The opening handshake without h11's state machine (see ServerSession._fast_request)

try:  # h11's own grammar for a request line and a header line
    from h11._abnf import header_field, request_line
except ImportError:  # pragma: no cover - an h11 that moved them: every request goes through h11 itself
    _REQUEST_LINE = _HEADER_FIELD = None
else:
    _REQUEST_LINE = re.compile(request_line.encode("ascii"))
    _HEADER_FIELD = re.compile(header_field.encode("ascii"))
_FRAMING_HEADERS = (b"content-length", b"transfer-encoding")


class _ParsedRequest(NamedTuple):
    """What wsproto reads from an ``h11.Request`` event."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]


def plain_request(head: bytes) -> _ParsedRequest | None:
    """The request in ``head`` (without its blank line) if h11 would take it exactly as it stands.

    That is: h11's request-line and header-line grammar match every line,
    HTTP/1.1 with exactly one Host header, no folded lines and no body framing
    headers. Anything else returns None, for h11 itself to read (and judge).
    """
    if _REQUEST_LINE is None or _HEADER_FIELD is None:  # pragma: no cover - see the import above
        return None
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None or match["http_version"] != b"1.1":
        return None
    headers = []
    hosts = 0
    for line in lines[1:]:
        field = _HEADER_FIELD.fullmatch(line)
        if field is None:
            return None  # includes folded lines (they start with whitespace)
        name = field["field_name"].lower()
        if name in _FRAMING_HEADERS:
            return None
        hosts += name == b"host"
        headers.append((name, field["field_value"]))
    if hosts != 1:
        return None
    return _ParsedRequest(match["method"], match["target"], headers)


def process_request(ws: WSConnection, request: _ParsedRequest) -> Request:
    """wsproto's own reading of an upgrade request (raises its ``RemoteProtocolError`` as it would)."""
    event: Request = ws.handshake._process_connection_request(request)  # type: ignore[arg-type]  # duck-typed
    return event


def accept_without_h11(ws: WSConnection, extensions: list[Any]) -> list[tuple[bytes, bytes]]:
    """What wsproto's accept does after :func:`process_request`, minus serializing the 101 with h11.

    The same functions compute the accept token and negotiate the extensions;
    the connection is then open for frames, as after ``ws.send(AcceptConnection(...))``.
    Returns the 101's headers as wsproto orders them.
    """
    handshake = ws.handshake
    request = handshake._initiating_request
    assert request is not None, "accept_without_h11() follows process_request()"
    nonce = normed_header_dict(request.extra_headers)[b"sec-websocket-key"]
    headers = [
        (b"Upgrade", WEBSOCKET_UPGRADE),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", generate_accept_token(nonce)),
    ]
    if extensions:
        accepts = server_extensions_handshake(cast("list[str]", request.extensions), extensions)
        if accepts:
            headers.append((b"Sec-WebSocket-Extensions", accepts))
    handshake._connection = ws.connection = Connection(ConnectionType.SERVER, extensions)
    handshake._state = ConnectionState.OPEN
    return headers


def is_client(connection: Connection) -> bool:
    return bool(connection._proto.client)
