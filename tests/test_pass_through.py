"""pass_through(): chosen URLs keep using the real network (loopback only)."""

from __future__ import annotations

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

import wsfake


async def real_echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(f"real:{message}")


async def fake_echo(ws: wsfake.ServerConnection) -> None:
    async for message in ws:
        await ws.send(f"fake:{message}")


@pytest.mark.network
@pytest.mark.asyncio
async def test_pass_through_reaches_a_real_server_and_the_patch_is_undone() -> None:
    async with serve(real_echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        real_url = f"ws://127.0.0.1:{port}/"
        async with wsfake.patch_client() as net:
            net.route("ws://localhost:8000/*", fake_echo)
            net.pass_through(f"ws://127.0.0.1:{port}/*")
            for url, expected in [(real_url, "real:a"), ("ws://localhost:8000/x", "fake:a")]:
                async with websockets.connect(url) as ws:
                    await ws.send("a")
                    assert await ws.recv() == expected
            with pytest.raises(ConnectionRefusedError, match="no route matches"):
                await websockets.connect("ws://127.0.0.1:1/")
        async with websockets.connect(real_url) as ws:
            await ws.send("after")
            assert await ws.recv() == "real:after"
