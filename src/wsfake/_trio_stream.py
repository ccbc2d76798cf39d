"""The client end of a pipe as a trio socket, wrapped in trio's own ``SocketStream``.

trio clients get what ``trio.open_tcp_stream`` returns: a real
:class:`trio.SocketStream`. Only the socket under it is in memory, so trio's
stream code (chunked ``send_all``, half-close, the translation of socket errors
into ``BrokenResourceError`` and ``ClosedResourceError``) runs unchanged, and
libraries that ask ``stream.socket`` for addresses get a connected socket's
answers. The socket behaves as a connected TCP socket does: ``recv`` returns
``b""`` at EOF and raises ``ConnectionResetError`` after a reset; the first
write after the peer closed is accepted, later ones fail with ``EPIPE``
(see :class:`~wsfake._pipe.PipeStream`). The
class is created on first use, so importing wsfake never imports trio.
"""

from __future__ import annotations

import errno
import socket
from functools import cache
from typing import Any

import anyio

from ._pipe import Pipe, PipeStream

#: What ``fileno()`` answers while open: not -1 (trio's "closed"), and no descriptor the OS knows.
_NO_DESCRIPTOR = -2


@cache
def _socket_class() -> type:
    import trio

    class PipeTrioSocket(trio.socket.SocketType):
        """A connected TCP socket look-alike over one end of a pipe, for ``trio.SocketStream``."""

        def __init__(self, stream: PipeStream) -> None:
            super().__init__()
            self._stream = stream
            self._shut_wr = False
            self._options: dict[tuple[int, int], Any] = {}

        @property
        def family(self) -> socket.AddressFamily:
            return socket.AF_INET6 if len(self._stream.remote_address) == 4 else socket.AF_INET

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
            return -1 if self._stream.closed else _NO_DESCRIPTOR

        def getsockname(self) -> Any:
            self._check_open()
            return self._stream.local_address

        def getpeername(self) -> Any:
            self._check_open()
            return self._stream.remote_address

        def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
            """Remembered (``getsockopt`` answers it) and otherwise without effect in memory."""
            self._check_open()
            self._options[level, optname] = value

        def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
            self._check_open()
            value = self._options.get((level, optname), 0)
            return bytes(buflen) if buflen is not None and isinstance(value, int) else value

        def is_readable(self) -> bool:
            incoming = self._stream._incoming
            return bool(incoming.visible_size or incoming.eof or incoming.reset or self._stream.closed)

        async def wait_writable(self) -> None:
            self._check_open()
            await self._stream.wait_writable()

        async def send(self, data: Any, flags: int = 0) -> int:
            payload = bytes(data)
            try:
                await self._stream.send(payload)
            except anyio.ClosedResourceError:
                raise OSError(errno.EBADF, "Bad file descriptor") from None
            except anyio.BrokenResourceError:
                if self._stream._outgoing.reset:
                    raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer") from None
                raise BrokenPipeError(errno.EPIPE, "Broken pipe") from None
            return len(payload)

        async def recv(self, bufsize: int, flags: int = 0) -> bytes:
            try:
                return await self._stream.receive(bufsize)
            except anyio.EndOfStream:
                return b""
            except anyio.ClosedResourceError:
                raise OSError(errno.EBADF, "Bad file descriptor") from None
            except anyio.BrokenResourceError:
                raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer") from None

        def shutdown(self, flag: int) -> None:
            self._check_open()
            if flag in (socket.SHUT_WR, socket.SHUT_RDWR) and not self._shut_wr:
                self._shut_wr = True
                self._stream._outgoing.write_eof()

        def close(self) -> None:
            self._stream.close()

        def _check_open(self) -> None:
            if self._stream.closed:
                raise OSError(errno.EBADF, "Bad file descriptor")

        def __repr__(self) -> str:
            return f"<wsfake trio socket peer={self._stream.remote_address}>"

    return PipeTrioSocket


def trio_stream(pipe: Pipe) -> Any:
    """The client end of ``pipe`` as a ``trio.SocketStream`` (call on the pipe's trio loop)."""
    import trio

    return trio.SocketStream(_socket_class()(pipe.client_stream()))


def is_trio_stream(obj: object) -> bool:
    """True for a stream :func:`trio_stream` made."""
    socket_ = getattr(obj, "socket", None)
    return socket_ is not None and type(socket_) is _socket_class()
