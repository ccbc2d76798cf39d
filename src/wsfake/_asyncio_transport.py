"""The client end of a :class:`~wsfake._pipe.Pipe` as an ``asyncio.Transport``.

It drives the client library's own protocol object exactly as a selector
socket transport does: ``data_received`` in a later loop iteration than the
server's write, ``eof_received`` (and its keep-open answer) in a later
iteration than the last data, ``connection_lost`` once, and
``pause_writing``/``resume_writing`` around a write buffer limit.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any

from ._pipe import Pipe

_DEFAULT_HIGH_WATER = 64 * 1024


def _nothing() -> None:
    pass


class AsyncioTransport(asyncio.Transport):
    """An in-memory ``asyncio.Transport`` over one end of a pipe."""

    def __init__(self, pipe: Pipe, protocol: asyncio.BaseProtocol, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(extra={"peername": pipe.server_address, "sockname": pipe.client_address, "socket": None})
        self._pipe = pipe
        self._out = pipe.to_server
        self._in = pipe.to_client
        self._protocol = protocol
        self._loop = loop
        self._closing = False
        self._eof_written = False
        self._eof_received = False
        self._connection_lost = False
        self._reading = True
        self._delivery_scheduled = False
        self._writing_paused = False
        self._high_water = _DEFAULT_HIGH_WATER
        self._low_water = _DEFAULT_HIGH_WATER // 4
        self._in.on_readable = self._deliver
        self._out.on_writable = self._on_writable

    def __repr__(self) -> str:
        state = "closing" if self._closing else "open"
        return f"<wsfake AsyncioTransport {state} peer={self._pipe.server_address}>"

    # Reading

    def _deliver(self) -> None:
        self._delivery_scheduled = False
        if self._connection_lost or not self._reading:
            return
        incoming = self._in
        if incoming.reset:
            self._lose(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
            return
        if incoming.visible_size:
            data = incoming.read()
            self._protocol.data_received(data)  # type: ignore[attr-defined]
            if (incoming.eof or incoming.reset) and not self._connection_lost:
                # A socket read never returns data and EOF together: the EOF comes
                # from a later read, after tasks woken by this data have run.
                self._schedule_delivery()
            return
        if incoming.eof and not self._eof_received:
            self._eof_received = True
            keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
            if not keep_open:
                self.close()

    def _schedule_delivery(self) -> None:
        if not self._delivery_scheduled:
            self._delivery_scheduled = True
            self._loop.call_soon(self._deliver)

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if self._reading:
            return
        self._reading = True
        if self._in.visible_size or self._in.eof or self._in.reset:
            self._schedule_delivery()

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    # Writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data or self._connection_lost:
            return
        out = self._out
        out.write(bytes(data))
        if not self._writing_paused and out.size - out.capacity > self._high_water:  # over_capacity, inlined
            self._writing_paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def _on_writable(self) -> None:
        if self._writing_paused and self._out.over_capacity <= self._low_water:
            self._writing_paused = False
            self._loop.call_soon(self._resume_protocol)

    def _resume_protocol(self) -> None:
        if not self._connection_lost:
            self._protocol.resume_writing()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof_written:
            return
        self._eof_written = True
        self._out.write_eof()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = _DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water, self._low_water = high, low

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low_water, self._high_water

    def get_write_buffer_size(self) -> int:
        return self._out.over_capacity

    # Closing

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Send EOF after the written bytes, stop reading, then report the loss."""
        if self._closing:
            return
        self._closing = True
        self._out.write_eof()
        self._in.close_reader()
        self._loop.call_soon(self._lose, None)

    def abort(self) -> None:
        """Close at once, dropping bytes still in the transport's own buffer."""
        if self._connection_lost:
            return
        self._closing = True
        self._out.write_eof()
        self._in.close_reader()
        self._loop.call_soon(self._lose, None)

    def _lose(self, exc: Exception | None) -> None:
        if self._connection_lost:
            return
        self._connection_lost = True
        self._closing = True
        if exc is not None:
            self._out.break_()
        protocol = self._protocol
        # As asyncio's own transports do after connection_lost: no link back to the protocol or from the
        # pipe, so the connection is freed by reference counting rather than by the cyclic collector.
        self._protocol = None  # type: ignore[assignment]
        self._in.on_readable = self._out.on_writable = _nothing
        protocol.connection_lost(exc)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol
