"""The one place where wsfake reaches into wsproto's private parts.

wsproto is the protocol authority; a few things real servers do are not in its
public API (sending bytes in a text frame unchecked, knowing the declared length
and RSV1 bit of the frame being read, serializing a complete frame without the
event dispatch). They are reached here, checked against the versions wsfake is
tested with, so a wsproto release that moves them fails loudly at import.
"""

from __future__ import annotations

from typing import Any

import wsproto
from wsproto.connection import Connection
from wsproto.extensions import Extension
from wsproto.frame_protocol import FrameDecoder, FrameProtocol, Opcode

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


def incoming_frame(connection: Connection) -> tuple[int | None, bool]:
    """The declared payload length and RSV1 bit of the frame being read (None, False between frames)."""
    header = getattr(connection._proto._frame_decoder, "header", None)
    if header is None:
        return None, False
    return int(header.payload_len), bool(header.rsv.rsv1)


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


def message_in_progress(connection: Connection) -> bool:
    """True while an outgoing fragmented message is unfinished."""
    return connection._proto._outbound_opcode is not None


def extensions(connection: Connection) -> list[Any]:
    """The extensions negotiated on the connection, in wsproto's order."""
    return list(connection._proto.extensions)


def idle_server_writer(connection: Connection) -> FrameProtocol | None:
    """The frame layer of a server connection between outgoing messages; None otherwise."""
    proto: FrameProtocol = connection._proto
    if proto.client or proto._outbound_opcode is not None:
        return None
    return proto


def idle_reader(connection: Connection) -> tuple[FrameDecoder, list[Extension]] | None:
    """The frame decoder and extensions when no incoming byte is buffered and no frame or message is in progress."""
    proto = connection._proto
    decoder: FrameDecoder = proto._frame_decoder
    if decoder.header is not None or decoder.buffer.buffer or proto._message_decoder.opcode is not None:
        return None
    return decoder, proto.extensions


def accept_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """wsproto's 101 headers as wsproto 1.3 and both real servers write them.

    wsproto 1.2 writes ``Upgrade: WebSocket``; uvicorn and ``websockets.serve``
    write ``Upgrade: websocket``, which a client may see.
    """
    return [(name, b"websocket") if name.lower() == b"upgrade" else (name, value) for name, value in headers]


def is_client(connection: Connection) -> bool:
    return bool(connection._proto.client)
