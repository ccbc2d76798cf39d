"""The client end of a pipe for threaded clients: a blocking socket-like object.

Threaded clients (``websockets.sync``, websocket-client, httpx's sync client)
call ``sendall``/``recv`` from their own threads; the pipe lives on a loop in
another thread (the network's portal). :class:`BlockingSocket` crosses over:
writes are handed to the loop with ``call_soon_threadsafe``, bytes the loop
delivers are moved into a bounded inbox (a socket's receive buffer), and
readers and writers wait on a condition with the socket module's timeout rules
(``socket.timeout``, ``BlockingIOError`` when non-blocking). It has no file
descriptor and opens no OS socket or pipe of any kind, so it works where there
is no network at all. :class:`Selector` lets libraries that ``select()`` on
their socket wait on it.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ._host import Host, HostGone
from ._pipe import Pipe


class BlockingSocket:
    """A connected, blocking TCP socket look-alike over an in-memory pipe."""

    type = socket.SOCK_STREAM
    proto = socket.IPPROTO_TCP

    def __init__(self, pipe: Pipe) -> None:
        # Constructed on the pipe's loop thread.
        self._pipe = pipe
        self._host: Host = pipe.host
        self.family = socket.AF_INET6 if len(pipe.server_address) == 4 else socket.AF_INET
        self._cond = threading.Condition()
        self._inbox: deque[bytes] = deque()
        self._inbox_size = 0
        self._capacity = pipe.to_client.capacity
        self._eof = False
        #: The connection was reset: reads fail (after what was already delivered).
        self._reset = False
        #: The peer closed its reading side: like TCP, the next write still "succeeds", later ones fail.
        self._peer_closed = False
        self._writes_after_peer_closed = 0
        self._gone = False
        self._closed = False
        self._read_shut = False
        self._write_shut = False
        self._timeout: float | None = socket.getdefaulttimeout()
        #: Bytes handed to the loop thread and not yet written to the pipe.
        self._in_transit = 0
        #: Senders waiting for room in the socket buffer.
        self._send_waiting = 0
        self._watchers: list[Callable[[], None]] = []
        pipe.to_client.on_readable = self._loop_readable
        pipe.to_server.on_writable = self._loop_writable

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<wsfake BlockingSocket {state} peer={self._pipe.server_address}>"

    # Callbacks on the loop thread

    def _loop_readable(self) -> None:
        incoming = self._pipe.to_client
        with self._cond:
            room = self._capacity - self._inbox_size
            if room > 0 and incoming.visible_size and not self._read_shut:
                data = incoming.read(room)
                self._inbox.append(data)
                self._inbox_size += len(data)
            if not incoming.visible_size:
                if incoming.reset:
                    self._reset = True
                elif incoming.eof:
                    self._eof = True
            self._cond.notify_all()
        self._notify_watchers()

    def _loop_writable(self) -> None:
        outgoing = self._pipe.to_server
        with self._cond:
            if outgoing.reset:
                self._reset = True
            elif outgoing.reader_closed:
                self._peer_closed = True
            self._cond.notify_all()

    def _loop_write(self, data: bytes) -> None:
        outgoing = self._pipe.to_server
        if outgoing.reset or outgoing.reader_closed:
            with self._cond:
                if outgoing.reset:
                    self._reset = True
                else:
                    self._peer_closed = True
                self._in_transit -= len(data)
                self._cond.notify_all()
            return
        outgoing.write(data)
        with self._cond:
            self._in_transit -= len(data)
            # A sender may wait for room that reads made while these bytes were in transit. Nobody else
            # needs waking (a reader waiting for the answer would wake for nothing).
            if self._send_waiting:
                self._cond.notify_all()

    def _loop_close(self, read: bool, write: bool) -> None:
        if write:
            self._pipe.to_server.write_eof()
        if read:
            self._pipe.to_client.close_reader()

    def abandon(self) -> None:
        """The loop serving this socket is stopping: wake everyone, later calls fail clearly."""
        with self._cond:
            self._gone = True
            self._cond.notify_all()
        self._notify_watchers()

    # Cross-thread plumbing

    def _call(self, callback: Callable[[], None]) -> None:
        if self._gone:
            raise self._gone_error()
        try:
            self._host.call_soon_threadsafe(callback)
        except HostGone:
            self._gone = True
            raise self._gone_error() from None

    @staticmethod
    def _gone_error() -> OSError:
        return ConnectionResetError(
            errno.ECONNRESET,
            "wsfake: the patch_client context that served this connection has exited; "
            "a thread that outlives it cannot use the connection any more",
        )

    def _deadline(self) -> float | None:
        return None if self._timeout is None else time.monotonic() + self._timeout

    def _wait(self, deadline: float | None, operation: str) -> None:
        """Wait on the condition (held) until notified; raise the socket module's timeout errors."""
        if deadline is None:
            self._cond.wait()
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if self._timeout == 0:
                raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
            raise TimeoutError("timed out")
        self._cond.wait(remaining)

    def _wait_to_send(self, deadline: float | None) -> None:
        self._send_waiting += 1
        try:
            self._wait(deadline, "send")
        finally:
            self._send_waiting -= 1

    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor")

    # Reading

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        deadline = self._deadline()
        with self._cond:
            while True:
                self._check_open()
                if self._inbox:
                    break
                if self._reset:
                    raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
                if self._eof or self._read_shut:
                    return b""
                if self._gone:
                    raise self._gone_error()
                self._wait(deadline, "recv")
            if bufsize == 0:
                return b""
            was_full = self._inbox_size >= self._capacity
            parts: list[bytes] = []
            wanted = bufsize
            while wanted and self._inbox:
                chunk = self._inbox.popleft()
                if len(chunk) > wanted:
                    self._inbox.appendleft(chunk[wanted:])
                    chunk = chunk[:wanted]
                parts.append(chunk)
                wanted -= len(chunk)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            self._inbox_size -= len(data)
        if was_full:
            # The inbox had stopped taking bytes from the pipe: take more now.
            self._call(self._loop_readable)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data)

    # Writing

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send ``data``; return, as a socket does, once it all fits in the socket buffer.

        The peer's unread bytes and those on their way to the loop thread fill
        the buffer: a sender that is a buffer ahead of its reader blocks (and
        times out) as it would on a socket. Bytes reach the loop thread in
        order; an error they meet there fails a later call.
        """
        payload = bytes(data)
        deadline = self._deadline()
        with self._cond:
            while True:
                if self._write_blocked():
                    return
                if not payload:
                    return
                if self._buffered() < self._capacity:
                    break
                self._wait_to_send(deadline)
            self._in_transit += len(payload)
        self._call(lambda: self._loop_write(payload))
        with self._cond:
            while self._buffered() > self._capacity:
                if self._reset:
                    raise BrokenPipeError(errno.EPIPE, "Broken pipe")
                if self._peer_closed or self._closed:
                    return
                if self._gone:
                    raise self._gone_error()
                self._wait_to_send(deadline)

    def _buffered(self) -> int:
        """Bytes sent and not yet read by the peer (the socket buffer's fill), with the condition held."""
        return self._in_transit + self._pipe.to_server.size

    def _write_blocked(self) -> bool:
        """Raise what a write fails with now; True if it is silently accepted (the first after the peer closed)."""
        self._check_open()
        if self._write_shut:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        if self._reset:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        if self._peer_closed:
            # As over TCP: a write to a peer that closed goes out (and is answered with a reset);
            # the next one fails.
            self._writes_after_peer_closed += 1
            if self._writes_after_peer_closed > 1:
                raise BrokenPipeError(errno.EPIPE, "Broken pipe")
            return True
        if self._gone:
            raise self._gone_error()
        return False

    def send(self, data: Any, flags: int = 0) -> int:
        payload = bytes(data)
        self.sendall(payload, flags)
        return len(payload)

    # Closing

    def shutdown(self, how: int) -> None:
        with self._cond:
            self._check_open()
            read = how in (socket.SHUT_RD, socket.SHUT_RDWR)
            write = how in (socket.SHUT_WR, socket.SHUT_RDWR)
            if read:
                self._read_shut = True
            if write:
                self._write_shut = True
            self._cond.notify_all()
        if not self._gone:
            with contextlib.suppress(OSError):
                self._call(lambda: self._loop_close(read, write))
        self._notify_watchers()

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if not self._gone:
            with contextlib.suppress(OSError):
                self._call(lambda: self._loop_close(True, True))
        self._notify_watchers()

    def detach(self) -> int:
        self.close()
        return -1

    def __enter__(self) -> BlockingSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Options and addresses

    def settimeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = None if value is None else float(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    @property
    def timeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def getpeername(self) -> tuple[Any, ...]:
        self._check_open()
        return self._pipe.server_address

    def getsockname(self) -> tuple[Any, ...]:
        self._check_open()
        return self._pipe.client_address

    def setsockopt(self, level: int, option: int, value: Any, *args: Any) -> None:
        """Accepted and ignored: TCP_NODELAY, keepalive and buffer sizes mean nothing in memory."""
        self._check_open()

    def getsockopt(self, level: int, option: int, buflen: int = 0) -> Any:
        self._check_open()
        if level == socket.SOL_SOCKET and option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            value = self._capacity
        elif level == socket.SOL_SOCKET and option == socket.SO_TYPE:
            value = socket.SOCK_STREAM
        else:
            value = 0
        return value.to_bytes(buflen, "little") if buflen else value

    def fileno(self) -> int:
        """-1: there is no file descriptor (as a closed socket reports). Use :class:`Selector` to wait on it."""
        return -1

    # Readiness, for Selector

    @property
    def readable(self) -> bool:
        with self._cond:
            return bool(self._inbox) or self._eof or self._reset or self._closed or self._gone or self._read_shut

    def _watch(self, callback: Callable[[], None]) -> None:
        with self._cond:
            self._watchers.append(callback)

    def _unwatch(self, callback: Callable[[], None]) -> None:
        with self._cond:
            if callback in self._watchers:
                self._watchers.remove(callback)

    def _notify_watchers(self) -> None:
        with self._cond:
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher()


class Selector(selectors.BaseSelector):
    """A selector that waits on :class:`BlockingSocket` objects and real file descriptors alike.

    Real descriptors go to the platform's default selector. While a wsfake
    socket is registered, ``select()`` waits for it (woken by its loop, never
    by polling) and checks the real descriptors whenever it wakes, which is
    when a wsfake socket changes; in websockets the only other descriptor is
    its shutdown watcher, always followed by closing the socket.
    """

    #: How long select() waits before looking at real descriptors again while a wsfake socket is registered.
    POLL_REAL = 0.05

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self._fakes: dict[BlockingSocket, selectors.SelectorKey] = {}
        self._event = threading.Event()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if isinstance(fileobj, BlockingSocket):
            key = selectors.SelectorKey(fileobj, -1, events, data)
            self._fakes[fileobj] = key
            fileobj._watch(self._event.set)
            return key
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        if isinstance(fileobj, BlockingSocket):
            fileobj._unwatch(self._event.set)
            return self._fakes.pop(fileobj)
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if isinstance(fileobj, BlockingSocket):
            key = selectors.SelectorKey(fileobj, -1, events, data)
            self._fakes[fileobj] = key
            return key
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if not self._fakes:
            return self._real.select(timeout)
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            self._event.clear()
            ready = [(key, selectors.EVENT_READ) for sock, key in self._fakes.items() if sock.readable]
            ready += self._real.select(0) if self._real.get_map() else []
            if ready:
                return ready
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            wait = self.POLL_REAL if remaining is None else min(remaining, self.POLL_REAL)
            self._event.wait(wait if self._real.get_map() else remaining)

    def close(self) -> None:
        for sock in list(self._fakes):
            sock._unwatch(self._event.set)
        self._fakes.clear()
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        merged: dict[Any, selectors.SelectorKey] = dict(self._real.get_map())
        merged.update(self._fakes)
        return merged
