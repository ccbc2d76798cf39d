"""permessage-deflate negotiated the way ``websockets.serve`` and uvicorn do it."""

from __future__ import annotations

from wsproto.extensions import PerMessageDeflate

WINDOW_BITS = 12
_ORDER = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)


class ServerDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate with real servers' settings.

    Both real servers compress with 12-bit windows and announce
    ``server_max_window_bits=12`` even when the client did not ask for it (RFC
    7692 allows that); wsproto alone would use 15 bits and stay silent.
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
