"""What a route remembers about each connection it served."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

Payload = str | bytes
Direction = Literal[">", "<", "!", "~"]
Kind = Literal["request", "response", "message", "close", "error", "departure", "note"]

#: How many characters of a payload a transcript line shows.
TRUNCATE = 80


class Entry(NamedTuple):
    """One line of a connection's transcript.

    ``direction`` is ``">"`` for client to server, ``"<"`` for server to client,
    ``"!"`` for something that happened on the server (an exception) and ``"~"``
    for wsfake's own notes (a fault applied, a connection nobody looked at);
    ``offset`` is seconds since the connection was opened.
    """

    offset: float
    direction: Direction
    kind: Kind
    data: object

    def __str__(self) -> str:
        if self.kind == "message":
            assert isinstance(self.data, (str, bytes))
            text = _preview(self.data)
        elif self.kind == "close":
            assert isinstance(self.data, tuple)
            code, reason = self.data
            text = f"close {code} {reason!r}"
        elif self.kind == "error":
            text = f"server exception: {type(self.data).__name__}: {self.data}"
        elif self.kind == "departure":
            what = f"{type(self.data).__name__}: {self.data}"
            text = f"server exception mirroring the client's departure (not an error): {what}"
        else:
            text = str(self.data)
        return f"+{self.offset:7.3f}s {self.direction} {text}"


#: Builds an :class:`Entry` from a tuple without the named constructor's extra call (hot paths).
_new_entry = tuple.__new__


def _preview(data: Payload) -> str:
    shown = repr(data[:TRUNCATE])
    return (
        f"{shown} ... ({len(data)} {'chars' if isinstance(data, str) else 'bytes'})" if len(data) > TRUNCATE else shown
    )


@dataclass
class Call:
    """One connection served by a route.

    ``received`` holds the messages the server got from the client, ``sent`` the
    messages it sent, each complete and in order. ``close_sent`` and
    ``close_received`` are the server's view of the close frames as
    ``(code, reason)``; None where no frame went that way.
    """

    url: str
    target: str = ""
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
    #: Everything that happened on the connection, in order, with time offsets.
    transcript: list[Entry] = field(default_factory=list, repr=False)
    #: Called with a target's exception the moment it is caught (the route and network collect it).
    _report: Callable[[BaseException], None] | None = field(default=None, repr=False)
    _report_departure: Callable[[BaseException], None] | None = field(default=None, repr=False)
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

    def format_transcript(self) -> str:
        """The transcript as text: a header line, then one line per entry."""
        subprotocol = f", subprotocol {self.subprotocol!r}" if self.subprotocol else ""
        status = "no answer" if self.status is None else f"HTTP {self.status}"
        lines = [f"{self.url} -> {self.target or '?'}: {status}{subprotocol}"]
        lines += [f"  {entry}" for entry in self.transcript]
        return "\n".join(lines)

    def _log(self, direction: Direction, kind: Kind, data: object) -> None:
        self.transcript.append(_new_entry(Entry, (time.monotonic() - self.started, direction, kind, data)))

    def _requested(self, headers: list[tuple[str, str]], subprotocols: list[str]) -> None:
        self.request_headers = headers
        self.subprotocols_offered = subprotocols
        self._log(">", "request", "GET " + self.url + (f" (subprotocols {subprotocols})" if subprotocols else ""))

    def _answered(self, status: int, subprotocol: str | None = None, body: bytes = b"") -> None:
        self.status = status
        self.subprotocol = subprotocol
        self.response_body = body
        detail = f" {body[:TRUNCATE]!r}" if body else ""
        self._log("<", "response", f"HTTP {status}" + (f" subprotocol {subprotocol!r}" if subprotocol else "") + detail)

    def _close_sent(self, code: int, reason: str) -> None:
        self.close_sent = (code, reason)
        self._log("<", "close", self.close_sent)

    def _close_received(self, code: int, reason: str) -> None:
        self.close_received = (code, reason)
        self._log(">", "close", self.close_received)

    def _failed(self, exc: BaseException) -> None:
        self.error = exc
        self._log("!", "error", exc)
        if self._report is not None:
            self._report(exc)

    def _departed(self, exc: BaseException) -> None:
        """The server raised an exception that only mirrors the client's normal departure."""
        self._log("!", "departure", exc)
        if self._report_departure is not None:
            self._report_departure(exc)

    def _note(self, text: str) -> None:
        self._log("~", "note", text)

    def _received(self, data: Payload, fin: bool) -> None:
        if fin and not self._in_parts:  # a whole message (the common case, kept short)
            self.received.append(data)
            self.transcript.append(_new_entry(Entry, (time.monotonic() - self.started, ">", "message", data)))
        elif _append(self.received, self._in_parts, data, fin):
            self._log(">", "message", self.received[-1])

    def _sent(self, data: Payload, fin: bool) -> None:
        if fin and not self._out_parts:
            self.sent.append(data)
            self.transcript.append(_new_entry(Entry, (time.monotonic() - self.started, "<", "message", data)))
        elif _append(self.sent, self._out_parts, data, fin):
            self._log("<", "message", self.sent[-1])


def _append(messages: list[Payload], parts: list[Payload], data: Payload, fin: bool) -> bool:
    """Add a fragment; True when it completed a message."""
    if fin and not parts:
        messages.append(data)
        return True
    parts.append(data)
    if not fin:
        return False
    messages.append("".join(parts) if isinstance(data, str) else b"".join(parts))  # type: ignore[arg-type]
    parts.clear()
    return True


#: How many calls a route keeps with their full records by default.
DEFAULT_KEEP_CALLS = 100


class Calls(list[Call]):
    """The connections a route served, oldest first: the most recent ``limit`` of them.

    Older calls are dropped so that a long test with thousands of connections
    does not grow without bound; :attr:`total` (and ``Route.call_count``) still
    counts every connection. ``limit=None`` keeps them all.
    """

    def __init__(self, limit: int | None = DEFAULT_KEEP_CALLS) -> None:
        super().__init__()
        if limit is not None and limit < 1:
            raise ValueError("keep_calls must be a positive number of calls, or None to keep them all")
        self.limit = limit
        #: Every call ever appended, including the dropped ones.
        self.total = 0

    def append(self, call: Call) -> None:
        super().append(call)
        self.total += 1
        if self.limit is not None and len(self) > self.limit:
            del self[: len(self) - self.limit]

    @property
    def dropped(self) -> int:
        """How many older calls were dropped to keep the limit."""
        return self.total - len(self)

    @property
    def last(self) -> Call:
        """The most recent connection; IndexError if there was none."""
        if not self:
            raise IndexError("this route has not served any connection yet")
        return self[-1]
