"""The client end of a pipe as a trio socket, wrapped in trio's own ``SocketStream``.

trio clients get what ``trio.open_tcp_stream`` returns: a real
:class:`trio.SocketStream`. Only the socket under it is in memory, so trio's
stream code (chunked ``send_all``, half-close, the translation of socket errors
into ``BrokenResourceError`` and ``ClosedResourceError``) runs unchanged, and
libraries that ask ``stream.socket`` for addresses get a connected socket's
answers. The socket behaves as a connected TCP socket does: ``recv`` returns
``b""`` at EOF and raises ``ConnectionResetError`` after a reset; ``send``
takes what fits the peer's buffer; the first write after the peer closed is
accepted, later ones fail with ``EPIPE``. The
class is created on first use, so importing wsfake never imports trio.
"""

from __future__ import annotations

import errno
import socket
from functools import cache
from typing import Any

from ._pipe import Direction, Pipe

#: What ``fileno()`` answers while open: not -1 (trio's "closed"), and no descriptor the OS knows.
_NO_DESCRIPTOR = -2


@cache
def _socket_class() -> type:
    import trio

    class PipeTrioSocket(trio.socket.SocketType):
        """A connected TCP socket look-alike over the client end of a pipe, for ``trio.SocketStream``.

        ``send`` and ``recv`` run as trio's socket methods do: a cancellation
        check, one attempt, a (cancel-shielded) yield after it succeeds or fails;
        when the attempt would block, a wait for readiness and another attempt.
        """

        def __init__(self, pipe: Pipe) -> None:
            super().__init__()
            self._pipe = pipe
            self._incoming: Direction = pipe.to_client
            self._outgoing: Direction = pipe.to_server
            self._closed = False
            self._shut_wr = False
            self._writes_after_peer_closed = 0
            self._options: dict[tuple[int, int], Any] = {}
            self._readable: Any = None
            self._writable: Any = None
            self._incoming.on_readable = self._wake_reader
            self._outgoing.on_writable = self._wake_writer

        # What the loop tells us

        def _wake_reader(self) -> None:
            if self._readable is not None:
                self._readable.set()

        def _wake_writer(self) -> None:
            if self._writable is not None:
                self._writable.set()

        # trio's socket API

        @property
        def family(self) -> socket.AddressFamily:
            return socket.AF_INET6 if len(self._pipe.server_address) == 4 else socket.AF_INET

        @property
        def type(self) -> socket.SocketKind:
            return socket.SOCK_STREAM

        @property
        def proto(self) -> int:
            return socket.IPPROTO_TCP

        @property
        def did_shutdown_SHUT_WR(self) -> bool:
            return self._shut_wr

        def fileno(self) -> int:
            return -1 if self._closed else _NO_DESCRIPTOR

        def getsockname(self) -> Any:
            self._check_open()
            return self._pipe.client_address

        def getpeername(self) -> Any:
            self._check_open()
            return self._pipe.server_address

        def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
            """Remembered (``getsockopt`` answers it) and otherwise without effect in memory."""
            self._check_open()
            self._options[level, optname] = value

        def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
            self._check_open()
            value = self._options.get((level, optname), 0)
            return bytes(buflen) if buflen is not None and isinstance(value, int) else value

        def is_readable(self) -> bool:
            incoming = self._incoming
            return bool(self._closed or incoming.visible_size or incoming.eof or incoming.reset)

        async def wait_writable(self) -> None:
            while not self._try_writable():
                await self._wait("_writable")
            await trio.lowlevel.checkpoint()

        async def recv(self, bufsize: int, flags: int = 0) -> bytes:
            return await self._nonblocking(self._try_recv, "_readable", bufsize)  # type: ignore[no-any-return]

        async def send(self, data: Any, flags: int = 0) -> int:
            return await self._nonblocking(self._try_send, "_writable", bytes(data))  # type: ignore[no-any-return]

        def shutdown(self, flag: int) -> None:
            self._check_open()
            if flag in (socket.SHUT_WR, socket.SHUT_RDWR) and not self._shut_wr:
                self._shut_wr = True
                self._outgoing.write_eof()

        def close(self) -> None:
            if self._closed:
                return
            self._closed = True
            self._outgoing.write_eof()
            self._incoming.close_reader()
            self._wake_reader()
            self._wake_writer()

        def __repr__(self) -> str:
            return f"<wsfake trio socket peer={self._pipe.server_address}>"

        # One attempt at each operation, as the OS would answer it

        def _try_recv(self, bufsize: int) -> bytes:
            self._check_open()
            incoming = self._incoming
            if incoming.visible_size:
                return incoming.read(bufsize)
            if incoming.reset:
                raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
            if incoming.eof:
                return b""
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

        def _try_send(self, data: bytes) -> int:
            self._check_open()
            outgoing = self._outgoing
            if self._shut_wr:
                raise BrokenPipeError(errno.EPIPE, "Broken pipe")
            if outgoing.reset:
                raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
            if outgoing.reader_closed:
                # As over TCP: the first write after the peer closed goes out (the peer's
                # kernel answers it with a reset); the next one fails.
                self._writes_after_peer_closed += 1
                if self._writes_after_peer_closed > 1:
                    raise BrokenPipeError(errno.EPIPE, "Broken pipe")
                return len(data)
            room = outgoing.capacity - outgoing.size
            if room <= 0:
                raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
            chunk = data if len(data) <= room else data[:room]
            outgoing.write(chunk)
            return len(chunk)

        def _try_writable(self) -> bool:
            self._check_open()
            outgoing = self._outgoing
            return outgoing.size < outgoing.capacity or outgoing.reset or outgoing.reader_closed

        async def _nonblocking(self, attempt: Any, waiter: str, argument: Any) -> Any:
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                result = attempt(argument)
            except BlockingIOError:
                pass
            except BaseException:
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return result
            while True:
                await self._wait(waiter)
                try:
                    return attempt(argument)
                except BlockingIOError:
                    pass

        async def _wait(self, waiter: str) -> None:
            event = trio.Event()
            setattr(self, waiter, event)
            try:
                await event.wait()
            finally:
                setattr(self, waiter, None)
            if self._closed:
                raise trio.ClosedResourceError("another task closed this socket")

        def _check_open(self) -> None:
            if self._closed:
                raise OSError(errno.EBADF, "Bad file descriptor")

    return PipeTrioSocket


def trio_stream(pipe: Pipe) -> Any:
    """The client end of ``pipe`` as a ``trio.SocketStream`` (call on the pipe's trio loop)."""
    import trio

    return trio.SocketStream(_socket_class()(pipe))


def is_trio_stream(obj: object) -> bool:
    """True for a stream :func:`trio_stream` made."""
    socket_ = getattr(obj, "socket", None)
    return socket_ is not None and type(socket_) is _socket_class()
