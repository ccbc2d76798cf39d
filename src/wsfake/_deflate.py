"""permessage-deflate negotiated the way ``websockets.serve`` and uvicorn do it."""

from __future__ import annotations

import zlib

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameDecoder, FrameProtocol, Opcode, RsvBits

WINDOW_BITS = 12
MEM_LEVEL = 5
_ORDER = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)


class ServerDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate with real servers' settings.

    Both real servers compress with 12-bit windows (memLevel 5) and announce
    ``server_max_window_bits=12`` even when the client did not ask for it (RFC
    7692 allows that); wsproto alone would use 15 bits and stay silent. They
    also flush every frame, so each fragment of a message carries its own data;
    wsproto alone flushes only the last one.
    """

    def __init__(self) -> None:
        super().__init__(client_max_window_bits=WINDOW_BITS, server_max_window_bits=WINDOW_BITS)

    def accept(self, offer: str) -> bool | str | None:
        result = super().accept(offer)
        if not isinstance(result, str):
            return result
        params = [param for param in result.split("; ") if param]
        if not any(param.startswith("server_max_window_bits") for param in params):
            params.append(f"server_max_window_bits={self.server_max_window_bits}")
        params.sort(key=lambda param: next((i for i, name in enumerate(_ORDER) if param.startswith(name)), len(_ORDER)))
        return "; ".join(params)

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        if opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
            return super().frame_outbound(proto, opcode, rsv, data, fin)
        if self._compressor is None:
            # websockets' and uvicorn's settings: memLevel 5 (about 32 KiB of zlib state with
            # 12-bit windows) where zlib's default of 8 would take about 144 KiB per connection.
            self._compressor = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.server_max_window_bits, MEM_LEVEL
            )
        if fin:
            return super().frame_outbound(proto, opcode, rsv, data, fin)
        if opcode is not Opcode.CONTINUATION:
            rsv = RsvBits(True, rsv[1], rsv[2])
        return rsv, self._compressor.compress(bytes(data)) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
