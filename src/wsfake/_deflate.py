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
        """Compress a data frame as websockets' encoder does (the real servers' own); control frames pass unchanged."""
        if opcode is not Opcode.TEXT and opcode is not Opcode.BINARY and opcode is not Opcode.CONTINUATION:
            return rsv, data
        compressor = self._compressor
        if compressor is None:
            # websockets' and uvicorn's settings: memLevel 5 (about 32 KiB of zlib state with
            # 12-bit windows) where zlib's default of 8 would take about 144 KiB per connection.
            compressor = self._compressor = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.server_max_window_bits, MEM_LEVEL
            )
        if opcode is not Opcode.CONTINUATION:
            rsv = _RSV1 if rsv == _NO_RSV else RsvBits(True, rsv.rsv2, rsv.rsv3)
        data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            data = data[:-4]  # the 00 00 ff ff that ends every sync flush (RFC 7692 7.2.1)
            if self.server_no_context_takeover:
                self._compressor = None
        return rsv, data


_NO_RSV = RsvBits(False, False, False)
_RSV1 = RsvBits(True, False, False)
