"""Faster paths for the most common frames, both ways, under wsproto's authority.

Outgoing: one complete, unfragmented data frame, and a close frame. The same
extension hooks run, in the same order and with the same arguments, as in
wsproto's frame serializer; only the header is written directly instead of
going through the event dispatch.

Incoming: complete, unfragmented, masked text or binary frames, and a close
frame, while wsproto's reader is idle (nothing buffered, no frame or
fragmented message in progress). The fast path decides before touching any
state: at the first frame it cannot take as it is (a ping, a fragment, a
partial frame, RSV bits an extension does not claim, a non-minimal length, a
frame over ``max_size``) it stops, and the rest of the segment goes to wsproto,
which finds itself exactly where it would have been. Under permessage-deflate
the extensions' inbound hooks run as wsproto's decoder runs them; once they
have run, a failure (corrupt compressed data, invalid UTF-8, an invalid close
code or reason) is wsproto's own ``ParseFailed``, raised as wsproto raises it.

``tests/test_fastpath.py`` and ``tests/test_fastpath_incoming.py`` check with
hypothesis that both paths produce identical bytes, events and state.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from wsproto.connection import Connection, ConnectionState
from wsproto.frame_protocol import CloseReason, FrameDecoder, Opcode, ParseFailed, RsvBits

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


def incoming_decoder(connection: Connection | None) -> FrameDecoder | None:
    """wsproto's frame decoder while the connection is open and its reader idle (see ``_compat.idle_decoder``)."""
    if connection is None or connection.state is not ConnectionState.OPEN:
        return None
    return _compat.idle_decoder(connection)


def _masked_frame(data: bytes, offset: int, left: int | None, compressed: bool) -> tuple[int, int, bytes, int] | None:
    """``(first byte, length, unmasked payload, end)`` of the frame at ``offset`` if the fast path may take it.

    That is a complete, unfragmented, masked text or binary frame with a
    minimal length encoding, no RSV bit (RSV1 allowed when ``compressed``) and
    a declared length within ``left``; anything else is None, with nothing read.
    """
    size = len(data)
    if size - offset < 6:
        return None
    first, second = data[offset], data[offset + 1]
    if first != 0x81 and first != 0x82 and not (compressed and (first == 0xC1 or first == 0xC2)):
        return None
    if not second & 0x80:
        return None
    length = second & 0x7F
    position = offset + 2
    if length == 126:
        if size - position < 2:
            return None
        length = _UNSIGNED_SHORT.unpack_from(data, position)[0]
        if length < 126:
            return None  # wsproto refuses a longer encoding than needed
        position += 2
    elif length == 127:
        if size - position < 8:
            return None
        length = _UNSIGNED_LONG_LONG.unpack_from(data, position)[0]
        if length < 0x10000 or length >> 63:
            return None
        position += 8
    end = position + 4 + length
    if end > size or (left is not None and length > left):
        return None
    return first, length, _apply_mask(data[position + 4 : end], data[position : position + 4]), end


def plain_message(decoder: FrameDecoder, data: bytes, offset: int, watch: Any) -> tuple[str | bytes, int] | None:
    """The complete data message at ``offset`` and where it ends, with no extension but the size watch.

    ``watch`` is the connection's size watch (None without ``max_size``): its
    header and completion hooks run for the frame taken, as wsproto would run
    them. None (nothing read, nothing changed) for a frame wsproto must read.
    """
    found = _masked_frame(data, offset, None if watch is None else watch.left_for_new_message(), False)
    if found is None:
        return None
    first, length, payload, end = found
    if first == 0x81:
        try:
            message: str | bytes = payload.decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        message = payload
    if watch is not None:
        watch.frame_inbound_header(decoder, Opcode.TEXT if first == 0x81 else Opcode.BINARY, _NO_RSV, length)
        watch.frame_inbound_complete(decoder, True)
    return message, end


def inflated_message(decoder: FrameDecoder, data: bytes, offset: int, watch: Any) -> tuple[str | bytes, int] | None:
    """:func:`plain_message` under permessage-deflate: every extension's hooks run, as wsproto's decoder runs them.

    The frame is chosen before any hook runs; once they have run, wsproto's
    outcome is reported as wsproto reports it: a hook's error or invalid UTF-8
    raises wsproto's ``ParseFailed`` (see ``_compat.fail_reader``).
    """
    found = _masked_frame(data, offset, None if watch is None else watch.left_for_new_message(), True)
    if found is None:
        return None
    first, _, payload, end = found
    payload = _inbound_hooks(
        decoder, Opcode.TEXT if first & 0x0F == 1 else Opcode.BINARY, _RSV1 if first & 0x40 else _NO_RSV, payload
    )
    if first & 0x0F == 1:
        try:
            return payload.decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise ParseFailed(str(exc), CloseReason.INVALID_FRAME_PAYLOAD_DATA) from None
    return payload, end


def close_frame(connection: Connection, decoder: FrameDecoder, data: bytes, offset: int) -> tuple[int, str] | None:
    """The code and reason of the complete masked close frame at ``offset``, read as wsproto reads it.

    None (nothing read) for anything but such a frame. Once the extension
    hooks have run, an invalid payload raises wsproto's own ``ParseFailed``.
    The caller ends wsproto's reading as wsproto does after a close frame
    (``_compat.closed_by_remote``).
    """
    size = len(data)
    if size - offset < 6 or data[offset] != 0x88:
        return None
    second = data[offset + 1]
    length = second & 0x7F
    if not second & 0x80 or length > 125 or offset + 6 + length > size:
        return None
    payload = _apply_mask(data[offset + 6 : offset + 6 + length], data[offset + 2 : offset + 6])
    return _compat.read_close(connection, _inbound_hooks(decoder, Opcode.CLOSE, _NO_RSV, payload))


def _inbound_hooks(decoder: FrameDecoder, opcode: Opcode, rsv: RsvBits, payload: bytes) -> bytes:
    """What wsproto's decoder makes of one complete frame's payload: each extension's hooks, in its order."""
    extensions = decoder.extensions
    claimed = False
    for extension in extensions:
        result = extension.frame_inbound_header(decoder, opcode, rsv, len(payload))
        if isinstance(result, CloseReason):
            raise ParseFailed("error in extension", result)
        claimed = claimed or result.rsv1
    if rsv.rsv1 and not claimed:
        raise ParseFailed("Reserved bit set unexpectedly")
    for extension in extensions:
        data = extension.frame_inbound_payload_data(decoder, payload)
        if isinstance(data, CloseReason):
            raise ParseFailed("error in extension", data)
        payload = data
    for extension in extensions:
        tail = extension.frame_inbound_complete(decoder, True)
        if isinstance(tail, CloseReason):
            raise ParseFailed("error in extension", tail)
        if tail is not None:
            payload += tail
    return payload


def close_frame_out(connection: Connection, code: int, reason: str) -> bytes | None:
    """The close frame wsproto's ``send(CloseConnection(code, reason))`` writes, or None to let wsproto write it.

    Taken for a code wsproto writes as it is (1000 to 4999 but 1005, 1006 and
    1015, which wsproto rewrites) and a reason of at most 123 bytes (wsproto
    would cut a longer one); the extensions' outgoing hooks run as in
    wsproto's serializer. The caller moves wsproto's state on
    (``_compat.close_sent``).
    """
    if not 1000 <= code <= 4999 or code in _REWRITTEN_CODES:
        return None
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")
    if len(payload) > 125:
        return None
    proto = _compat.frame_protocol(connection)
    rsv = _NO_RSV
    for extension in reversed(proto.extensions):
        rsv, payload = extension.frame_outbound(proto, Opcode.CLOSE, rsv, payload, True)
    return bytes((0x88 | (rsv.rsv1 << 6) | (rsv.rsv2 << 5) | (rsv.rsv3 << 4), len(payload))) + payload


#: Codes wsproto does not write as given: 1005 means no code at all, 1006 and 1015 become 1000.
_REWRITTEN_CODES = frozenset((1005, 1006, 1015))
_RSV1 = RsvBits(True, False, False)


__all__ = [
    "close_frame",
    "close_frame_out",
    "complete_data_frame",
    "incoming_decoder",
    "inflated_message",
    "plain_data_frame",
    "plain_message",
]
