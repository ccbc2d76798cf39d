"""The setups compared in one run.

Each async scenario is an async context manager yielding ``connect(path)``, itself an
async context manager yielding an object with ``send``, ``recv`` and ``close``. Starlette's
TestClient is synchronous, so its scenario has a sync ``connect``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import websockets

import wsfake

from .apps import _stream_params, asgi_app, handler

Connect = Callable[[str], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    setup: Callable[[], AbstractAsyncContextManager[Connect]] | None = None
    sync_setup: Callable[[], Any] | None = None
    workloads: tuple[str, ...] = ("W1", "W2", "W3", "W3b", "W4", "W5")


def _websockets_connect(base: str) -> Connect:
    def connect(path: str) -> AbstractAsyncContextManager[Any]:
        return websockets.connect(base + path, max_size=2**21)

    return connect


@asynccontextmanager
async def wsfake_asgi() -> AsyncIterator[Connect]:
    async with wsfake.patch_client(wsfake.ASGI(asgi_app)):
        yield _websockets_connect("ws://localhost:8000")


@asynccontextmanager
async def wsfake_handler() -> AsyncIterator[Connect]:
    async with wsfake.patch_client(wsfake.Handler(handler, max_size=2**21)):
        yield _websockets_connect("ws://localhost:8000")


@asynccontextmanager
async def uvicorn_asgi() -> AsyncIterator[Connect]:
    import uvicorn

    config = uvicorn.Config(asgi_app, host="127.0.0.1", port=0, ws="websockets-sansio", log_level="critical")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield _websockets_connect(f"ws://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}")
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def websockets_server() -> AsyncIterator[Connect]:
    from websockets.asyncio.server import serve

    async with serve(handler, "127.0.0.1", 0, max_size=2**21) as server:
        yield _websockets_connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}")


class _HttpxWs:
    """httpx-ws's session with the send/recv/close names the workloads use."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            await self._session.send_text(data)
        else:
            await self._session.send_bytes(data)

    async def recv(self) -> str | bytes:
        event = await self._session.receive()
        return event.data  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self._session.close()


@asynccontextmanager
async def httpx_ws() -> AsyncIterator[Connect]:
    import httpx
    from httpx_ws import aconnect_ws
    from httpx_ws.transport import ASGIWebSocketTransport

    async with ASGIWebSocketTransport(asgi_app) as transport, httpx.AsyncClient(transport=transport) as client:

        @asynccontextmanager
        async def connect(path: str) -> AsyncIterator[_HttpxWs]:
            async with aconnect_ws("http://test" + path, client, max_message_size_bytes=2**21) as session:
                yield _HttpxWs(session)

        yield connect


class _Floor:
    """Bytes across wsfake's pipe with no WebSocket framing: the cost of the pipe alone."""

    def __init__(self, stream: Any, server: asyncio.Task[None]) -> None:
        self._stream = stream
        self._server = server

    async def send(self, data: bytes) -> None:
        await self._stream.send(data)

    async def recv(self) -> bytes:
        return bytes(await self._stream.receive())

    async def close(self) -> None:
        self._server.cancel()
        await asyncio.gather(self._server, return_exceptions=True)


@asynccontextmanager
async def pipe_floor() -> AsyncIterator[Connect]:
    from wsfake._runtime import current_call_soon

    @asynccontextmanager
    async def connect(path: str) -> AsyncIterator[_Floor]:
        pipe = wsfake.Pipe(current_call_soon(), client_address=("127.0.0.1", 1), server_address=("localhost", 1))
        server_end = pipe.server_stream()

        async def serve() -> None:
            if path.startswith("/stream"):
                n, size, _ = _stream_params(path.partition("?")[2])
                await server_end.receive()  # the client's "go"
                chunk = b"b" * size
                for _ in range(n):
                    await server_end.send(chunk)
                return
            while True:
                await server_end.send(await server_end.receive())

        floor = _Floor(pipe.client_stream(), asyncio.create_task(serve()))
        try:
            yield floor
        finally:
            await floor.close()

    yield connect


@contextmanager
def starlette_testclient() -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(asgi_app) as client:
        yield client


SCENARIOS = [
    Scenario("a", "websockets -> wsfake -> ASGI echo app", wsfake_asgi),
    Scenario("b", "websockets -> wsfake -> handler echo", wsfake_handler),
    Scenario("c", "websockets -> uvicorn (websockets-sansio) over 127.0.0.1", uvicorn_asgi),
    Scenario("d", "websockets -> websockets server over 127.0.0.1", websockets_server),
    Scenario(
        "e", "Starlette TestClient.websocket_connect", sync_setup=starlette_testclient, workloads=("W1", "W2", "W3")
    ),
    Scenario("f", "httpx-ws ASGIWebSocketTransport", httpx_ws, workloads=("W1", "W2", "W3", "W3b", "W4")),
    Scenario("g", "floor: bytes across the pipe, no framing", pipe_floor, workloads=("W2", "W3")),
]
