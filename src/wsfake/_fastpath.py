"""A faster path for the server's most common frame: one complete, unfragmented data frame.

wsproto stays the protocol authority. This runs the same extension hooks, in the same
order and with the same arguments, as ``wsproto``'s frame serializer, then writes the
frame header directly instead of going through wsproto's event dispatch. Anything else
— a fragment, a control frame, a message already in progress, a connection that is not
open, a client-side connection — returns None and goes through wsproto.
``tests/test_fastpath.py`` checks with hypothesis that both paths produce identical bytes
and leave identical state behind.
"""

from __future__ import annotations

import struct

from wsproto.connection import Connection, ConnectionState
from wsproto.frame_protocol import Opcode, RsvBits

_NO_RSV = RsvBits(False, False, False)
_TWO_BYTE = struct.Struct("!BBH")
_EIGHT_BYTE = struct.Struct("!BBQ")


def complete_data_frame(connection: Connection, data: str | bytes) -> bytes | None:
    """The bytes wsproto would send for ``data`` as one complete message, or None to fall back."""
    if connection.state is not ConnectionState.OPEN:
        return None
    proto = connection._proto
    if proto.client or proto._outbound_opcode is not None:
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
