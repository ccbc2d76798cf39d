"""Connection-closed exceptions for handler targets.

When ``websockets`` is installed, a handler sees websockets' own classes, so code
written for ``websockets.serve`` catches exactly what it catches there. Without
it, wsfake defines classes with the same names, constructor and attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

OK_CLOSE_CODES = frozenset({1000, 1001, 1005})


@dataclass
class Close:
    """A close frame's code and reason (mirrors ``websockets.frames.Close``)."""

    code: int
    reason: str

    def __str__(self) -> str:
        if 3000 <= self.code < 4000:
            explanation = "registered"
        elif 4000 <= self.code < 5000:
            explanation = "private use"
        else:
            explanation = _EXPLANATIONS.get(self.code, "unknown")
        text = f"{self.code} ({explanation})"
        return f"{text} {self.reason}" if self.reason else text


_EXPLANATIONS = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received [internal]",
    1006: "abnormal closure [internal]",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure [internal]",
}


class ConnectionClosed(Exception):
    """The connection is closed (mirrors ``websockets.exceptions.ConnectionClosed``)."""

    def __init__(self, rcvd: Any, sent: Any, rcvd_then_sent: bool | None = None) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent
        super().__init__(rcvd, sent, rcvd_then_sent)

    def __str__(self) -> str:
        if self.rcvd is None:
            if self.sent is None:
                return "no close frame received or sent"
            return f"sent {self.sent}; no close frame received"
        if self.sent is None:
            return f"received {self.rcvd}; no close frame sent"
        if self.rcvd_then_sent:
            return f"received {self.rcvd}; then sent {self.sent}"
        return f"sent {self.sent}; then received {self.rcvd}"


class ConnectionClosedOK(ConnectionClosed):
    """Closed normally: close codes 1000, 1001 or 1005 both ways."""


class ConnectionClosedError(ConnectionClosed):
    """Closed abnormally: a protocol error, an error code, or no close frame."""


class ConcurrencyError(RuntimeError):
    """Two coroutines read (or stream a message) at the same time."""


if not TYPE_CHECKING:
    try:
        from websockets.exceptions import (  # noqa: F401
            ConcurrencyError,
            ConnectionClosed,
            ConnectionClosedError,
            ConnectionClosedOK,
        )
        from websockets.frames import Close
    except ImportError:  # pragma: no cover - exercised in the no-websockets job
        pass


def closed_exception(
    rcvd: tuple[int, str] | None, sent: tuple[int, str] | None, rcvd_then_sent: bool | None
) -> Exception:
    """Build the exception websockets raises for these close frames."""
    rcvd_frame = None if rcvd is None else Close(*rcvd)
    sent_frame = None if sent is None else Close(*sent)
    ok = rcvd is not None and sent is not None and rcvd[0] in OK_CLOSE_CODES and sent[0] in OK_CLOSE_CODES
    cls = ConnectionClosedOK if ok else ConnectionClosedError
    return cls(rcvd_frame, sent_frame, None if rcvd is None or sent is None else bool(rcvd_then_sent))
