"""A network serves any number of event loops, each with its own server and lifespan, in every form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

import wsfake

URL = "ws://localhost:8000/ws"


def lifespan_app(log: list[str]) -> Any:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.append("startup")
        yield
        log.append("shutdown")

    async def endpoint(websocket: Any) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        # Wait for the client to close: websockets 14.0 may lose a message the server closes right after.
        await websocket.receive()

    return Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)


async def talk() -> str:
    async with websockets.connect(URL) as ws:
        return str(await ws.recv())


@pytest.mark.parametrize("runs", [1, 2])
def test_a_sync_patch_serves_each_asyncio_run_and_shuts_each_lifespan_down(runs: int) -> None:
    # Each event loop gets its own server: the loop ending stops it gracefully (the app hears
    # lifespan.shutdown, never a cancellation), and the next loop starts a fresh one.
    log: list[str] = []
    with wsfake.patch_client(lifespan_app(log)) as net:
        for _ in range(runs):
            assert asyncio.run(talk()) == "hi"
    assert log == ["startup", "shutdown"] * runs
    assert net.errors == []


def test_lifespan_runs_on_trio_too() -> None:
    import trio

    log: list[str] = []

    async def main() -> None:
        from websockets.trio.client import connect

        async with wsfake.patch_client(lifespan_app(log)), connect(URL) as ws:
            assert await ws.recv() == "hi"

    pytest.importorskip("websockets.trio.client", reason="websockets.trio needs websockets 17")
    trio.run(main)
    assert log == ["startup", "shutdown"]


def test_threaded_clients_get_the_lifespan_of_the_background_loop() -> None:
    from websockets.sync.client import connect

    log: list[str] = []
    with wsfake.patch_client(lifespan_app(log)):
        with connect(URL) as ws:
            assert ws.recv(timeout=5) == "hi"
        assert log == ["startup"]
    assert log == ["startup", "shutdown"]
