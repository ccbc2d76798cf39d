"""One driver per client library, all of the same shape.

A driver's ``session(base_url)`` is a context manager (async for asyncio and trio
clients, plain for threaded ones) yielding ``connect(path)``, itself a context
manager yielding a connection with ``send(str | bytes)`` and ``recv()``. The
session holds what a test suite would share between connections (an aiohttp
``ClientSession``, an ``httpx.AsyncClient``). Where a library's method names
differ, a thin adapter renames them; the workloads pay that call on both sides.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

MAX_SIZE = 2**21


class AsyncConn(Protocol):
    async def send(self, data: str | bytes, /) -> None: ...

    async def recv(self) -> str | bytes: ...


class SyncConn(Protocol):
    def send(self, data: str | bytes, /) -> None: ...

    def recv(self) -> str | bytes: ...


AsyncConnect = Callable[[str], AbstractAsyncContextManager[AsyncConn]]
SyncConnect = Callable[[str], AbstractContextManager[SyncConn]]


@dataclass(frozen=True)
class AsyncDriver:
    """A client library driven from asyncio or trio."""

    name: str
    backend: Literal["asyncio", "trio"]
    session: Callable[[str], AbstractAsyncContextManager[AsyncConnect]]


@dataclass(frozen=True)
class SyncDriver:
    """A client library driven from plain synchronous code."""

    name: str
    session: Callable[[str], AbstractContextManager[SyncConnect]]


def _plain_session(connect: Callable[[str], Any]) -> Callable[[str], AbstractAsyncContextManager[AsyncConnect]]:
    """A session that shares nothing between connections: ``connect(url)`` opens one."""

    @asynccontextmanager
    async def session(base: str) -> AsyncIterator[AsyncConnect]:
        yield lambda path: connect(base + path)

    return session


def websockets_asyncio(compression: str | None) -> AsyncDriver:
    """``websockets.asyncio.client.connect`` (``compression="deflate"`` is its default)."""
    from websockets.asyncio.client import connect

    return AsyncDriver(
        f"websockets asyncio ({compression or 'no compression'})",
        "asyncio",
        _plain_session(lambda url: connect(url, compression=compression, max_size=MAX_SIZE)),
    )


def negotiated_extensions(ws: Any) -> list[str]:
    """The extensions a ``websockets`` asyncio client connection negotiated."""
    return [extension.name for extension in ws.protocol.extensions]


def websockets_legacy() -> AsyncDriver:
    """``websockets.legacy.client.connect`` (deprecated by websockets; its warning is silenced here only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from websockets.legacy.client import connect

    return AsyncDriver(
        "websockets legacy", "asyncio", _plain_session(lambda url: connect(url, compression=None, max_size=MAX_SIZE))
    )


def websockets_trio() -> AsyncDriver:
    """``websockets.trio.client.connect`` under ``trio.run``."""
    from websockets.trio.client import connect

    return AsyncDriver(
        "websockets trio", "trio", _plain_session(lambda url: connect(url, compression=None, max_size=MAX_SIZE))
    )


def websockets_sync() -> SyncDriver:
    """``websockets.sync.client.connect`` in the calling thread."""
    from websockets.sync.client import connect

    @contextmanager
    def session(base: str) -> Iterator[SyncConnect]:
        yield lambda path: connect(base + path, compression=None, max_size=MAX_SIZE)

    return SyncDriver("websockets sync", session)


class _Aiohttp:
    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, data: str | bytes, /) -> None:
        if isinstance(data, str):
            await self._ws.send_str(data)
        else:
            await self._ws.send_bytes(data)

    async def recv(self) -> str | bytes:
        message = await self._ws.receive()
        return message.data  # type: ignore[no-any-return]


def aiohttp_driver() -> AsyncDriver:
    """``aiohttp.ClientSession().ws_connect`` (no compression: aiohttp's default)."""
    import aiohttp

    @asynccontextmanager
    async def session(base: str) -> AsyncIterator[AsyncConnect]:
        async with aiohttp.ClientSession() as client:

            @asynccontextmanager
            async def connect(path: str) -> AsyncIterator[AsyncConn]:
                async with client.ws_connect(base + path, max_msg_size=MAX_SIZE) as ws:
                    yield _Aiohttp(ws)

            yield connect

    return AsyncDriver("aiohttp", "asyncio", session)


class _WebsocketClient:
    def __init__(self, ws: Any) -> None:
        self._ws = ws

    def send(self, data: str | bytes, /) -> None:
        if isinstance(data, str):
            self._ws.send(data)
        else:
            self._ws.send_binary(data)

    def recv(self) -> str | bytes:
        return self._ws.recv()  # type: ignore[no-any-return]


def websocket_client() -> SyncDriver:
    """websocket-client's ``create_connection`` (it has no compression)."""
    import websocket

    @contextmanager
    def session(base: str) -> Iterator[SyncConnect]:
        @contextmanager
        def connect(path: str) -> Iterator[SyncConn]:
            ws = websocket.create_connection(base + path)
            try:
                yield _WebsocketClient(ws)
            finally:
                ws.close()

        yield connect

    return SyncDriver("websocket-client", session)


class _HttpxWs:
    def __init__(self, session: Any) -> None:
        self._session = session

    async def send(self, data: str | bytes, /) -> None:
        if isinstance(data, str):
            await self._session.send_text(data)
        else:
            await self._session.send_bytes(data)

    async def recv(self) -> str | bytes:
        event = await self._session.receive()
        return event.data  # type: ignore[no-any-return]


def _httpx_ws_session(
    transport: Callable[[], Any] | None,
) -> Callable[[str], AbstractAsyncContextManager[AsyncConnect]]:
    import httpx
    from httpx_ws import aconnect_ws

    @asynccontextmanager
    async def session(base: str) -> AsyncIterator[AsyncConnect]:
        base = base.replace("ws://", "http://", 1)
        async with httpx.AsyncClient(transport=None if transport is None else transport()) as client:

            @asynccontextmanager
            async def connect(path: str) -> AsyncIterator[AsyncConn]:
                opening: Any = aconnect_ws(base + path, client, max_message_size_bytes=MAX_SIZE)
                async with opening as ws:
                    yield _HttpxWs(ws)

            yield connect

    return session


def httpx_ws() -> AsyncDriver:
    """httpx-ws ``aconnect_ws(url, httpx.AsyncClient())`` (it has no compression)."""
    return AsyncDriver("httpx-ws", "asyncio", _httpx_ws_session(None))


def httpx_ws_asgi_transport(app: Any) -> AsyncDriver:
    """httpx-ws's own in-memory ``ASGIWebSocketTransport`` (no network, no wsfake)."""
    from httpx_ws.transport import ASGIWebSocketTransport

    return AsyncDriver(
        "httpx-ws ASGIWebSocketTransport", "asyncio", _httpx_ws_session(lambda: ASGIWebSocketTransport(app))
    )


class _TrioWebsocket:
    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, data: str | bytes, /) -> None:
        await self._ws.send_message(data)

    async def recv(self) -> str | bytes:
        return await self._ws.get_message()  # type: ignore[no-any-return]


def trio_websocket() -> AsyncDriver:
    """trio-websocket's ``open_websocket_url`` (it has no compression)."""
    from trio_websocket import open_websocket_url

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[AsyncConn]:
        async with open_websocket_url(url, max_message_size=MAX_SIZE) as ws:
            yield _TrioWebsocket(ws)

    return AsyncDriver("trio-websocket", "trio", _plain_session(connect))


class _TestClientConn:
    def __init__(self, ws: Any) -> None:
        self._ws = ws

    def send(self, data: str | bytes, /) -> None:
        if isinstance(data, str):
            self._ws.send_text(data)
        else:
            self._ws.send_bytes(data)

    def recv(self) -> str | bytes:
        message = self._ws.receive()
        return message.get("text") or message["bytes"]  # type: ignore[no-any-return]


def starlette_testclient(app: Any) -> SyncDriver:
    """Starlette's ``TestClient.websocket_connect`` (in memory through a portal thread; no wsfake)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient` is deprecated")
        from starlette.testclient import TestClient

    @contextmanager
    def session(base: str) -> Iterator[SyncConnect]:
        with TestClient(app) as client:

            @contextmanager
            def connect(path: str) -> Iterator[SyncConn]:
                with client.websocket_connect(path) as ws:
                    yield _TestClientConn(ws)

            yield connect

    return SyncDriver("Starlette TestClient", session)
