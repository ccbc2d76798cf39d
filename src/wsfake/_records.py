"""What a route remembers about each connection it served."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

Payload = str | bytes


@dataclass
class Call:
    """One connection served by a route.

    ``received`` holds the messages the server got from the client, ``sent`` the
    messages it sent, each complete and in order. ``close_sent`` and
    ``close_received`` are the server's view of the close frames as
    ``(code, reason)``; None where no frame went that way.
    """

    url: str
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    subprotocols_offered: list[str] = field(default_factory=list)
    subprotocol: str | None = None
    status: int | None = None
    response_body: bytes = b""
    received: list[Payload] = field(default_factory=list)
    sent: list[Payload] = field(default_factory=list)
    close_sent: tuple[int, str] | None = None
    close_received: tuple[int, str] | None = None
    error: BaseException | None = None
    started: float = field(default_factory=time.monotonic)
    _in_parts: list[Payload] = field(default_factory=list, repr=False)
    _out_parts: list[Payload] = field(default_factory=list, repr=False)

    @property
    def accepted(self) -> bool:
        """True if the opening handshake completed (HTTP 101)."""
        return self.status == 101

    @property
    def close_code(self) -> int | None:
        """The code of the close frame the server received, or 1006 if none came."""
        if self.close_received is not None:
            return self.close_received[0]
        return 1006 if self.accepted else None

    def header(self, name: str) -> str | None:
        """The first request header called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((value for key, value in self.request_headers if key.lower() == lowered), None)

    def _received(self, data: Payload, fin: bool) -> None:
        _append(self.received, self._in_parts, data, fin)

    def _sent(self, data: Payload, fin: bool) -> None:
        _append(self.sent, self._out_parts, data, fin)


def _append(messages: list[Payload], parts: list[Payload], data: Payload, fin: bool) -> None:
    if fin and not parts:
        messages.append(data)
        return
    parts.append(data)
    if fin:
        messages.append("".join(parts) if isinstance(data, str) else b"".join(parts))  # type: ignore[arg-type]
        parts.clear()


class Calls(list[Call]):
    """The connections a route served, oldest first."""

    @property
    def last(self) -> Call:
        """The most recent connection; IndexError if there was none."""
        if not self:
            raise IndexError("this route has not served any connection yet")
        return self[-1]
