"""The client end of a pipe as a ``trio.abc.HalfCloseableStream``, for trio clients.

Built on :class:`~wsfake._pipe.PipeStream` (the pipe's anyio byte stream, which
runs on trio with trio's own events) with trio's conventions: ``receive_some``
returns ``b""`` at EOF, a reset is ``trio.BrokenResourceError``, using a closed
stream ``trio.ClosedResourceError``. ``stream.socket`` answers the address
questions trio-based libraries ask (``getsockname``, ``getpeername``).
The class is created on first use, so importing wsfake never imports trio.
"""

from __future__ import annotations

import socket
from functools import cache
from typing import Any

import anyio

from ._pipe import Pipe, PipeStream


class SocketInfo:
    """What ``stream.socket`` offers: addresses and family, no file descriptor."""

    type = socket.SOCK_STREAM
    proto = socket.IPPROTO_TCP

    def __init__(self, local: tuple[str, int], remote: tuple[str, int]) -> None:
        self._local = local
        self._remote = remote
        self.family = socket.AF_INET6 if ":" in remote[0] else socket.AF_INET

    def getsockname(self) -> tuple[str, int]:
        return self._local

    def getpeername(self) -> tuple[str, int]:
        return self._remote

    def setsockopt(self, *args: Any) -> None:
        """Accepted and ignored (TCP_NODELAY and the like mean nothing in memory)."""

    def getsockopt(self, *args: Any) -> int:
        return 0

    def fileno(self) -> int:
        return -1


@cache
def _stream_class() -> type:
    import trio

    class TrioPipeStream(trio.abc.HalfCloseableStream):
        """One end of an in-memory pipe as a trio stream."""

        def __init__(self, pipe_stream: PipeStream) -> None:
            self._stream = pipe_stream
            self.socket = SocketInfo(pipe_stream.local_address, pipe_stream.remote_address)

        async def send_all(self, data: bytes | bytearray | memoryview) -> None:
            try:
                await self._stream.send(bytes(data))
            except anyio.ClosedResourceError:
                raise trio.ClosedResourceError("this stream was closed") from None
            except anyio.BrokenResourceError as exc:
                raise trio.BrokenResourceError("connection closed by peer") from exc

        async def wait_send_all_might_not_block(self) -> None:
            await trio.lowlevel.checkpoint()

        async def send_eof(self) -> None:
            await self._stream.send_eof()

        async def receive_some(self, max_bytes: int | None = None) -> bytes:
            try:
                return await self._stream.receive(max_bytes or 65536)
            except anyio.EndOfStream:
                await trio.lowlevel.checkpoint()
                return b""
            except anyio.ClosedResourceError:
                raise trio.ClosedResourceError("this stream was closed") from None
            except anyio.BrokenResourceError as exc:
                raise trio.BrokenResourceError("connection reset by peer") from exc

        async def aclose(self) -> None:
            self._stream.close()
            await trio.lowlevel.checkpoint()

        def __repr__(self) -> str:
            return f"<wsfake TrioPipeStream peer={self._stream.remote_address}>"

    return TrioPipeStream


def trio_stream(pipe: Pipe) -> Any:
    """The client end of ``pipe`` as a trio stream (call on the pipe's trio loop)."""
    return _stream_class()(pipe.client_stream())


def is_trio_stream(obj: object) -> bool:
    return type(obj).__name__ == "TrioPipeStream" and type(obj) is _stream_class()
