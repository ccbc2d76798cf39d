"""The aiohttp client (``ClientSession.ws_connect``) in memory: forms, connectors, pooling, refusal, undo."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiohttp.client
import aiohttp.connector
import pytest
import pytest_asyncio
from aiohttp import ClientSession, WSMsgType, web

import wsfake
from wsfake import ServerConnection

URL = "ws://localhost:8000/ws"
AIOHTTP = tuple(int(part) for part in aiohttp.__version__.split(".")[:2])


def hooks() -> tuple[Any, Any, Any]:
    return (
        vars(aiohttp.connector.BaseConnector)["connect"],
        vars(aiohttp.connector.BaseConnector)["_get"],
        vars(aiohttp.connector.TCPConnector)["_create_connection"],
    )


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def wait_closed(ws: ServerConnection) -> None:
    await ws.wait_closed()


async def tell_path(ws: ServerConnection) -> None:
    await ws.send(ws.request.path)
    await echo(ws)


@pytest.mark.parametrize(
    "session_class",
    [aiohttp.ClientSession, ClientSession, aiohttp.client.ClientSession],
    ids=["aiohttp.ClientSession", "from-import", "aiohttp.client.ClientSession"],
)
@pytest.mark.asyncio
async def test_every_import_style_is_caught(session_class: Any) -> None:
    async with wsfake.patch_client({"ws://localhost:8000/*": echo}), session_class() as session:
        async with session.ws_connect(URL) as ws:
            await ws.send_str("ping")
            assert await ws.receive_str() == "ping"
        ws = await session.ws_connect(URL)
        await ws.send_bytes(b"awaited")
        assert await ws.receive_bytes() == b"awaited"
        assert await ws.close() is True


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("ws://svc.test/a?x=1", "ws"),
        ("http://svc.test/a?x=1", "ws"),
        ("wss://svc.test/a?x=1", "wss"),
        ("https://svc.test/a?x=1", "wss"),
    ],
)
@pytest.mark.asyncio
async def test_ws_wss_and_http_urls_are_routed_as_ws_and_wss(url: str, scheme: str) -> None:
    async def named(ws: ServerConnection) -> None:
        await ws.send(f"{scheme} {ws.request.path}")

    other = "wss" if scheme == "ws" else "ws"
    async with wsfake.patch_client() as net, ClientSession() as session:
        route = net.route(f"{scheme}://svc.test/*", named)
        net.route(f"{other}://svc.test/*", echo)
        async with session.ws_connect(url) as ws:
            assert await ws.receive_str() == f"{scheme} /a?x=1"
    assert route.calls.last.url == f"{scheme}://svc.test:{80 if scheme == 'ws' else 443}/a?x=1"


@pytest.mark.asyncio
async def test_wss_is_served_without_tls_whatever_the_ssl_option() -> None:
    verified = ssl.create_default_context()
    async with wsfake.patch_client({"wss://secure.test/*": echo}), ClientSession() as session:
        for option in (True, False, verified):
            async with session.ws_connect("wss://secure.test/", ssl=option) as ws:
                await ws.send_str("secret")
                assert await ws.receive_str() == "secret"
                assert ws.get_extra_info("sslcontext") is None


@pytest.mark.asyncio
async def test_messages_iteration_json_and_receive_timeout() -> None:
    async def talk(ws: ServerConnection) -> None:
        await ws.send("text")
        await ws.send(b"bytes")
        await ws.send('{"a": 1}')
        await ws.recv()  # silent until the client speaks
        await ws.close(4001, "bye")

    async with wsfake.patch_client({URL: talk}), ClientSession() as session, session.ws_connect(URL) as ws:
        first = await ws.receive()
        assert (first.type, first.data) == (WSMsgType.TEXT, "text")
        second = await ws.receive()
        assert (second.type, second.data) == (WSMsgType.BINARY, b"bytes")
        assert await ws.receive_json() == {"a": 1}
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.01)
        await ws.send_json({"done": True})
        seen = [(msg.type, msg.data, msg.extra) async for msg in ws]
        assert seen == []  # iteration stops at the CLOSE message
        assert ws.closed and ws.close_code == 4001
        after = await ws.receive()
        assert after.type is WSMsgType.CLOSED


@pytest.mark.asyncio
async def test_server_close_is_a_close_message_then_closed() -> None:
    async def close(ws: ServerConnection) -> None:
        await ws.close(1001, "going away")

    async with wsfake.patch_client({URL: close}), ClientSession() as session, session.ws_connect(URL) as ws:
        msg = await ws.receive()
        assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1001, "going away")
        assert (await ws.receive()).type is WSMsgType.CLOSED
        assert ws.close_code == 1001 and ws.exception() is None


@pytest.mark.asyncio
async def test_client_close_code_reaches_the_server_and_close_is_idempotent() -> None:
    async with wsfake.patch_client() as net, ClientSession() as session:
        route = net.route(URL, wait_closed)
        ws = await session.ws_connect(URL)
        assert await ws.close(code=4000, message=b"client leaves") is True
        assert await ws.close() is False
        assert ws.close_code == 4000
    assert route.calls.last.close_received == (4000, "client leaves")


@pytest.mark.asyncio
async def test_max_msg_size_is_aiohttps_own_1009() -> None:
    async def big(ws: ServerConnection) -> None:
        await ws.send(b"z" * 2000)
        await ws.wait_closed()

    async with wsfake.patch_client() as net, ClientSession() as session:
        route = net.route(URL, big)
        async with session.ws_connect(URL, max_msg_size=1000) as ws:
            msg = await ws.receive()
            assert msg.type is WSMsgType.ERROR
            assert isinstance(msg.data, aiohttp.WebSocketError) and msg.data.code == 1009
            assert (await ws.receive()).type is WSMsgType.CLOSED
            assert ws.close_code == (1009 if AIOHTTP >= (3, 9) else 1006)  # aiohttp 3.8 reports 1006, also on a network
    assert route.calls.last.close_received is not None and route.calls.last.close_received[0] == 1009


@pytest.mark.asyncio
async def test_heartbeat_and_client_ping_are_answered() -> None:
    async with wsfake.patch_client({URL: echo}), ClientSession() as session:
        async with session.ws_connect(URL, heartbeat=0.01, autoping=False) as ws:
            heartbeat = await ws.receive()  # aiohttp's heartbeat ping, answered by the server
            assert (heartbeat.type, heartbeat.data) == (WSMsgType.PONG, b"")
        async with session.ws_connect(URL, autoping=False) as ws:
            await ws.ping(b"are you there")
            pong = await ws.receive()
            assert (pong.type, pong.data) == (WSMsgType.PONG, b"are you there")


@pytest.mark.asyncio
async def test_subprotocols_headers_query_and_deflate_reach_the_server() -> None:
    async def info(ws: ServerConnection) -> None:
        await ws.send(f"{ws.subprotocol} {ws.request.headers['X-Token']} {ws.request.path}")
        await echo(ws)

    async with wsfake.patch_client() as net, ClientSession() as session:
        route = net.route("ws://svc.test/*", wsfake.Handler(info, subprotocols=["v2", "v1"]))
        async with session.ws_connect(
            "ws://svc.test/room",
            protocols=["v1", "v2"],
            headers={"X-Token": "t0k"},
            params={"q": "a b"},
            compress=15,
        ) as ws:
            assert ws.protocol == "v2"
            assert ws.compress == 12  # the window the server chose
            assert await ws.receive_str() == "v2 t0k /room?q=a+b"
            large = "chat event " * 20000
            await ws.send_str(large)
            assert await ws.receive_str() == large
    assert route.calls.last.header("sec-websocket-extensions") is not None


@pytest.mark.asyncio
async def test_handshake_rejections_are_ws_server_handshake_errors() -> None:
    def deny(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(403, "Forbidden\n")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})

    async with wsfake.patch_client() as net, ClientSession() as session:
        net.route("ws://svc.test/handler", wsfake.Handler(echo, process_request=deny))
        net.route("ws://svc.test/asgi", wsfake.ASGI(app, lifespan=False))
        for path in ("handler", "asgi"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(f"ws://svc.test/{path}")
            assert info.value.status == 403
        assert not session.connector._conns


@pytest.mark.asyncio
async def test_server_errors_reach_the_client_and_are_raised_on_exit() -> None:
    async def broken(ws: ServerConnection) -> None:
        raise ValueError("handler failed")

    with pytest.raises(ValueError, match="handler failed"):
        async with wsfake.patch_client({URL: broken}), ClientSession() as session, session.ws_connect(URL) as ws:
            msg = await ws.receive()
            assert (msg.type, msg.data) == (WSMsgType.CLOSE, 1011)


@pytest.mark.asyncio
async def test_unrouted_url_is_refused_like_a_closed_port() -> None:
    async with wsfake.patch_client({"ws://localhost:8000/*": echo}), ClientSession() as session:
        for url in ("ws://localhost:8002/ws", "wss://localhost:8002/ws"):
            with pytest.raises(aiohttp.ClientConnectorError) as info:
                await session.ws_connect(url)
            exc = info.value
            assert isinstance(exc.os_error, ConnectionRefusedError) and isinstance(exc.os_error, wsfake.NoRoute)
            assert exc.__cause__ is exc.os_error
            assert (exc.errno, exc.host, exc.port) == (errno.ECONNREFUSED, "localhost", 8002)
            assert exc.os_error.url == url and exc.os_error.routes == ["ws://localhost:8000/*"]
            assert str(exc).startswith("Cannot connect to host localhost:8002 ssl:default [wsfake: connection")


class CountingConnector(aiohttp.TCPConnector):
    """A user's connector subclass that extends connection creation."""

    created = 0

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        type(self).created += 1
        return await super()._create_connection(req, traces, timeout)


@pytest.mark.asyncio
async def test_custom_connectors_keep_working() -> None:
    async with wsfake.patch_client({"ws://svc.test/*": echo}):
        connectors = [
            aiohttp.TCPConnector(limit=1, ssl=False, force_close=True, ttl_dns_cache=1, family=socket.AF_INET),
            CountingConnector(),
        ]
        for connector in connectors:
            async with ClientSession(connector=connector) as session:
                for text in ("one", "two"):  # limit=1: the second waits for the first to be released
                    async with session.ws_connect("ws://svc.test/") as ws:
                        await ws.send_str(text)
                        assert await ws.receive_str() == text
            assert connector.closed
        assert CountingConnector.created == 2
        shared = aiohttp.TCPConnector()
        for _ in range(2):
            async with (
                ClientSession(connector=shared, connector_owner=False) as session,
                session.ws_connect("ws://svc.test/") as ws,
            ):
                await ws.send_str("shared")
                assert await ws.receive_str() == "shared"
        assert not shared.closed
        await shared.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("url", "proxy"), [("ws://svc.test/old", None), ("wss://svc.test/old", "http://proxy.invalid:3128")]
)
async def test_in_memory_connections_are_never_pooled(url: str, proxy: str | None) -> None:
    def redirect(connection: ServerConnection, request: Any) -> Any:
        if request.path != "/old":
            return None
        response = connection.respond(302, "")
        response.headers["Location"] = "/new"
        del response.headers["Connection"]  # keep-alive: aiohttp would pool the connection after following it
        return response

    async with wsfake.patch_client() as net, ClientSession() as session:
        route = net.route(url.replace("/old", "/*"), wsfake.Handler(tell_path, process_request=redirect))
        async with session.ws_connect(url, proxy=proxy) as ws:
            assert await ws.receive_str() == "/new"
            assert not session.connector._conns
    assert [call.status for call in route.calls] == [302, 101]


def notes(call: wsfake.Call) -> list[object]:
    return [entry.data for entry in call.transcript if entry.kind == "note"]


@pytest.mark.asyncio
@pytest.mark.parametrize("url", ["wss://api.example.com/feed?x=1", "https://api.example.com/feed?x=1"])
async def test_wss_through_an_http_proxy_is_tunnelled_in_memory(url: str) -> None:
    proxy_headers = {"Proxy-Authorization": "Basic dTpw"}
    async with wsfake.patch_client() as net, ClientSession() as session:
        route = net.route("wss://api.example.com/*", tell_path)
        async with session.ws_connect(url, proxy="http://proxy.invalid:3128", proxy_headers=proxy_headers) as ws:
            assert await ws.receive_str() == "/feed?x=1"
            await ws.send_str("through the tunnel")
            assert await ws.receive_str() == "through the tunnel"
        assert not session.connector._conns
    call = route.calls.last
    assert notes(call) == ["through an HTTP proxy: api.example.com:443 tunnelled"]
    assert call.header("proxy-authorization") is None  # it went to the proxy, with CONNECT


@pytest.mark.asyncio
async def test_ws_through_an_http_proxy_is_served_without_it() -> None:
    # aiohttp sends a ws:// upgrade to the proxy in absolute form, without a tunnel: served directly.
    async with wsfake.patch_client() as net, ClientSession() as session:
        route = net.route("ws://svc.test/*", tell_path)
        async with session.ws_connect(
            "ws://svc.test/p?q=1", proxy="http://proxy.invalid:3128", proxy_headers={"Proxy-Authorization": "x"}
        ) as ws:
            assert await ws.receive_str() == "/p?q=1"  # the origin form, as sent without a proxy
    assert notes(route.calls.last) == [] and route.calls.last.header("proxy-authorization") is None


@pytest.mark.asyncio
async def test_fifty_concurrent_connections_through_one_session() -> None:
    async with wsfake.patch_client({URL: echo}) as net, ClientSession() as session:

        async def one(i: int) -> str:
            async with session.ws_connect(URL) as ws:
                await ws.send_str(f"c{i}")
                return await ws.receive_str()

        assert await asyncio.gather(*[one(i) for i in range(50)]) == [f"c{i}" for i in range(50)]
    assert net.routes[0].call_count == 50


@pytest.mark.asyncio
async def test_hooks_are_undone_on_exit_when_nested_and_when_the_body_raises() -> None:
    original = hooks()
    async with wsfake.patch_client({"ws://outer/*": echo}):
        patched = hooks()
        assert all(p is not o for p, o in zip(patched, original, strict=True))
        async with wsfake.patch_client({"ws://inner/*": echo}), ClientSession() as session:
            assert hooks() == patched
            for url in ("ws://inner/", "ws://outer/"):
                async with session.ws_connect(url) as ws:
                    await ws.send_str(url)
                    assert await ws.receive_str() == url
        assert hooks() == patched
    assert hooks() == original
    with pytest.raises(KeyError):
        async with wsfake.patch_client(echo):
            raise KeyError("body failed")
    assert hooks() == original


# Against real servers on 127.0.0.1


@pytest_asyncio.fixture
async def real_server() -> AsyncIterator[tuple[int, list[str]]]:
    """An aiohttp web server on 127.0.0.1: plain HTTP at /health, a WebSocket echo elsewhere; logs each request."""
    seen: list[str] = []

    async def health(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="real ok")

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        seen.append(request.path)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(f"real:{msg.data}")
        return ws

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/{tail:.*}", ws_echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, seen
    finally:
        await runner.cleanup()


async def fake_echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(f"fake:{message}")


@pytest.mark.network
@pytest.mark.asyncio
async def test_plain_http_to_a_routed_host_is_untouched(real_server: tuple[int, list[str]]) -> None:
    port, seen = real_server
    base = f"127.0.0.1:{port}"
    async with wsfake.patch_client({f"ws://{base}/*": fake_echo}), ClientSession() as session:
        async with session.get(f"http://{base}/health") as response:
            assert await response.text() == "real ok"
        # The pool now holds that real keep-alive connection: the routed upgrade must not reuse it.
        for url in (f"ws://{base}/x", f"http://{base}/y"):
            async with session.ws_connect(url) as ws:
                await ws.send_str("a")
                assert await ws.receive_str() == "fake:a"
        async with session.post(f"http://{base}/health", data=b"body") as response:
            assert response.status == 405
        async with session.get(f"http://{base}/health") as response:
            assert await response.text() == "real ok"
    assert seen == ["/health", "/health"]


@pytest.mark.network
@pytest.mark.asyncio
async def test_pass_through_reaches_the_real_server_and_the_patch_is_undone(real_server: tuple[int, list[str]]) -> None:
    port, seen = real_server
    base = f"127.0.0.1:{port}"
    async with wsfake.patch_client() as net, ClientSession() as session:
        net.route(f"ws://{base}/fake/*", fake_echo)
        net.pass_through(lambda url: url.path == "/real")  # a predicate: the network guard cannot tell its host
        for url, expected in [(f"ws://{base}/real", "real:a"), (f"ws://{base}/fake/x", "fake:a")]:
            async with session.ws_connect(url) as ws:
                await ws.send_str("a")
                assert await ws.receive_str() == expected
    async with ClientSession() as session, session.ws_connect(f"ws://{base}/after") as ws:
        await ws.send_str("b")
        assert await ws.receive_str() == "real:b"
    assert seen == ["/real", "/after"]


SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import wsfake

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        # The client closes 1009 below: the echo's own ConnectionClosedError is expected.
        async with wsfake.patch_client({"ws://svc.test/*": echo}, raise_server_errors=False):
            assert "aiohttp" not in sys.modules
            import aiohttp  # imported while patched: hooked at import
            from aiohttp import connector, http_websocket

            hooked = connector.BaseConnector.connect
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect("ws://svc.test/", max_msg_size=10) as ws:
                    await ws.send_str("small")
                    assert await ws.receive_str() == "small"
                    await ws.send_str("x" * 11)
                    msg = await ws.receive()
                    assert msg.type is aiohttp.WSMsgType.ERROR and msg.data.code == 1009
        reader = http_websocket.WebSocketReader.__module__
        print(json.dumps({"reader": reader, "undone": connector.BaseConnector.connect is not hooked}))

    asyncio.run(main())
    """
)


@pytest.fixture(scope="module")
def imported_while_patched() -> dict[str, Any]:
    """What a fresh interpreter saw when it imported aiohttp inside patch_client, with the pure-Python reader."""
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", SCRIPT], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen


def test_imported_while_patched_with_the_pure_python_frame_reader(imported_while_patched: dict[str, Any]) -> None:
    # aiohttp.http_websocket: the reader before 3.11, pure Python there.
    assert imported_while_patched["reader"] in ("aiohttp._websocket.reader_py", "aiohttp.http_websocket")


def test_hooks_installed_by_an_import_inside_the_patch_are_undone(imported_while_patched: dict[str, Any]) -> None:
    assert imported_while_patched["undone"]
