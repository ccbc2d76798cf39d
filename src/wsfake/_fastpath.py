"""Faster paths for the most common frames, both ways, under wsproto's authority.

Outgoing: one complete, unfragmented data frame. The same extension hooks run, in
the same order and with the same arguments, as in wsproto's frame serializer;
only the header is written directly instead of going through the event dispatch.

Incoming: complete, unfragmented, masked text or binary frames at the start of a
segment, while wsproto is idle (nothing buffered, no frame or fragmented message
in progress) and no extension but wsfake's own size watch is active. The fast
path decides before touching any state: at the first frame it cannot take as it
is (a control frame, a fragment, a partial frame, RSV bits, a non-minimal
length, a frame over ``max_size``, invalid UTF-8) it stops, and the rest of the
segment goes to wsproto, which finds itself exactly where it would have been.

Anything else falls back to wsproto. ``tests/test_fastpath.py`` checks with
hypothesis that both paths produce identical bytes, events and state.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from wsproto.connection import Connection, ConnectionState
from wsproto.frame_protocol import FrameDecoder, Opcode, RsvBits

from . import _compat

_NO_RSV = RsvBits(False, False, False)
_TWO_BYTE = struct.Struct("!BBH")
_EIGHT_BYTE = struct.Struct("!BBQ")
_UNSIGNED_SHORT = struct.Struct("!H")
_UNSIGNED_LONG_LONG = struct.Struct("!Q")


def _python_apply_mask(data: bytes, mask: bytes) -> bytes:
    length = len(data)
    key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(length, "big")


_apply_mask: Callable[[bytes, bytes], bytes]
try:
    from websockets.speedups import apply_mask as _c_apply_mask  # C, when websockets is installed

    _apply_mask = _c_apply_mask
except ImportError:  # pragma: no cover - exercised in the no-websockets job
    _apply_mask = _python_apply_mask


def complete_data_frame(connection: Connection, data: str | bytes) -> bytes | None:
    """The bytes wsproto would send for ``data`` as one complete message, or None to fall back."""
    if connection.state is not ConnectionState.OPEN:
        return None
    proto = _compat.idle_server_writer(connection)
    if proto is None:
        return None
    if isinstance(data, str):
        opcode, payload = Opcode.TEXT, data.encode("utf-8")
    else:
        opcode, payload = Opcode.BINARY, bytes(data)
    rsv = _NO_RSV
    for extension in reversed(proto.extensions):
        rsv, payload = extension.frame_outbound(proto, opcode, rsv, payload, True)
    first = 0x80 | (rsv.rsv1 << 6) | (rsv.rsv2 << 5) | (rsv.rsv3 << 4) | opcode
    length = len(payload)
    if length <= 125:
        return bytes((first, length)) + payload
    if length <= 0xFFFF:
        return _TWO_BYTE.pack(first, 126, length) + payload
    return _EIGHT_BYTE.pack(first, 127, length) + payload


def plain_data_frame(connection: Connection, data: str | bytes) -> bytes | None:
    """:func:`complete_data_frame` for a connection whose extensions leave outgoing frames unchanged.

    The caller knows that no negotiated extension transforms outgoing frames
    (wsfake's size watch only looks at incoming ones), so the frame is its
    header and the payload; None when wsproto is not between messages.
    """
    if connection.state is not ConnectionState.OPEN or _compat.server_writer_busy(connection):
        return None
    if isinstance(data, str):
        payload = data.encode("utf-8")
        first = 0x81
    else:
        payload = bytes(data)
        first = 0x82
    length = len(payload)
    if length <= 125:
        return bytes((first, length)) + payload
    if length <= 0xFFFF:
        return _TWO_BYTE.pack(first, 126, length) + payload
    return _EIGHT_BYTE.pack(first, 127, length) + payload


def incoming_ready(connection: Connection | None, watch_type: type) -> FrameDecoder | None:
    """wsproto's frame decoder when it is idle and no extension but the size watch (``watch_type``) is active."""
    if connection is None or connection.state is not ConnectionState.OPEN:
        return None
    idle = _compat.idle_reader(connection)
    if idle is None:
        return None
    decoder, extensions = idle
    for extension in extensions:
        if type(extension) is not watch_type:
            return None
    return decoder


def complete_messages(decoder: FrameDecoder, data: bytes, watch: Any) -> tuple[list[str | bytes], int]:
    """Complete data messages at the start of ``data``, and the bytes they took.

    ``decoder`` is what :func:`incoming_ready` returned. ``watch`` is the
    connection's size watch (None without ``max_size``): its header and
    completion hooks run for each frame taken, as wsproto would run them.
    """
    messages: list[str | bytes] = []
    offset = 0
    size = len(data)
    left = None if watch is None else watch.left_for_new_message()
    while size - offset >= 6:
        first, second = data[offset], data[offset + 1]
        if (first != 0x81 and first != 0x82) or not second & 0x80:
            break
        length = second & 0x7F
        position = offset + 2
        if length == 126:
            if size - position < 2:
                break
            length = _UNSIGNED_SHORT.unpack_from(data, position)[0]
            if length < 126:
                break  # wsproto refuses a longer encoding than needed
            position += 2
        elif length == 127:
            if size - position < 8:
                break
            length = _UNSIGNED_LONG_LONG.unpack_from(data, position)[0]
            if length < 0x10000 or length >> 63:
                break
            position += 8
        end = position + 4 + length
        if end > size or (left is not None and length > left):
            break
        payload = _apply_mask(data[position + 4 : end], data[position : position + 4])
        if first == 0x81:
            try:
                message: str | bytes = payload.decode("utf-8")
            except UnicodeDecodeError:
                break
        else:
            message = payload
        if watch is not None:
            watch.frame_inbound_header(decoder, Opcode.TEXT if first == 0x81 else Opcode.BINARY, _NO_RSV, length)
            watch.frame_inbound_complete(decoder, True)
        messages.append(message)
        offset = end
    return messages, offset


__all__ = ["complete_data_frame", "complete_messages", "incoming_ready", "plain_data_frame"]
