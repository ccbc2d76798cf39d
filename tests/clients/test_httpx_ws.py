"""httpx-ws in memory: aconnect_ws (asyncio, trio) and connect_ws (threads), with and without ``client=``."""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import httpx_ws
import httpx_ws._api
import pytest
import websockets.sync.server
from httpx_ws import (
    WebSocketDisconnect,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
    connect_ws,
)
from httpx_ws.transport import ASGIWebSocketTransport

import wsfake
from wsfake import ServerConnection

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

URL = "http://localhost:8000/ws"
#: The client classes arrived in httpx-ws 0.8.
HAS_CLIENT_CLASSES = hasattr(httpx_ws, "AsyncWebSocketClient")


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def tagged_echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(f"fake:{message}")


def hooks() -> tuple[Any, Any]:
    return vars(httpcore.AsyncConnectionPool)["handle_async_request"], vars(httpcore.ConnectionPool)["handle_request"]


ORIGINAL = hooks()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Threads started by a test (httpx-ws's readers, wsfake's background loop) must end with it.

    Not the anyio test runner's: it runs trio in guest mode, whose I/O waits use trio's thread cache.
    """
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        if thread.name.startswith("Trio thread"):
            continue
        thread.join(5)
        assert not thread.is_alive(), f"leaked thread {thread.name}"


def refusal_cause(exc: BaseException) -> BaseException | None:
    """The NoRoute behind an httpx error (httpx.ConnectError <- httpcore.ConnectError <- NoRoute)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


# asyncio and trio: aconnect_ws


@pytest.mark.anyio
@pytest.mark.parametrize(
    "connect", [httpx_ws.aconnect_ws, aconnect_ws, httpx_ws._api.aconnect_ws], ids=["module", "from-import", "_api"]
)
async def test_every_import_style_with_and_without_a_client(connect: Any) -> None:
    async with wsfake.patch_client(echo) as net:
        async with connect(URL) as ws:
            await ws.send_text("own client")
            assert await ws.receive_text() == "own client"
        async with httpx.AsyncClient() as client:
            async with connect("ws://localhost:8000/ws", client) as ws:
                await ws.send_bytes(b"given client")
                assert await ws.receive_bytes() == b"given client"
            if HAS_CLIENT_CLASSES:
                async with httpx_ws.AsyncWebSocketClient(client).connect(URL) as ws:
                    await ws.send_json({"via": "AsyncWebSocketClient"})
                    assert await ws.receive_json() == {"via": "AsyncWebSocketClient"}
    assert net.routes[0].call_count == 2 + HAS_CLIENT_CLASSES
    assert hooks() == ORIGINAL


@pytest.mark.anyio
async def test_handshake_details_reach_both_sides() -> None:
    async def pick(ws: ServerConnection) -> None:
        await ws.send(f"{ws.request.path} {ws.subprotocol}")
        await ws.wait_closed()

    async with wsfake.patch_client() as net:
        net.route("ws://localhost:8000/*", pick, subprotocols=["v2", "v1"])
        headers = {"Authorization": "Bearer t"}
        async with aconnect_ws(URL + "/a%20b?x=1", headers=headers, subprotocols=["v1", "v2"]) as ws:
            assert ws.subprotocol == "v2"
            assert ws.response is not None and ws.response.status_code == 101
            assert await ws.receive_text() == "/ws/a%20b?x=1 v2"
    call = net.routes[0].calls.last
    assert call.header("authorization") == "Bearer t"
    assert call.header("host") == "localhost:8000"


@pytest.mark.anyio
async def test_wss_is_served_without_tls() -> None:
    async with wsfake.patch_client({"wss://secure.example/*": echo}):
        for url in ["https://secure.example/ws", "wss://secure.example/ws"]:
            async with aconnect_ws(url) as ws:
                await ws.send_text(url)
                assert await ws.receive_text() == url


@pytest.mark.anyio
async def test_a_configured_proxy_is_not_used_for_a_routed_url() -> None:
    transport = httpx.AsyncHTTPTransport(proxy="http://proxy.invalid:3128")
    async with wsfake.patch_client(echo), httpx.AsyncClient(transport=transport) as client:
        for url in [URL, "ws://localhost:8000/ws", "https://localhost:8000/ws"]:
            async with aconnect_ws(url, client) as ws:
                await ws.send_text(url)
                assert await ws.receive_text() == url


@pytest.mark.anyio
async def test_unrouted_url_is_refused_like_a_closed_port() -> None:
    async with wsfake.patch_client({"ws://localhost:8000/*": echo}):
        with pytest.raises(httpx.ConnectError, match="no route matches") as info:
            async with aconnect_ws("http://elsewhere:9/ws"):
                pass
        assert isinstance(refusal_cause(info.value), wsfake.NoRoute)
        # httpcore's connect retries apply as they do to a closed port.
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(retries=1)) as client:
            with pytest.raises(httpx.ConnectError):
                async with aconnect_ws("http://elsewhere:9/ws", client):
                    pass


@pytest.mark.anyio
async def test_server_side_errors_as_httpx_ws_reports_them() -> None:
    async def close_1011(ws: ServerConnection) -> None:
        await ws.close(1011, "oops")

    async def abort(ws: ServerConnection) -> None:
        await ws.send("before abort")
        ws.transport.abort()

    async def deny(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(404, "no such room\n")

    async with wsfake.patch_client() as net:
        net.route("ws://x/close", close_1011)
        net.route("ws://x/abort", abort)
        net.route("ws://x/deny", echo, process_request=deny)
        async with aconnect_ws("http://x/close") as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (1011, "oops")
        async with aconnect_ws("http://x/abort") as ws:
            assert await ws.receive_text() == "before abort"
            with pytest.raises(WebSocketNetworkError):
                await ws.receive_text()
        with pytest.raises(WebSocketUpgradeError) as denied:
            async with aconnect_ws("http://x/deny"):
                pass
        assert denied.value.response.status_code == 404


@pytest.mark.anyio
async def test_handler_errors_are_reraised_on_exit() -> None:
    async def broken(ws: ServerConnection) -> None:
        raise ValueError(ws.request.path)

    with pytest.raises(ExceptionGroup) as info:
        async with wsfake.patch_client(broken):
            for path in ["/1", "/2"]:
                async with aconnect_ws(f"http://x{path}") as ws:
                    with pytest.raises(WebSocketDisconnect) as closed:
                        await ws.receive_text()
                assert closed.value.code == 1011
    assert sorted(str(e) for e in info.value.exceptions) == ["/1", "/2"]


@pytest.mark.anyio
async def test_httpx_timeouts_apply() -> None:
    async def never_accept(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await receive()

    async with wsfake.patch_client(wsfake.ASGI(never_accept, lifespan=False)):
        with pytest.raises(httpx.ReadTimeout):
            async with aconnect_ws(URL, timeout=0.05):
                pass


@pytest.mark.anyio
async def test_asgi_websocket_transport_is_left_alone() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "from the transport's app"})
        await receive()  # the disconnect

    async with (
        wsfake.patch_client({"ws://testserver/*": tagged_echo}) as net,
        httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://testserver") as client,
        aconnect_ws("/ws", client) as ws,
    ):
        assert await ws.receive_text() == "from the transport's app"
    assert net.routes[0].call_count == 0


@pytest.mark.anyio
async def test_patch_is_undone_on_error_and_when_nested() -> None:
    with pytest.raises(KeyError):
        async with wsfake.patch_client(echo):
            assert hooks() != ORIGINAL
            raise KeyError("body failed")
    assert hooks() == ORIGINAL
    async with wsfake.patch_client({"ws://outer/*": echo}):
        patched = hooks()
        async with wsfake.patch_client({"ws://inner/*": echo}):
            assert hooks() == patched
            for url in ["http://inner/", "http://outer/"]:
                async with aconnect_ws(url) as ws:
                    await ws.send_text(url)
                    assert await ws.receive_text() == url
        assert hooks() == patched
    assert hooks() == ORIGINAL


def run_fresh(script: str) -> list[str]:
    """Run ``script`` in a fresh interpreter (nothing of httpx-ws imported yet); its printed lines."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


LAZY_IMPORT = """
    import httpcore, httpx, wsfake

    def hooked():
        return vars(httpcore.AsyncConnectionPool)["handle_async_request"] is not ORIGINAL

    ORIGINAL = vars(httpcore.AsyncConnectionPool)["handle_async_request"]

    async def handler(ws):
        pass

    with wsfake.patch_client({"ws://x/*": handler}):
        print("httpx-alone-hooked", hooked())
        import httpx_ws
        print("hooked-after-import", hooked())
    print("hooked-after-exit", hooked())
"""


def test_hooks_wait_for_httpx_ws_so_plain_httpx_is_never_touched() -> None:
    assert run_fresh(LAZY_IMPORT) == [
        *("httpx-alone-hooked", "False"),
        *("hooked-after-import", "True"),
        *("hooked-after-exit", "False"),  # an import inside the patch is undone on exit too
    ]


# Threads: connect_ws


def sync_round_trip(url: str = URL, client: httpx.Client | None = None) -> str:
    with connect_ws(url, client) as ws:
        ws.send_text("sync")
        return ws.receive_text()


def test_connect_ws_from_plain_sync_code() -> None:
    with wsfake.patch_client(echo) as net:
        assert sync_round_trip() == "sync"
        with httpx.Client() as client:
            assert sync_round_trip("ws://localhost:8000/ws", client) == "sync"
            session = httpx_ws.WebSocketClient(client).connect(URL) if HAS_CLIENT_CLASSES else connect_ws(URL, client)
            with session as ws:
                ws.send_bytes(b"\x00\xff")
                assert ws.receive_bytes() == b"\x00\xff"
        with httpx_ws._api.connect_ws("https://localhost:8000/ws") as ws:  # wss, without TLS
            ws.send_text("tls skipped")
            assert ws.receive_text() == "tls skipped"
    assert net.routes[0].call_count == 4
    assert hooks() == ORIGINAL


def test_connect_ws_from_another_thread() -> None:
    results: list[str] = []
    with wsfake.patch_client(echo):
        thread = threading.Thread(target=lambda: results.append(sync_round_trip()))
        thread.start()
        thread.join(10)
    assert results == ["sync"]


@pytest.mark.asyncio
async def test_connect_ws_called_inside_an_async_test() -> None:
    async with wsfake.patch_client(echo):
        assert sync_round_trip() == "sync"
    with wsfake.patch_client(echo):
        assert sync_round_trip() == "sync"


def test_connect_ws_refusal_errors_and_timeouts() -> None:
    async def close_1001(ws: ServerConnection) -> None:
        await ws.close(1001, "bye")

    async def never_accept(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await receive()

    with wsfake.patch_client() as net:
        net.route("ws://x/close", close_1001)
        net.route("ws://x/slow", wsfake.ASGI(never_accept, lifespan=False))
        with pytest.raises(httpx.ConnectError) as refused:
            sync_round_trip("http://elsewhere/")
        assert isinstance(refusal_cause(refused.value), wsfake.NoRoute)
        with connect_ws("http://x/close") as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (1001, "bye")
        with pytest.raises(httpx.ReadTimeout):
            sync_round_trip("http://x/slow", httpx.Client(timeout=0.05))


# The real network: pass-through and plain HTTP


@contextlib.contextmanager
def real_websocket_server() -> Iterator[int]:
    def handler(ws: Any) -> None:
        for message in ws:
            ws.send(f"real:{message}")

    with websockets.sync.server.serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield server.socket.getsockname()[1]
        finally:
            server.shutdown()
            thread.join(5)


@contextlib.contextmanager
def real_http_server() -> Iterator[tuple[int, list[tuple[str, int]]]]:
    """A keep-alive HTTP/1.1 server on 127.0.0.1; yields its port and the (path, client port) of each request."""
    seen: list[tuple[str, int]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.append((self.path, self.client_address[1]))
            body = b"real http"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = False  # server_close() joins the connection threads

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.network
@pytest.mark.anyio
async def test_pass_through_reaches_a_real_server() -> None:
    with real_websocket_server() as port:
        async with wsfake.patch_client() as net:
            net.route("ws://localhost:8000/*", tagged_echo)
            net.pass_through(f"ws://127.0.0.1:{port}/*")
            async with httpx.AsyncClient() as client:
                for url, expected in [(f"http://127.0.0.1:{port}/", "real:a"), (URL, "fake:a")]:
                    async with aconnect_ws(url, client) as ws:
                        await ws.send_text("a")
                        assert await ws.receive_text() == expected
        with wsfake.patch_client() as net:  # connect_ws, blocking inside this async test
            net.pass_through(f"ws://127.0.0.1:{port}/*")
            assert sync_round_trip(f"ws://127.0.0.1:{port}/") == "real:sync"


@pytest.mark.network
@pytest.mark.anyio
async def test_plain_http_through_the_same_async_client_is_untouched() -> None:
    with real_http_server() as (port, seen):
        async with (
            wsfake.patch_client({f"ws://127.0.0.1:{port}/ws": tagged_echo}) as net,
            httpx.AsyncClient() as client,
        ):
            assert (await client.get(f"http://127.0.0.1:{port}/before")).text == "real http"
            # The routed upgrade does not take the idle real connection to the same origin...
            async with aconnect_ws(f"http://127.0.0.1:{port}/ws", client) as ws:
                await ws.send_text("hi")
                assert await ws.receive_text() == "fake:hi"
            # ...and plain HTTP keeps using it.
            assert (await client.get(f"http://127.0.0.1:{port}/after")).text == "real http"
    assert [path for path, _ in seen] == ["/before", "/after"]
    assert seen[0][1] == seen[1][1], "plain HTTP did not keep its keep-alive connection"
    assert net.routes[0].call_count == 1


@pytest.mark.network
def test_plain_http_through_the_same_sync_client_is_untouched() -> None:
    with (
        real_http_server() as (port, seen),
        wsfake.patch_client({f"ws://127.0.0.1:{port}/ws": tagged_echo}),
        httpx.Client() as client,
    ):
        assert client.get(f"http://127.0.0.1:{port}/before").text == "real http"
        with connect_ws(f"http://127.0.0.1:{port}/ws", client) as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "fake:hi"
        assert client.get(f"http://127.0.0.1:{port}/after").text == "real http"
    assert [path for path, _ in seen] == ["/before", "/after"]
    assert seen[0][1] == seen[1][1]
