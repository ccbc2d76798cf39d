"""patch_client() used from synchronous code."""

from __future__ import annotations

import asyncio

import pytest
import websockets

import wsfake
from wsfake import ServerConnection

URL = "ws://localhost:8000/ws"


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def test_sync_context_from_a_plain_test() -> None:
    async def main() -> str:
        async with websockets.connect(URL) as ws:
            await ws.send("sync-form")
            return str(await ws.recv())

    with wsfake.patch_client(echo) as net:
        assert asyncio.run(main()) == "sync-form"
    assert net.routes[0].call_count == 1


def test_misuse_is_explained() -> None:
    with pytest.raises(wsfake.InvalidTarget, match=r"ASGI app or an `async def handler"):
        wsfake.patch_client(42)
    with pytest.raises(wsfake.PatternError):
        wsfake.patch_client({"http://x/": echo})
    context = wsfake.patch_client(echo)
    with context, pytest.raises(RuntimeError, match="already active"):
        context.__enter__()
