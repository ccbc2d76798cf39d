"""The servers a setup connects to; each is a context manager yielding the base URL.

wsfake serves ``ws://localhost:8000`` in memory; the real servers listen on
127.0.0.1, port 0 (the OS picks one), either in the caller's asyncio loop or, for
threaded and trio clients, on their own loop in a background thread. All are
stopped and joined on exit.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager

import uvicorn
from websockets.asyncio.server import serve

import wsfake

from .apps import asgi_app, echo_handler

FAKE_BASE = "ws://localhost:8000"
STARTUP_POLL = 0.001


@asynccontextmanager
async def wsfake_asgi() -> AsyncIterator[str]:
    """wsfake serving the ASGI app on the running loop (asyncio or trio), lifespan on."""
    async with wsfake.patch_client(wsfake.ASGI(asgi_app)):
        yield FAKE_BASE


@contextmanager
def wsfake_asgi_sync() -> Iterator[str]:
    """wsfake serving the ASGI app to threaded clients (on wsfake's own background loop)."""
    with wsfake.patch_client(wsfake.ASGI(asgi_app)):
        yield FAKE_BASE


@asynccontextmanager
async def wsfake_handler() -> AsyncIterator[str]:
    """wsfake serving the echo handler on the running loop."""
    async with wsfake.patch_client(wsfake.Handler(echo_handler)):
        yield FAKE_BASE


def _uvicorn_server() -> uvicorn.Server:
    config = uvicorn.Config(
        asgi_app, host="127.0.0.1", port=0, ws="websockets-sansio", lifespan="on", log_level="critical"
    )
    return uvicorn.Server(config)


def _base(server: uvicorn.Server) -> str:
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"ws://127.0.0.1:{port}"


@asynccontextmanager
async def uvicorn_in_loop() -> AsyncIterator[str]:
    """uvicorn (websockets-sansio, lifespan on) in the running asyncio loop, as a pytest fixture would start it."""
    server = _uvicorn_server()
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn exited before it started")
            await asyncio.sleep(STARTUP_POLL)
        yield _base(server)
    finally:
        server.should_exit = True
        await task


@contextmanager
def uvicorn_in_thread() -> Iterator[str]:
    """uvicorn on its own asyncio loop in a background thread, for threaded and trio clients."""
    server = _uvicorn_server()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="benchmark uvicorn")
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited before it started") from (failure[0] if failure else None)
            time.sleep(STARTUP_POLL)
        yield _base(server)
    finally:
        server.should_exit = True
        thread.join()


@asynccontextmanager
async def websockets_in_loop() -> AsyncIterator[str]:
    """``websockets.asyncio.server.serve`` with the echo handler in the running asyncio loop."""
    async with serve(echo_handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


@asynccontextmanager
async def entered_async(server: AbstractContextManager[str]) -> AsyncIterator[str]:
    """A background-thread server used from async code (its start blocks briefly, outside any timing)."""
    with server as base:
        yield base
