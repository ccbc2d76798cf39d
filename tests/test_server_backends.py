"""The server side (handler and ASGI targets) on asyncio and trio, driven by wsproto."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

import wsfake
from wsfake import Network, ServerConnection
from wsproto_client import WsprotoClient

pytestmark = pytest.mark.anyio


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def starlette_echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="chat" if "chat" in websocket.scope["subprotocols"] else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message["code"])
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


starlette_app = Starlette(routes=[WebSocketRoute("/ws", starlette_echo)])


@pytest.fixture(params=["handler", "asgi"])
def target(request: pytest.FixtureRequest) -> Any:
    return echo if request.param == "handler" else starlette_app


async def test_echo_ping_and_close_handshake(target: Any) -> None:
    network = Network()
    network.route("ws://localhost:8000/*", target)
    client, first = await WsprotoClient.connect(network, "ws://localhost:8000/ws", subprotocols=["chat"])
    assert isinstance(first, AcceptConnection)
    await client.send(TextMessage("hello ✓"))
    assert await client.next_event() == TextMessage("hello ✓")
    await client.send(BytesMessage(b"\x00\x01"))
    event = await client.next_event()
    assert isinstance(event, BytesMessage) and event.data == b"\x00\x01"
    await client.send(Ping(b"p"))
    assert await client.next_event() == Pong(b"p")
    await client.send(CloseConnection(1000, "bye"))
    closing = await client.next_event()
    assert isinstance(closing, CloseConnection) and (closing.code, closing.reason) == (1000, "bye")
    await network.aclose()
    assert network.connections == 0
    network.raise_errors()


async def test_permessage_deflate_is_negotiated(target: Any) -> None:
    network = Network()
    network.route("ws://x/*", target)
    client, first = await WsprotoClient.connect(network, "ws://x/ws", extensions=[PerMessageDeflate()])
    assert isinstance(first, AcceptConnection)
    assert [type(e).__name__ for e in first.extensions] == ["PerMessageDeflate"]
    await client.send(TextMessage("compressible " * 1000))
    assert await client.next_event() == TextMessage("compressible " * 1000)
    await client.send(CloseConnection(1000))
    assert isinstance(await client.next_event(), CloseConnection)
    await network.aclose()


async def test_exit_gives_up_on_a_client_that_never_answers_the_close(target: Any) -> None:
    network = Network(shutdown_timeout=0.05)
    network.route("ws://x/*", target)
    client, _ = await WsprotoClient.connect(network, "ws://x/ws")
    await network.aclose()  # the shutdown close frame is never answered
    assert network.connections == 0
    closing = await client.next_event()
    # As the real servers stop: websockets.serve closes with 1001, uvicorn with 1012.
    expected = 1001 if target is echo else 1012
    assert isinstance(closing, CloseConnection) and closing.code == expected


async def test_invalid_utf8_is_closed_with_1007(target: Any) -> None:
    network = Network()
    network.route("ws://x/*", target)
    client, _ = await WsprotoClient.connect(network, "ws://x/ws")
    # A masked text frame whose payload is not UTF-8.
    await client.send_raw(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))
    event = await client.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1007
    await client.send(event.response())
    await network.aclose()


async def test_handler_exception_closes_1011_and_is_recorded() -> None:
    async def broken(ws: ServerConnection) -> None:
        raise LookupError("server bug")

    network = Network()
    route = network.route("ws://x/*", broken)
    client, _ = await WsprotoClient.connect(network, "ws://x/")
    event = await client.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1011
    await client.send(event.response())
    await network.aclose()
    assert [str(e) for e in route.errors] == ["server bug"]
    with pytest.raises(LookupError):
        network.raise_errors()


async def test_oversize_message_is_closed_with_1009() -> None:
    network = Network()
    network.route("ws://x/*", wsfake.Handler(echo, max_size=10))
    client, _ = await WsprotoClient.connect(network, "ws://x/")
    await client.send(BytesMessage(b"y" * 11))
    event = await client.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1009
    await client.send(event.response())
    await network.aclose()


async def test_denied_handshake() -> None:
    def deny(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(401, "who are you?\n")

    network = Network()
    network.route("ws://x/*", echo, process_request=deny)
    client, first = await WsprotoClient.connect(network, "ws://x/")
    assert await client.rejection(first) == (401, b"who are you?\n")
    await network.aclose()


async def test_a_plain_http_get_gets_websockets_426() -> None:
    network = Network()
    route = network.route("ws://x/*", echo)
    pipe = await network.open(route, wsfake.URL.parse("ws://x/"))
    client = WsprotoClient(pipe.client_stream())
    await client.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    with anyio.fail_after(5):
        while True:
            try:
                data += await client.stream.receive()
            except anyio.EndOfStream:
                break
    # websockets.serve answers a request without Upgrade/Connection headers with 426.
    assert data.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"Failed to open a WebSocket connection: missing Connection header." in data
    await network.aclose()


async def test_a_client_leaving_mid_handshake_is_not_a_server_error() -> None:
    async def deny(connection: ServerConnection, request: Any) -> Any:
        pipe.to_client.close_reader()  # the client is gone before the answer is written
        return connection.respond(403, "no\n")

    network = Network()
    route = network.route("ws://x/*", echo, process_request=deny)
    pipe = await network.open(route, wsfake.URL.parse("ws://x/"))
    client = WsprotoClient(pipe.client_stream())
    from wsproto.events import Request

    await client.send(Request(host="x", target="/"))
    with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
        while True:
            await client.stream.receive()
    await network.aclose()
    assert route.calls.last.status == 403
    assert network.errors == []


@pytest.mark.parametrize("answer", [True, False])
async def test_asgi_keepalive_pings_and_fails_without_pong(answer: bool) -> None:
    network = Network()
    network.route("ws://x/*", wsfake.ASGI(starlette_app, lifespan=False, ping_interval=0.01, ping_timeout=0.2))
    client, first = await WsprotoClient.connect(network, "ws://x/ws")
    assert isinstance(first, AcceptConnection)
    ping = await client.next_event()
    assert isinstance(ping, Ping), "uvicorn-style keepalive pings after accept"
    if answer:
        await client.send(ping.response())
        assert isinstance(await client.next_event(), Ping), "pinging goes on while pongs come back"
        await client.send(CloseConnection(1000))
    else:
        closing = await client.next_event()
        assert isinstance(closing, CloseConnection)
        assert (closing.code, closing.reason) == (1011, "keepalive ping timeout")
    await network.aclose()
    network.raise_errors()


async def test_no_server_task_outlives_the_lifespan_at_exit() -> None:
    """Once the context has exited, every wsfake task has ended: none is still waiting for its next turn."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield

    app = Starlette(routes=[WebSocketRoute("/ws", starlette_echo)], lifespan=lifespan)
    async with wsfake.patch_client(wsfake.ASGI(app)) as net:
        client, first = await WsprotoClient.connect(net, "ws://x/ws")
        assert isinstance(first, AcceptConnection)
        await client.send(CloseConnection(1000))
        assert isinstance(await client.next_event(), CloseConnection)
    assert [name for name in _running_task_names() if name.startswith("wsfake")] == []


def _running_task_names() -> list[str]:
    import sniffio

    if sniffio.current_async_library() == "trio":
        import trio

        names, pending = [], [trio.lowlevel.current_root_task()]
        while pending:
            task = pending.pop()
            names.append(task.name)
            pending += [child for nursery in task.child_nurseries for child in nursery.child_tasks]
        return names
    import asyncio

    return [task.get_name() for task in asyncio.all_tasks() if not task.done()]
