"""Faults on a route: what a bad network or a bad server does to the next connections.

Delivery faults act at the pipe's single flush point (a :class:`~wsfake._pipe.Shaper`
per direction), so they work for every client kind and leave every byte's order
intact: latency (each write delivered ``seconds`` later), bandwidth (delivered no
faster than a rate), chunking (each write split at fixed or seeded-random
boundaries, one piece per loop iteration: the case that breaks naive frame
parsers) and drops (the connection cut, without a close frame, after a number of
messages or bytes). Connection faults act before or at the handshake: refused
like a closed port, rejected with an HTTP answer, or a handshake read and never
answered. Timers run on the loop's clock, so a test never waits longer than the
fault asks (and a fake clock moves them at once).
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ._host import Host, Timer
from ._pipe import Direction, Pipe, Shaper

DirectionName = Literal["to_client", "to_server", "both"]
_DIRECTIONS = ("to_client", "to_server", "both")


def _check_direction(direction: str) -> None:
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(_DIRECTIONS)}, not {direction!r}")


def _check_times(times: int | None) -> None:
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be a positive number of connections (or None for all), not {times!r}")


@dataclass
class Rejection:
    """An HTTP answer given instead of the upgrade."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class DeliveryFaults:
    """The delivery faults of one direction, as configured on a route."""

    latency: float = 0.0
    bandwidth: float | None = None
    chunk: int | Literal["random"] | None = None
    seed: int | None = None
    drop_messages: int | None = None
    drop_bytes: int | None = None

    @property
    def active(self) -> bool:
        return bool(
            self.latency
            or self.bandwidth
            or self.chunk is not None
            or self.drop_messages is not None
            or self.drop_bytes is not None
        )

    def describe(self, name: str) -> list[str]:
        notes = []
        if self.latency:
            notes.append(f"latency {self.latency} s {name}")
        if self.bandwidth:
            notes.append(f"bandwidth {self.bandwidth:g} bytes/s {name}")
        if self.chunk is not None:
            seed = f" (seed {self.seed})" if self.chunk == "random" else ""
            notes.append(f"delivery in chunks of {self.chunk}{seed} {name}")
        if self.drop_messages is not None:
            notes.append(f"cut after {self.drop_messages} messages {name}")
        if self.drop_bytes is not None:
            notes.append(f"cut after {self.drop_bytes} bytes {name}")
        return notes


@dataclass
class Faults:
    """What a route does to its next connections."""

    refuse: int = 0
    rejections: deque[Rejection | None] = field(default_factory=deque)
    reject_always: Rejection | None = None
    stall: int | None = 0
    to_client: DeliveryFaults = field(default_factory=DeliveryFaults)
    to_server: DeliveryFaults = field(default_factory=DeliveryFaults)

    def take_refusal(self) -> bool:
        if self.refuse:
            self.refuse -= 1
            return True
        return False

    def take_rejection(self) -> Rejection | None:
        if self.rejections:
            return self.rejections.popleft()
        return self.reject_always

    def take_stall(self) -> bool:
        if self.stall is None:
            return True
        if self.stall:
            self.stall -= 1
            return True
        return False

    def directions(self, direction: DirectionName) -> Sequence[DeliveryFaults]:
        return {
            "to_client": (self.to_client,),
            "to_server": (self.to_server,),
            "both": (self.to_client, self.to_server),
        }[direction]

    def apply(self, pipe: Pipe, host: Host, note: Callable[[str], None]) -> None:
        """Install this route's delivery faults on a new connection's pipe."""
        for faults, direction, name in (
            (self.to_client, pipe.to_client, "to the client"),
            (self.to_server, pipe.to_server, "to the server"),
        ):
            if faults.active:
                direction.shaper = FaultShaper(pipe, host, faults)
                for text in faults.describe(name):
                    note(f"fault: {text}")


class FaultShaper(Shaper):
    """Delivers a direction's bytes late, slowly, in pieces, or cuts the connection, in order."""

    def __init__(self, pipe: Pipe, host: Host, faults: DeliveryFaults) -> None:
        self._pipe = pipe
        self._host = host
        self._faults = faults
        self._random = random.Random(faults.seed)
        self._queue: deque[tuple[float, bytes | None, bool]] = deque()
        self._next_free = 0.0
        self._timer: Timer | None = None
        self._scheduled = False
        self._direction: Direction | None = None
        self._counter = MessageCounter()
        self._cut = False

    def push(self, direction: Direction, data: bytes, eof: bool) -> None:
        self._direction = direction
        if self._cut:
            return
        cut = False
        faults = self._faults
        if data and (faults.drop_bytes is not None or faults.drop_messages is not None):
            data, cut = self._until_cut(data)
        now = self._host.time()
        due = now + faults.latency
        for piece in self._split(data):
            start = max(due, self._next_free)
            if faults.bandwidth:
                self._next_free = start + len(piece) / faults.bandwidth
                start = self._next_free
            self._queue.append((start, piece, False))
        last = self._queue[-1][0] if self._queue else due
        if cut:
            self._queue.append((last, None, True))
        elif eof:
            self._queue.append((last, None, False))
        self._schedule()

    def _until_cut(self, data: bytes) -> tuple[bytes, bool]:
        faults = self._faults
        if faults.drop_bytes is not None:
            end = self._counter.end_of_bytes(data, faults.drop_bytes)
        else:
            assert faults.drop_messages is not None
            end = self._counter.end_of_message(data, faults.drop_messages)
        if end is None:
            return data, False
        return data[:end], True

    def _split(self, data: bytes) -> list[bytes]:
        chunk = self._faults.chunk
        if not data:
            return []
        if chunk is None:
            return [data]
        pieces = []
        while data:
            size = self._random.randint(1, max(1, min(len(data), 64))) if chunk == "random" else chunk
            pieces.append(data[:size])
            data = data[size:]
        return pieces

    def _schedule(self) -> None:
        if self._scheduled or not self._queue:
            return
        self._scheduled = True
        delay = self._queue[0][0] - self._host.time()
        if delay > 0:
            self._timer = self._host.call_later(delay, self._pump)
        else:
            self._host.call_soon(self._pump)

    def discard(self) -> None:
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._scheduled = False

    def _pump(self) -> None:
        """Deliver the next piece that is due (one per loop iteration), then schedule the rest."""
        self._scheduled = False
        self._timer = None
        direction = self._direction
        if direction is None or not self._queue or direction.reset:
            return
        _due, piece, cut = self._queue.popleft()
        if piece is not None:
            direction.deliver(piece)
        elif cut:
            self._cut = True
            self._queue.clear()
            self._pipe.reset()
            return
        else:
            direction.deliver_eof()
        self._schedule()


class MessageCounter:
    """Finds where complete WebSocket data messages end in a byte stream (after its HTTP head)."""

    def __init__(self) -> None:
        self._in_head = True
        self._head = b""
        self._header = b""
        self._remaining = 0
        self._ends_message = False
        self.messages = 0
        self.bytes = 0

    def end_of_bytes(self, data: bytes, limit: int) -> int | None:
        """The offset in ``data`` where ``limit`` bytes after the HTTP head have passed, or None."""
        offset = 0
        if self._in_head:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return None
            offset = len(data) - (len(self._head) - end - 4)
            self._head = b""
            self._in_head = False
        room = limit - self.bytes
        if len(data) - offset >= room:
            self.bytes = limit
            return offset + room
        self.bytes += len(data) - offset
        return None

    def end_of_message(self, data: bytes, limit: int) -> int | None:
        """The offset in ``data`` just past the message that makes ``limit`` messages, or None."""
        offset = 0
        while offset < len(data):
            if self._in_head:
                self._head += data[offset:]
                end = self._head.find(b"\r\n\r\n")
                if end < 0:
                    return None
                offset = len(data) - (len(self._head) - end - 4)
                self._head = b""
                self._in_head = False
                if self.messages >= limit:
                    return offset  # cut right after the handshake
                continue
            if self._remaining:
                step = min(self._remaining, len(data) - offset)
                self._remaining -= step
                offset += step
                if not self._remaining and self._finish_frame(limit):
                    return offset
                continue
            self._header += data[offset : offset + 1]
            offset += 1
            length = _frame_length(self._header)
            if length is None:
                continue
            first = self._header[0]
            opcode, fin = first & 0x0F, bool(first & 0x80)
            self._ends_message = fin and opcode in (0x0, 0x1, 0x2)
            self._remaining = length
            self._header = b""
            if not self._remaining and self._finish_frame(limit):
                return offset
        return None

    def _finish_frame(self, limit: int) -> bool:
        if self._ends_message:
            self.messages += 1
            return self.messages >= limit
        return False


def _frame_length(header: bytes) -> int | None:
    """Payload length plus masking key length, once ``header`` holds a whole frame header; else None."""
    if len(header) < 2:
        return None
    masked = bool(header[1] & 0x80)
    short = header[1] & 0x7F
    size = 2 + (2 if short == 126 else 8 if short == 127 else 0) + (4 if masked else 0)
    if len(header) < size:
        return None
    if short == 126:
        length = int(struct.unpack("!H", header[2:4])[0])
    elif short == 127:
        length = int(struct.unpack("!Q", header[2:10])[0])
    else:
        length = short
    # The masking key is part of the header bytes already consumed.
    return length


def check_delivery(
    *,
    seconds: float | None = None,
    bytes_per_second: float | None = None,
    size: int | str | None = None,
    messages: int | None = None,
    nbytes: int | None = None,
) -> None:
    """Refuse nonsense fault arguments with a message that says what is expected."""
    if seconds is not None and not seconds >= 0:
        raise ValueError(f"latency must be zero or more seconds, not {seconds!r}")
    if bytes_per_second is not None and not bytes_per_second > 0:
        raise ValueError(f"bandwidth must be a positive number of bytes per second, not {bytes_per_second!r}")
    if size is not None and size != "random" and not (isinstance(size, int) and size >= 1):
        raise ValueError(f"chunk size must be a positive number of bytes or 'random', not {size!r}")
    if messages is not None and not (isinstance(messages, int) and messages >= 0):
        raise ValueError(f"messages must be zero or more, not {messages!r}")
    if nbytes is not None and not (isinstance(nbytes, int) and nbytes >= 0):
        raise ValueError(f"bytes must be zero or more, not {nbytes!r}")


__all__ = ["DeliveryFaults", "FaultShaper", "Faults", "MessageCounter", "Rejection"]
