"""patch_client(): import styles, connect forms, nesting, undo, routing and lifecycle."""

from __future__ import annotations

import asyncio
import errno
import sys
from typing import Any

import pytest
import websockets
import websockets.asyncio.client
from websockets import connect as imported_connect
from websockets.exceptions import ConnectionClosedOK

import wsfake
from wsfake import ServerConnection

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.asyncio

URL = "ws://localhost:8000/ws"
HOOK = (
    "open_tcp_connection" if "open_tcp_connection" in vars(websockets.asyncio.client.connect) else "create_connection"
)


def hook() -> Any:
    return vars(websockets.asyncio.client.connect)[HOOK]


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.mark.parametrize(
    "connect",
    [websockets.connect, imported_connect, websockets.asyncio.client.connect],
    ids=["websockets.connect", "from-import", "asyncio.client.connect"],
)
async def test_every_import_style_is_caught(connect: Any) -> None:
    async with wsfake.patch_client(echo):
        async with connect(URL) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
        ws = await connect(URL)
        await ws.send("awaited")
        assert await ws.recv() == "awaited"
        await ws.close()


async def test_reconnect_loop_retries_503_then_connects() -> None:
    attempts: list[int] = []

    def flaky(connection: ServerConnection, request: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            return connection.respond(503, "warming up\n")
        return None

    def no_delay() -> Any:
        while True:
            yield 0.0

    async with wsfake.patch_client() as net:
        net.route(URL, echo, process_request=flaky)
        async for ws in (
            websockets.connect(URL, reconnect_delays=no_delay) if _has_reconnect_delays() else websockets.connect(URL)
        ):
            await ws.send("finally")
            assert await ws.recv() == "finally"
            break
    assert len(attempts) == 2
    assert [call.status for call in net.routes[0].calls] == [503, 101]


def _has_reconnect_delays() -> bool:
    import inspect

    return "reconnect_delays" in inspect.signature(websockets.asyncio.client.connect.__init__).parameters


async def test_unrouted_url_is_refused_like_a_closed_port() -> None:
    async with wsfake.patch_client({"ws://localhost:8000/*": echo}):
        with pytest.raises(ConnectionRefusedError) as info:
            await websockets.connect("ws://localhost:8002/ws")
    assert info.value.errno == errno.ECONNREFUSED
    assert "ws://localhost:8002/ws" in str(info.value) and "ws://localhost:8000/*" in str(info.value)
    assert isinstance(info.value, wsfake.NoRoute)


async def test_routes_first_match_wins_and_records_calls() -> None:
    async def first(ws: ServerConnection) -> None:
        await ws.send("first")

    async def second(ws: ServerConnection) -> None:
        await ws.send("second")

    async with wsfake.patch_client() as net:
        r1 = net.route("ws://localhost:*/a/*", first)
        r2 = net.route("ws://localhost:*/*", second)
        for url, expected in [("ws://localhost:1/a/x", "first"), ("ws://localhost:2/b", "second")]:
            async with websockets.connect(url) as ws:
                assert await ws.recv() == expected
    assert (r1.call_count, r2.call_count, r1.called) == (1, 1, True)
    call = r1.calls.last
    assert call.url == "ws://localhost:1/a/x" and call.sent == ["first"] and call.accepted
    assert call.header(
        "user-agent",
    ).startswith("Python/")


async def test_route_added_while_connections_are_live() -> None:
    async def other(ws: ServerConnection) -> None:
        await ws.send("new route")

    async with wsfake.patch_client() as net:
        net.route("ws://a/*", echo)
        async with websockets.connect("ws://a/x") as live:
            net.route("ws://b/*", other)
            async with websockets.connect("ws://b/y") as ws:
                assert await ws.recv() == "new route"
            await live.send("still here")
            assert await live.recv() == "still here"


async def test_nested_contexts_patch_once_and_undo_on_last_exit() -> None:
    original = hook()
    async with wsfake.patch_client({"ws://outer/*": echo}):
        patched = hook()
        assert patched is not original
        async with wsfake.patch_client({"ws://inner/*": echo}):
            assert hook() is patched
            for url in ["ws://inner/", "ws://outer/"]:
                async with websockets.connect(url) as ws:
                    await ws.send(url)
                    assert await ws.recv() == url
        assert hook() is patched
    assert hook() is original
    assert not wsfake.is_patched()


async def test_patch_is_undone_when_the_body_raises() -> None:
    original = hook()
    with pytest.raises(KeyError):
        async with wsfake.patch_client(echo):
            raise KeyError("body failed")
    assert hook() is original
    with pytest.raises(KeyError), wsfake.patch_client(echo):
        raise KeyError("body failed")
    assert hook() is original


async def test_server_errors_are_reraised_as_a_group() -> None:
    async def broken(ws: ServerConnection) -> None:
        raise ValueError(ws.request.path)

    with pytest.raises(ExceptionGroup) as info:
        async with wsfake.patch_client(broken):
            for path in ["/1", "/2"]:
                async with websockets.connect(f"ws://x{path}") as ws:
                    await ws.wait_closed()
    assert sorted(str(e) for e in info.value.exceptions) == ["/1", "/2"]


async def test_raise_server_errors_false_records_them_on_the_route() -> None:
    async def broken(ws: ServerConnection) -> None:
        raise ValueError("recorded")

    async with wsfake.patch_client(broken, raise_server_errors=False) as net, websockets.connect("ws://x/") as ws:
        await ws.wait_closed()
    assert [str(e) for e in net.routes[0].errors] == ["recorded"]
    assert str(net.routes[0].calls.last.error) == "recorded"


async def test_exit_closes_live_connections_with_1001() -> None:
    seen: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosedOK as exc:
            seen.append(exc.sent.code if exc.sent else None)

    async with wsfake.patch_client(handler):
        ws = await websockets.connect("ws://x/")
    with pytest.raises(ConnectionClosedOK):
        await ws.recv()
    assert ws.protocol.close_code == 1001 and seen == [1001]
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("wsfake")]


async def test_open_timeout_when_the_handshake_never_completes() -> None:
    async def never(connection: ServerConnection, request: Any) -> None:
        await asyncio.Event().wait()

    async with wsfake.patch_client() as net:
        # As under websockets.serve, the server side gives up after its own open_timeout.
        net.route("ws://slow/*", echo, process_request=never, open_timeout=0.2)
        # websockets raises the builtin TimeoutError, asyncio.TimeoutError on Python 3.10.
        with pytest.raises((TimeoutError, asyncio.TimeoutError)):
            await websockets.connect("ws://slow/", open_timeout=0.05)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("wsfake")]


async def test_connect_options_reach_the_server() -> None:
    async with (
        wsfake.patch_client(echo) as net,
        websockets.connect(
            URL,
            additional_headers={"Authorization": "Bearer t"},
            user_agent_header="my-agent/2",
            origin="https://example.com",
            compression=None,
        ) as ws,
    ):
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
    call = net.routes[0].calls.last
    assert call.header("authorization") == "Bearer t"
    assert call.header("user-agent") == "my-agent/2"
    assert call.header("origin") == "https://example.com"
    assert call.header("sec-websocket-extensions") is None


async def test_large_compressible_messages_with_deflate() -> None:
    big = "chat event " * 50_000
    async with wsfake.patch_client(echo), websockets.connect(URL) as ws:
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        await ws.send(big)
        assert await ws.recv() == big


async def test_fifty_concurrent_connections() -> None:
    async def one(i: int) -> str:
        async with websockets.connect(f"ws://localhost:8000/c/{i}") as ws:
            await ws.send(str(i))
            return str(await ws.recv())

    async with wsfake.patch_client(echo) as net:
        assert await asyncio.gather(*[one(i) for i in range(50)]) == [str(i) for i in range(50)]
    assert net.routes[0].call_count == 50


async def test_sync_context_inside_async_code_leaves_no_task() -> None:
    with wsfake.patch_client(echo):
        ws = await websockets.connect(URL)
        await ws.send("x")
        assert await ws.recv() == "x"
    await asyncio.wait_for(ws.wait_closed(), 5)
    # A sync exit cannot await the server side: it finishes on the loop's next turns, by itself.
    server_tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("wsfake")]
    await asyncio.wait_for(asyncio.gather(*server_tasks), 5)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("wsfake")]


async def test_routing_follows_the_address_the_library_connects_to() -> None:
    # websockets.connect(uri, host=..., port=...) connects to host:port and sends Host from the URI.
    async with wsfake.patch_client() as net:
        route = net.route("ws://127.0.0.1:9000/*", echo)
        async with websockets.connect("ws://chat.example.com/ws", host="127.0.0.1", port=9000) as ws:
            await ws.send("via the override")
            assert await ws.recv() == "via the override"
        with pytest.raises(wsfake.NoRoute):
            await websockets.connect("ws://chat.example.com/ws")
    assert route.calls.last.header("host") == "chat.example.com"


#: websockets' error for a bad proxy URL (proxies are new in websockets 15).
INVALID_PROXY = getattr(websockets.exceptions, "InvalidProxy", None)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ssl": None}, ValueError, "ssl=None is incompatible with a wss:// URI"),
        ({"proxy": "ftp://proxy.local"}, INVALID_PROXY, "scheme ftp isn't supported"),
        ({"proxy": "http://proxy.local", "proxy_ssl": True}, ValueError, "proxy_ssl argument is incompatible"),
        ({"no_such_option": 1}, TypeError, "no_such_option"),
    ],
)
async def test_the_librarys_own_checks_still_raise(kwargs: dict[str, Any], error: type, message: str) -> None:
    if "proxy" in kwargs and not hasattr(websockets.exceptions, "InvalidProxy"):
        pytest.skip("proxies arrived in websockets 15")
    async with wsfake.patch_client(echo):
        with pytest.raises(error, match=message):
            await websockets.connect("wss://localhost:8000/ws", **kwargs)


async def test_a_routed_url_through_an_http_proxy_is_tunnelled_in_memory() -> None:
    if not hasattr(websockets.exceptions, "InvalidProxy"):
        pytest.skip("proxies arrived in websockets 15")
    async with (
        wsfake.patch_client({"wss://api.example.com/*": echo}) as net,
        websockets.connect("wss://api.example.com/feed", proxy="http://proxy.local:3128") as ws,
    ):
        await ws.send("through the tunnel")
        assert await ws.recv() == "through the tunnel"
    notes = [entry.data for entry in net.routes[0].calls.last.transcript if entry.kind == "note"]
    assert notes == ["through an HTTP proxy: api.example.com:443 tunnelled"]
