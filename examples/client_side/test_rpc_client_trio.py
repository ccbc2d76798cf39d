"""A JSON-RPC client on trio (``trio-websocket``), tested with the same ``MockServer``.

On trio the mock's methods are awaited as on asyncio. A call that waits for
its reply runs in a nursery while the test plays the server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio_websocket

import wsfake

# ---- the client code under test ----


class RpcError(Exception):
    """The server answered a call with an error."""


class RpcClient:
    """Calls methods and collects the notifications the server sends in between."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self._ws = ws
        self._last_id = 0
        self.notifications: list[dict[str, Any]] = []

    async def call(self, method: str, *params: Any) -> Any:
        self._last_id += 1
        call_id = self._last_id
        await self._ws.send_message(json.dumps({"jsonrpc": "2.0", "id": call_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self._ws.get_message())
            if "id" not in reply:
                self.notifications.append(reply)
            elif reply["id"] == call_id:
                if "error" in reply:
                    raise RpcError(reply["error"]["message"])
                return reply["result"]


@asynccontextmanager
async def rpc_session(url: str) -> AsyncIterator[RpcClient]:
    async with trio_websocket.open_websocket_url(url, subprotocols=["jsonrpc"]) as ws:
        yield RpcClient(ws)


# ---- the tests ----

URL = "ws://rpc.internal:9000/"


def test_a_call_gets_its_reply_past_a_notification() -> None:
    results: list[Any] = []
    notifications: list[Any] = []

    async def app() -> None:  # how the application uses the client
        async with rpc_session(URL) as rpc:
            results.append(await rpc.call("add", 2, 3))
            notifications.extend(rpc.notifications)

    async def main() -> None:
        async with wsfake.patch_client() as net, trio.open_nursery() as nursery:
            server = net.mock(URL, json=True, subprotocols=["jsonrpc"])
            nursery.start_soon(app)
            conn = await server.connected()
            assert conn.subprotocol == "jsonrpc"
            request = await conn.expect(lambda message: message["method"] == "add")
            assert request == {"jsonrpc": "2.0", "id": 1, "method": "add", "params": [2, 3]}
            await conn.send({"jsonrpc": "2.0", "method": "progress", "params": [50]})
            await conn.send({"jsonrpc": "2.0", "id": 1, "result": 5})
            assert await conn.wait_closed() == (1000, "")

    trio.run(main)
    assert results == [5]
    assert notifications == [{"jsonrpc": "2.0", "method": "progress", "params": [50]}]


def test_an_error_reply_raises() -> None:
    async def app() -> None:
        async with rpc_session(URL) as rpc:
            with pytest.raises(RpcError, match="division by zero"):
                await rpc.call("div", 1, 0)

    async def main() -> None:
        async with wsfake.patch_client() as net, trio.open_nursery() as nursery:
            server = net.mock(URL, json=True, subprotocols=["jsonrpc"])
            nursery.start_soon(app)
            conn = await server.connected()
            request = await conn.receive(timeout=5)
            await conn.send({"jsonrpc": "2.0", "id": request["id"], "error": {"message": "division by zero"}})

    trio.run(main)


def test_the_server_closing_ends_the_call() -> None:
    async def app() -> None:
        async with rpc_session(URL) as rpc:
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await rpc.call("report")
            assert (closed.value.reason.code, closed.value.reason.reason) == (1011, "worker crashed")

    async def main() -> None:
        async with wsfake.patch_client() as net, trio.open_nursery() as nursery:
            server = net.mock(URL, json=True, subprotocols=["jsonrpc"])
            nursery.start_soon(app)
            conn = await server.connected()
            await conn.expect(lambda message: message["method"] == "report")
            # close() returns once the client has closed the connection: here when app() leaves its block.
            assert await conn.close(1011, "worker crashed") == (1011, "worker crashed")

    trio.run(main)
