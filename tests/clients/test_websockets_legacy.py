"""The legacy ``websockets`` asyncio client in memory: every import style and form, unchanged user code."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
import websockets.client
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK

import wsfake
from wsfake import ServerConnection

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # "websockets.legacy is deprecated"
    import websockets.legacy.client as legacy_client
    from websockets.legacy.client import Connect, WebSocketClientProtocol, connect
    from websockets.legacy.exceptions import InvalidStatusCode

pytestmark = pytest.mark.asyncio

URL = "ws://localhost:8000/ws"
ORIGINAL = vars(Connect)["__await_impl__"]
LOOP_ORIGINAL = vars(asyncio.BaseEventLoop)["create_connection"]


@pytest.fixture(autouse=True)
def undone() -> Iterator[None]:
    """Every test leaves the hooks as they were."""
    yield
    assert vars(Connect)["__await_impl__"] is ORIGINAL
    assert vars(asyncio.BaseEventLoop)["create_connection"] is LOOP_ORIGINAL


def no_task_left() -> None:
    """Only the test's own task runs: no client or server task was left behind."""
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def tell_path(ws: ServerConnection) -> None:
    await ws.send(ws.request.path)
    await echo(ws)


def deprecated_alias() -> Any:
    """``websockets.client.connect``: the legacy client under its historical name (deprecated in 14.0)."""
    with pytest.deprecated_call(match="websockets.client.connect is deprecated"):
        return websockets.client.connect


IMPORTS = {
    "websockets.client.connect": deprecated_alias,
    "websockets.legacy.client.connect": lambda: legacy_client.connect,
    "from-import connect": lambda: connect,
    "Connect": lambda: Connect,
}


@pytest.mark.parametrize("imported", list(IMPORTS))
async def test_every_import_style_with_await_and_async_with(imported: str) -> None:
    connect_ = IMPORTS[imported]()
    assert connect_ is Connect
    async with wsfake.patch_client({"ws://localhost:8000/*": tell_path}) as net:
        ws = await connect_(f"{URL}?form=await")
        assert isinstance(ws, WebSocketClientProtocol)
        assert await ws.recv() == "/ws?form=await"
        await ws.send("awaited")
        assert await ws.recv() == "awaited"
        await ws.close()
        assert ws.close_code == 1000
        async with connect_(f"{URL}?form=context") as ws:
            assert await ws.recv() == "/ws?form=context"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
        assert ws.close_code == 1000
    assert [call.url for call in net.routes[0].calls] == [f"{URL}?form=await", f"{URL}?form=context"]
    no_task_left()


async def test_async_for_reconnects_with_the_backoff_class_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The legacy backoff is set by class attributes (seconds by default): made zero, as a test suite would.
    monkeypatch.setattr(Connect, "BACKOFF_INITIAL", 0.0)
    monkeypatch.setattr(Connect, "BACKOFF_MIN", 0.0)
    attempts: list[str] = []

    def flaky(connection: ServerConnection, request: Any) -> Any:
        attempts.append(request.path)
        return connection.respond(503, "warming up\n") if len(attempts) < 3 else None

    async with wsfake.patch_client() as net:
        net.route(URL, echo, process_request=flaky)
        async for ws in connect(URL):
            await ws.send("finally")
            assert await ws.recv() == "finally"
            await ws.close()
            break
    assert [call.status for call in net.routes[0].calls] == [503, 503, 101]
    no_task_left()


async def test_async_for_hands_out_a_new_connection_after_each_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Connect, "BACKOFF_INITIAL", 0.0)
    monkeypatch.setattr(Connect, "BACKOFF_MIN", 0.0)
    served = 0

    async def drops_twice(ws: ServerConnection) -> None:
        nonlocal served
        served += 1
        await ws.send(f"connection {served}")
        if served < 3:
            await ws.close(1011, "crash")
        else:
            await echo(ws)

    seen: list[str] = []
    codes: list[int] = []
    async with wsfake.patch_client({URL: drops_twice}):
        async for ws in connect(URL):
            seen.append(await ws.recv())
            if len(seen) < 3:
                with pytest.raises(ConnectionClosedError) as dropped:
                    await ws.recv()
                assert dropped.value.rcvd is not None
                codes.append(dropped.value.rcvd.code)
                continue
            await ws.close()
            break
    assert seen == ["connection 1", "connection 2", "connection 3"]
    assert codes == [1011, 1011]
    no_task_left()


async def test_a_create_protocol_subclass_is_the_connection() -> None:
    class Recording(WebSocketClientProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.peers: list[Any] = []

        def connection_made(self, transport: Any) -> None:
            self.peers.append(transport.get_extra_info("peername"))
            super().connection_made(transport)

    async with wsfake.patch_client({URL: echo}):
        async with connect(URL, create_protocol=Recording) as ws:
            assert type(ws) is Recording
            await ws.send("mine")
            assert await ws.recv() == "mine"
        assert ws.peers == [ws.remote_address]
        assert ws.remote_address[1] == 8000
    no_task_left()


async def test_a_client_created_before_the_patch_connects_inside_it() -> None:
    early = connect(URL)  # prepares loop.create_connection for the real network
    prepared = early._create_connection
    async with wsfake.patch_client({URL: echo}) as net, early as ws:
        await ws.send("late")
        assert await ws.recv() == "late"
    assert net.routes[0].call_count == 1
    assert early._create_connection is prepared
    no_task_left()


async def test_host_and_port_arguments_choose_the_address_and_the_uri_its_path() -> None:
    async with wsfake.patch_client() as net:
        route = net.route("ws://localhost:8000/*", tell_path)
        net.route("ws://app.example/*", echo)
        async with connect("ws://app.example/room?x=1", host="localhost", port=8000) as ws:
            assert await ws.recv() == "/room?x=1"
    assert route.calls.last.url == "ws://localhost:8000/room?x=1"
    assert route.calls.last.header("Host") == "app.example"
    no_task_left()


async def test_wss_is_served_without_tls_whatever_the_ssl_argument() -> None:
    async with wsfake.patch_client({"wss://secure.test/*": echo}):
        for option in ({}, {"ssl": ssl.create_default_context()}):
            async with connect("wss://secure.test/s", **option) as ws:
                assert ws.transport.get_extra_info("sslcontext") is None
                await ws.send("secret")
                assert await ws.recv() == "secret"
    no_task_left()


async def test_an_unrouted_url_is_refused_as_a_closed_port() -> None:
    async with wsfake.patch_client({URL: echo}):
        for url in ("ws://localhost:8000/elsewhere", "ws://other.test/"):
            with pytest.raises(ConnectionRefusedError) as info:
                await connect(url)
            assert isinstance(info.value, wsfake.NoRoute)
            assert info.value.errno == errno.ECONNREFUSED
    no_task_left()


@pytest.mark.network
async def test_refusal_looks_as_a_closed_port_on_127_0_0_1_does() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more
    with pytest.raises(OSError) as real:
        await connect(f"ws://127.0.0.1:{port}/")
    async with wsfake.patch_client({URL: echo}):
        with pytest.raises(OSError) as fake:
            await connect(f"ws://127.0.0.1:{port}/")
    assert isinstance(real.value, ConnectionRefusedError) and isinstance(fake.value, ConnectionRefusedError)
    assert fake.value.errno == real.value.errno == errno.ECONNREFUSED


async def test_handshake_rejections_and_server_errors_as_the_legacy_client_reports_them() -> None:
    def deny(connection: ServerConnection, request: Any) -> Any:
        response = connection.respond(403, "keep out\n")
        response.headers["X-Why"] = "closed room"
        return response

    async def fails(ws: ServerConnection) -> None:
        await ws.send("before")
        raise ValueError("handler bug")

    with pytest.raises(ValueError, match="handler bug"):
        async with wsfake.patch_client() as net:
            net.route("ws://localhost:8000/deny", echo, process_request=deny)
            net.route("ws://localhost:8000/fail", fails)
            with pytest.raises(InvalidStatusCode) as rejected:
                await connect("ws://localhost:8000/deny")
            assert rejected.value.status_code == 403
            assert rejected.value.headers["X-Why"] == "closed room"
            async with connect("ws://localhost:8000/fail") as ws:
                assert await ws.recv() == "before"
                with pytest.raises(ConnectionClosedError) as closed:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    no_task_left()


async def test_server_close_codes_and_keepalive_run_in_the_library() -> None:
    async def goes_away(ws: ServerConnection) -> None:
        await ws.send("bye")
        await ws.close(1001, "moving")

    async with wsfake.patch_client({"ws://localhost:8000/away": goes_away, URL: echo}):
        async with connect("ws://localhost:8000/away") as ws:
            assert [message async for message in ws] == ["bye"]
        assert (ws.close_code, ws.close_reason) == (1001, "moving")
        async with connect(URL, ping_interval=0.01, ping_timeout=5) as ws:
            await asyncio.wait_for(await ws.ping(b"manual"), 5)
            assert ws.latency > 0
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
    no_task_left()


async def test_hooks_are_shared_when_nested_and_undone_on_error() -> None:
    with pytest.raises(KeyError):
        async with wsfake.patch_client({URL: echo}):
            async with wsfake.patch_client({"ws://inner.test/*": echo}):
                assert vars(Connect)["__await_impl__"] is not ORIGINAL
                async with connect("ws://inner.test/") as ws, connect(URL) as outer:
                    await ws.send("inner")
                    await outer.send("outer")
                    assert (await ws.recv(), await outer.recv()) == ("inner", "outer")
            assert vars(Connect)["__await_impl__"] is not ORIGINAL
            raise KeyError("test body failed")
    assert vars(Connect)["__await_impl__"] is ORIGINAL
    no_task_left()


@pytest.mark.network
async def test_pass_through_reaches_a_real_server_on_127_0_0_1() -> None:
    async def real_echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(f"real:{message}")

    async with websockets.serve(real_echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        real_url = f"ws://127.0.0.1:{port}/"
        async with wsfake.patch_client() as net:
            net.route(URL, echo)
            net.pass_through(f"{real_url}*")
            for url, expected in [(real_url, "real:a"), (URL, "a")]:
                async with connect(url) as ws:
                    await ws.send("a")
                    assert await ws.recv() == expected
        assert net.routes[0].call_count == 1
