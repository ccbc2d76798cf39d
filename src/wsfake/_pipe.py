"""The in-memory byte pipe that replaces a TCP connection.

A :class:`Pipe` is two :class:`Direction` objects, client-to-server and
server-to-client. Each behaves like one direction of a socket:

* bytes written during one event-loop iteration become readable in a later one
  (writes made in the same iteration are delivered together), so delivery never
  re-enters the writer;
* the bytes written and not yet read are bounded by ``capacity`` (the socket
  buffer); a writer past it is held back (blocking ``send`` on the anyio end,
  ``pause_writing`` on the asyncio end);
* ``write_eof`` is a half-close, ``reset`` a connection reset: buffered bytes are
  dropped and both ends see a broken connection.

Ends attach to a direction by setting ``on_readable`` (reader) and
``on_writable`` (writer). :meth:`Direction.flush` is the single point where
bytes reach the reader; a :class:`Shaper` installed there (fault injection:
chunking, latency, bandwidth, drops) decides when each byte becomes readable.

A pipe belongs to one event loop: every method runs on that loop's thread. An
end used from another thread (the blocking socket of threaded clients) crosses
over with the loop's ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from ._host import Host
from ._url import SocketAddress

DEFAULT_BUFFER_SIZE = 64 * 1024

CallSoon = Callable[[Callable[[], None]], object]


def _nothing() -> None:
    pass


class Shaper:
    """Decides when flushed bytes become readable (the base class: at once).

    :meth:`push` receives each flushed batch (and the EOF flag) in order; it
    must eventually call ``direction.deliver(chunk)`` for every byte, in order,
    then ``direction.deliver_eof()`` if ``eof`` was pushed, or
    ``direction.break_()`` to cut the connection.
    """

    def push(self, direction: Direction, data: bytes, eof: bool) -> None:
        if data:
            direction.deliver(data)
        if eof:
            direction.deliver_eof()

    def discard(self) -> None:
        """The reader is gone or the connection was reset: drop what is still on its way (and its timers)."""


class Direction:
    """Bytes flowing one way between the two ends of a :class:`Pipe`."""

    __slots__ = (
        "_call_soon",
        "_flush_scheduled",
        "_pending",
        "_pending_eof",
        "_visible",
        "activity",
        "capacity",
        "eof",
        "eof_written",
        "on_readable",
        "on_writable",
        "reader_closed",
        "reader_parked",
        "reset",
        "shaper",
        "size",
        "visible_size",
    )

    def __init__(self, call_soon: CallSoon, capacity: int) -> None:
        self._call_soon = call_soon
        self.capacity = capacity
        self._pending: list[bytes] = []
        self._pending_eof = False
        self._flush_scheduled = False
        self._visible: deque[bytes] = deque()
        #: How many deliveries happened (the deadline watchdog sees progress by it).
        self.activity = 0
        #: Bytes written and not yet read (pending plus visible).
        self.size = 0
        #: Bytes readable now.
        self.visible_size = 0
        #: The writer's EOF has reached the reader.
        self.eof = False
        #: The writer has half-closed (its EOF may still be on the way).
        self.eof_written = False
        #: The connection was reset; nothing more flows.
        self.reset = False
        #: The reading end is gone; writes are discarded.
        self.reader_closed = False
        #: A pull reader is suspended waiting for bytes (set by the reading end).
        self.reader_parked = False
        self.on_readable: Callable[[], None] = _nothing
        self.on_writable: Callable[[], None] = _nothing
        #: Fault injection at the flush point; None delivers at once.
        self.shaper: Shaper | None = None

    # Writer side

    def write(self, data: bytes) -> None:
        """Queue ``data``; it becomes readable in a later loop iteration."""
        if self.reset or self.reader_closed or not data:
            return
        self._pending.append(data)
        self.size += len(data)
        if self.reader_parked and not self._flush_scheduled:
            # The only reader is suspended: waking it now resumes it in a later loop
            # iteration, and nobody else can see the bytes before then. One loop turn saved.
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._call_soon(self.flush)

    def write_eof(self) -> None:
        """Half-close: the reader sees EOF after the bytes already written."""
        if self.reset or self._pending_eof or self.eof_written:
            return
        self.eof_written = True
        self._pending_eof = True
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._call_soon(self.flush)

    @property
    def over_capacity(self) -> int:
        """Bytes written beyond the socket buffer (held in the writer's own buffer)."""
        return max(0, self.size - self.capacity)

    # Delivery

    def flush(self) -> None:
        """Make pending bytes (and a pending EOF) readable, then tell the reader."""
        self._flush_scheduled = False
        self.activity += 1
        if self.reset:
            return
        pending = self._pending
        eof = self._pending_eof
        if eof:
            self._pending_eof = False
        if self.shaper is not None and not self.reader_closed:  # nothing to shape for a reader that is gone
            data = b"".join(pending)
            pending.clear()
            self.shaper.push(self, data, eof)
            return
        if pending:
            # Each write stays a segment of its own: a reader that keeps up reads them one by one.
            self._visible.extend(pending)
            self.visible_size += sum(map(len, pending))
            pending.clear()
        if eof:
            self.eof = True
        self.on_readable()

    def deliver(self, data: bytes) -> None:
        """Make ``data`` (already counted in :attr:`size`) readable now (for shapers)."""
        self.activity += 1
        if self.reset or self.reader_closed:
            return
        self._visible.append(data)
        self.visible_size += len(data)
        self.on_readable()

    def deliver_eof(self) -> None:
        """Make the writer's EOF readable now (for shapers)."""
        if self.reset:
            return
        self.eof = True
        self.on_readable()

    # Reader side

    def read(self, max_bytes: int | None = None) -> bytes:
        """Take up to ``max_bytes`` readable bytes (all of them if None)."""
        visible = self._visible
        if not visible:
            return b""
        if len(visible) == 1 and (max_bytes is None or self.visible_size <= max_bytes):
            data = visible.popleft()
        elif max_bytes is None:
            data = b"".join(visible)
            visible.clear()
        else:
            parts: list[bytes] = []
            wanted = max_bytes
            while wanted and visible:
                chunk = visible.popleft()
                if len(chunk) > wanted:
                    visible.appendleft(chunk[wanted:])
                    chunk = chunk[:wanted]
                parts.append(chunk)
                wanted -= len(chunk)
            data = b"".join(parts)
        was_over = self.size >= self.capacity  # full or over: a blocked writer may go on
        self.visible_size -= len(data)
        self.size -= len(data)
        if was_over:
            self.on_writable()
        return data

    def read_segment(self, max_bytes: int) -> bytes:
        """Take the next segment (what one write sent), or its first ``max_bytes``."""
        visible = self._visible
        if not visible:
            return b""
        data = visible.popleft()
        if len(data) > max_bytes:
            visible.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        was_over = self.size >= self.capacity  # full or over: a blocked writer may go on
        self.visible_size -= len(data)
        self.size -= len(data)
        if was_over:
            self.on_writable()
        return data

    def close_reader(self) -> None:
        """The reader is gone: drop what is buffered and discard later writes."""
        self.reader_closed = True
        self._pending.clear()
        self._visible.clear()
        self.size = self.visible_size = 0
        if self.shaper is not None:
            self.shaper.discard()
        self.on_writable()

    def break_(self) -> None:
        """Reset: drop everything and wake both ends."""
        if self.reset:
            return
        self.reset = True
        self._pending.clear()
        self._visible.clear()
        self.size = self.visible_size = 0
        if self.shaper is not None:
            self.shaper.discard()
        self.on_readable()
        self.on_writable()


class Pipe:
    """A duplex in-memory connection between a client end and a server end."""

    def __init__(
        self,
        host: Host,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        client_address: SocketAddress,
        server_address: SocketAddress,
    ) -> None:
        self.host = host
        self.to_server = Direction(host.call_soon, buffer_size)
        self.to_client = Direction(host.call_soon, buffer_size)
        self.client_address = client_address
        self.server_address = server_address

    @property
    def client_gone(self) -> bool:
        """True once the client end closed, aborted or reset the connection."""
        return self.to_client.reader_closed or self.to_server.eof or self.to_server.reset

    def reset(self) -> None:
        """Abort the whole connection (RST): both ends see it broken."""
        self.to_server.break_()
        self.to_client.break_()

    def server_stream(self) -> PipeStream:
        """The server end as an anyio byte stream."""
        return PipeStream(self, self.to_server, self.to_client, self.server_address, self.client_address)

    def client_stream(self) -> PipeStream:
        """The client end as an anyio byte stream (for anyio and trio based clients)."""
        return PipeStream(self, self.to_client, self.to_server, self.client_address, self.server_address)

    @property
    def activity(self) -> int:
        """Deliveries so far, both ways."""
        return self.to_server.activity + self.to_client.activity

    @property
    def client_waiting(self) -> bool:
        """True when nothing is on its way to the client (it can only be waiting, if it reads)."""
        return not (self.to_client.size or self.to_client.eof or self.to_client.reset)


class PipeStream(anyio.abc.ByteStream):
    """One end of a :class:`Pipe` as an anyio byte stream.

    ``receive`` raises :class:`anyio.EndOfStream` after the peer's EOF and
    :class:`anyio.BrokenResourceError` after a reset; ``send`` blocks while the
    peer has more than a socket buffer of unread bytes. As a socket does, the
    first write after the peer closed is accepted (and lost), later ones raise
    :class:`anyio.BrokenResourceError`; every call yields to the loop once.
    """

    def __init__(
        self,
        pipe: Pipe,
        incoming: Direction,
        outgoing: Direction,
        local_address: SocketAddress,
        remote_address: SocketAddress,
    ) -> None:
        self.pipe = pipe
        self._incoming = incoming
        self._outgoing = outgoing
        self.local_address = local_address
        self.remote_address = remote_address
        self._closed = False
        self._eof_sent = False
        self._writes_after_peer_closed = 0
        self._new_event = pipe.host.event
        self._checkpoint = _checkpoint(pipe.host)
        self._read_event: Any = None
        self._write_event: Any = None
        self._incoming.on_readable = self._wake_reader
        self._outgoing.on_writable = self._wake_writer

    def _wake_reader(self) -> None:
        if self._read_event is not None:
            self._read_event.set()

    def _wake_writer(self) -> None:
        if self._write_event is not None:
            self._write_event.set()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        from anyio.abc import SocketAttribute

        return {
            SocketAttribute.local_address: lambda: self.local_address,
            SocketAttribute.remote_address: lambda: self.remote_address,
            SocketAttribute.local_port: lambda: self.local_address[1],
            SocketAttribute.remote_port: lambda: self.remote_address[1],
        }

    async def receive(self, max_bytes: int = 65536) -> bytes:
        incoming = self._incoming
        if incoming.visible_size or self._closed or incoming.reset or incoming.eof:
            # A socket read yields to the loop even when it has an answer at once
            # (anyio's and trio's streams do): a client that loops on reads never starves the loop.
            await self._checkpoint()
        else:
            while not (incoming.visible_size or self._closed or incoming.reset or incoming.eof):
                event = self._read_event = self._new_event()
                incoming.reader_parked = True
                try:
                    await event.wait()
                finally:
                    incoming.reader_parked = False
                    self._read_event = None
        if self._closed:
            raise anyio.ClosedResourceError
        if incoming.visible_size:
            return incoming.read(max_bytes)
        if incoming.reset:
            raise anyio.BrokenResourceError("connection reset by peer")
        raise anyio.EndOfStream

    async def send(self, item: bytes) -> None:
        outgoing = self._outgoing
        await self._checkpoint()  # as a socket write does, before anything else
        if self._closed:
            raise anyio.ClosedResourceError
        if self._eof_sent:
            raise anyio.ClosedResourceError("cannot send after send_eof()")
        if outgoing.reset:
            raise anyio.BrokenResourceError("connection reset by peer")
        if outgoing.reader_closed:
            # As over TCP: the first write after the peer closed goes out (the peer's
            # kernel answers it with a reset); the next one fails.
            self._writes_after_peer_closed += 1
            if self._writes_after_peer_closed > 1:
                raise anyio.BrokenResourceError("connection closed by peer")
            return
        outgoing.write(item)
        await self._until_writable()

    async def wait_writable(self) -> None:
        """Wait until the peer's buffer has room (at once when it has)."""
        await self._checkpoint()
        await self._until_writable()

    async def _until_writable(self) -> None:
        outgoing = self._outgoing
        while outgoing.size > outgoing.capacity and not (outgoing.reset or outgoing.reader_closed):
            event = self._write_event = self._new_event()
            try:
                await event.wait()
            finally:
                self._write_event = None

    async def send_eof(self) -> None:
        self._eof_sent = True
        self._outgoing.write_eof()

    @property
    def closed(self) -> bool:
        """True once this end was closed or aborted."""
        return self._closed

    def close(self) -> None:
        """Close both directions: the peer reads what was sent, then EOF."""
        if self._closed:
            return
        self._closed = True
        self._outgoing.write_eof()
        self._incoming.close_reader()
        self._wake_reader()

    def abort(self) -> None:
        """Reset the connection: unsent bytes are dropped, the peer sees a reset."""
        self._closed = True
        self.pipe.reset()

    async def aclose(self) -> None:
        self.close()
        await anyio.lowlevel.checkpoint()


def _checkpoint(host: Host) -> Callable[[], Awaitable[None]]:
    """The backend's own checkpoint: one loop iteration, and a pending cancellation delivered."""
    if host.backend == "trio":
        import trio

        return trio.lowlevel.checkpoint
    return _asyncio_checkpoint


async def _asyncio_checkpoint() -> None:
    await asyncio.sleep(0)
