"""websocket-client in memory: create_connection, WebSocket().connect, WebSocketApp.run_forever.

The library's own handshake, framing, timeouts and errors run over an
in-memory socket; these tests check what its users observe, in plain sync
tests, from threads and from inside async tests (whose loop the sync call
blocks), and that no OS socket is opened (the suite's socket guard fails any
AF_INET/AF_INET6 socket in tests not marked ``network``).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import selectors
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import websocket
import websocket._core
import websocket._http
from websocket import ABNF, WebSocket, WebSocketApp, create_connection

import wsfake
from wsfake import ServerConnection

URL = "ws://example.com/chat"
TIMEOUT = 5
WEBSOCKET_CLIENT = tuple(int(part) for part in websocket.__version__.split(".")[:3])


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def close_4001(ws: ServerConnection) -> None:
    await ws.close(4001, "bye")


async def fails(ws: ServerConnection) -> None:
    await ws.send("about to fail")
    raise ValueError("handler failed")


async def silent(ws: ServerConnection) -> None:
    await ws.wait_closed()


async def pings(ws: ServerConnection) -> None:
    pong = await ws.ping(b"srv")
    await pong
    await ws.send("ponged")
    await ws.wait_closed()


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (event := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    await send({"type": "websocket.accept", "subprotocol": "v2", "headers": [(b"x-app", b"yes")]})
    while (event := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": f"{scope['path']}:{event.get('text')}"})


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        thread.join(TIMEOUT)  # before 1.6, WebSocketApp lets its ping thread end on its own
    left = [thread for thread in threading.enumerate() if thread not in before and thread.is_alive()]
    assert not left, f"threads left behind: {left}"


def hooks_removed() -> bool:
    dispatchers = [sys.modules.get(name) for name in ("websocket._dispatcher", "websocket._app")]
    return (
        websocket._core.connect is websocket._http.connect
        and websocket._http.socket is socket
        and all(vars(module).get("selectors", selectors) is selectors for module in dispatchers if module)
        and ssl.SSLContext.wrap_socket.__qualname__ == "SSLContext.wrap_socket"
    )


# Forms and import styles


def test_create_connection_echoes_text_and_binary() -> None:
    with wsfake.patch_client({URL: echo}) as net:
        ws = create_connection(URL, timeout=TIMEOUT)
        assert ws.getstatus() == 101
        assert ws.getheaders()["upgrade"] == "websocket"
        assert ws.sock is not None and ws.sock.fileno() == -1  # no file descriptor
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send_binary(b"\x00\xff")
        assert ws.recv() == b"\x00\xff"
        ws.close()
    assert net.routes[0].calls[0].received == ["hello", b"\x00\xff"]


def test_every_import_style_is_served() -> None:
    import websocket as wc
    from websocket._core import create_connection as core_create_connection

    with wsfake.patch_client(echo) as net:
        for connect in (create_connection, wc.create_connection, core_create_connection, websocket.create_connection):
            ws = connect(URL, timeout=TIMEOUT)
            ws.send("x")
            assert ws.recv() == "x"
            ws.close()
        ws = WebSocket()
        ws.connect(URL, timeout=TIMEOUT)
        ws.send("y")
        assert ws.recv() == "y"
        ws.close()
        ws = wc._core.WebSocket()
        ws.connect(URL)
        ws.close()
    assert net.routes[0].call_count == 6


def test_import_inside_the_context_is_served() -> None:
    code = (
        "import wsfake\n"
        "async def echo(ws):\n"
        "    async for m in ws:\n"
        "        await ws.send(m)\n"
        "with wsfake.patch_client(echo):\n"
        "    import websocket\n"
        "    ws = websocket.create_connection('ws://example.com/', timeout=5)\n"
        "    ws.send('late import')\n"
        "    print(ws.recv())\n"
        "    ws.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "late import", done.stderr


def test_import_inside_the_context_is_undone_on_exit() -> None:
    code = (
        "import socket, wsfake\n"
        "async def echo(ws):\n"
        "    pass\n"
        "with wsfake.patch_client(echo):\n"
        "    import websocket._http\n"
        "print(websocket._http.socket is socket)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr


def test_asgi_app_subprotocol_and_headers() -> None:
    with wsfake.patch_client({"ws://localhost:8000/*": asgi_echo}):
        ws = create_connection("ws://localhost:8000/room?x=1", subprotocols=["v1", "v2"], timeout=TIMEOUT)
        assert ws.getsubprotocol() == "v2"
        assert ws.getheaders()["x-app"] == "yes"
        assert ws.getheaders()["server"] == "uvicorn"
        ws.send("hi")
        assert ws.recv() == "/room:hi"
        ws.close()


def test_web_socket_app_callbacks() -> None:
    events: list[Any] = []

    def on_open(app: WebSocketApp) -> None:
        events.append("open")
        app.send("one")

    def on_message(app: WebSocketApp, message: str) -> None:
        events.append(("message", message))
        app.close(status=1000, reason=b"done")  # bytes: a str reason needs websocket-client >= 1.9.1

    app = WebSocketApp(
        URL,
        on_open=on_open,
        on_message=on_message,
        on_error=lambda app, exc: events.append(("error", exc)),
        on_close=lambda app, code, reason: events.append(("close", code, reason)),
    )
    with wsfake.patch_client({URL: echo}) as net:
        assert app.run_forever() is False
    # From websocket-client 1.9.1 on, on_close gets the server's answer to app.close(); before, None, None
    # (real servers too: the library reads that close frame inside WebSocket.close() and drops it).
    closed = ("close", 1000, "done") if WEBSOCKET_CLIENT >= (1, 9, 1) else ("close", None, None)
    assert events == ["open", ("message", "one"), closed]
    assert net.routes[0].calls[0].close_received == (1000, "done")


def test_web_socket_app_server_close_reaches_on_close_with_code_and_reason() -> None:
    events: list[Any] = []
    app = WebSocketApp(
        URL,
        on_error=lambda app, exc: events.append(("error", type(exc).__name__, str(exc))),
        on_close=lambda app, code, reason: events.append(("close", code, reason)),
    )
    with wsfake.patch_client({URL: close_4001}):
        app.run_forever()
    if websocket.__version__ == "1.9.0":  # its on_error gets the close frame, its on_close nothing (real servers too)
        assert events == [("error", "ABNF", str(events[0][2])), ("close", None, None)]
        return
    assert events[-1] == ("close", 4001, "bye")
    if events[:-1]:  # from websocket-client 1.9.1 on, on_error sees the close first
        assert events[:-1] == [("error", "WebSocketConnectionClosedException", "Connection closed (code 4001): bye")]


def test_web_socket_app_ping_pong_and_ping_interval() -> None:
    events: list[Any] = []
    ponged = threading.Event()

    def on_message(app: WebSocketApp, message: str) -> None:
        events.append(message)

    def on_pong(app: WebSocketApp, data: bytes) -> None:
        # The library's own pings (every 20 ms) come back; close once one did and the server's ping came.
        if not ponged.is_set() and "ponged" in events:
            ponged.set()
            events.append(("pong", data))
            app.close()

    app = WebSocketApp(
        URL,
        on_message=on_message,
        on_ping=lambda app, data: events.append(("ping", data)),
        on_pong=on_pong,
    )
    with wsfake.patch_client({URL: pings}):
        app.run_forever(ping_interval=0.02, ping_payload="client")
    assert events[:2] == [("ping", b"srv"), "ponged"]
    assert events[-1] == ("pong", b"client")


def test_wss_is_served_without_tls_after_the_library_built_its_context() -> None:
    events: list[Any] = []
    with wsfake.patch_client({"wss://secure.example/*": echo}):
        ws = create_connection("wss://secure.example/s", timeout=TIMEOUT)
        assert not ws.is_ssl()  # nothing encrypted in memory
        ws.send("tls?")
        assert ws.recv() == "tls?"
        ws.close()
        # The library's own TLS set-up runs: a missing CA file fails as on the network (wrapped from 1.9 on).
        with pytest.raises((websocket.WebSocketException, FileNotFoundError)):
            create_connection("wss://secure.example/s", sslopt={"ca_certs": "/nonexistent/ca.pem"})
        # WebSocketApp waits on wss:// sockets with its SSL dispatcher.
        app = WebSocketApp(
            "wss://secure.example/app",
            on_open=lambda app: app.send("over wss"),
            on_message=lambda app, message: (events.append(message), app.close()),
        )
        app.run_forever()
    assert events == ["over wss"]


# Threads and async tests


def test_from_threads() -> None:
    replies: dict[int, Any] = {}

    def client(i: int) -> None:
        ws = create_connection(URL, timeout=TIMEOUT)
        ws.send(f"t{i}")
        replies[i] = ws.recv()
        ws.close()

    with wsfake.patch_client({URL: echo}) as net:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
    assert replies == {i: f"t{i}" for i in range(8)}
    assert net.routes[0].call_count == 8


@pytest.mark.asyncio
async def test_called_inside_an_async_test() -> None:
    async with wsfake.patch_client({URL: echo, "ws://localhost:8000/*": asgi_echo}):
        # The sync client blocks this loop; the servers run on wsfake's background loop.
        ws = create_connection(URL, timeout=TIMEOUT)
        ws.send("blocking")
        assert ws.recv() == "blocking"
        ws.close()
        events: list[Any] = []
        app = WebSocketApp(
            "ws://localhost:8000/a",
            on_open=lambda app: app.send("x"),
            on_message=lambda app, message: (events.append(message), app.close()),
        )
        app.run_forever()
        assert events == ["/a:x"]
        await asyncio.sleep(0)  # the test's own loop still runs


def test_exit_wakes_a_thread_blocked_in_recv_with_the_library_s_closed_error() -> None:
    outcome: list[Any] = []
    reading = threading.Event()

    def reader(ws: WebSocket) -> None:
        reading.set()
        outcome.append(ws.recv_data_frame(True)[1].data)
        try:
            ws.recv()
        except Exception as exc:
            outcome.append(exc)

    with wsfake.patch_client({URL: silent}):
        ws = create_connection(URL)
        thread = threading.Thread(target=reader, args=(ws,))
        thread.start()
        reading.wait(TIMEOUT)
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert outcome[0] == b"\x03\xe9"  # websockets.serve going away: 1001
    assert isinstance(outcome[1], websocket.WebSocketConnectionClosedException)


# Closing, errors, timeouts


def test_server_close_then_recv_raises_the_library_s_closed_error() -> None:
    with wsfake.patch_client({URL: close_4001}):
        ws = create_connection(URL, timeout=TIMEOUT)
        assert ws.recv() == ""  # the close frame, answered by the library
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            ws.recv()


@pytest.mark.skipif(WEBSOCKET_CLIENT < (1, 9, 1), reason="WebSocket.close_frame: websocket-client >= 1.9.1")
def test_client_close_keeps_the_server_s_close_frame() -> None:
    with wsfake.patch_client({URL: echo}):
        ws = create_connection(URL, timeout=TIMEOUT)
        ws.close(reason="leaving")
        assert ws.close_frame is not None
        assert ws.close_frame.data == b"\x03\xe8leaving"


def test_server_close_frame_code_and_reason() -> None:
    with wsfake.patch_client({URL: close_4001}):
        ws = create_connection(URL, timeout=TIMEOUT)
        opcode, frame = ws.recv_data_frame(True)
        assert opcode == ABNF.OPCODE_CLOSE
        assert frame.data == b"\x0f\xa1bye"
        assert not ws.connected


def test_handler_error_closes_1011_and_is_raised_on_exit() -> None:
    with pytest.raises(ValueError, match="handler failed"), wsfake.patch_client({URL: fails}):
        ws = create_connection(URL, timeout=TIMEOUT)
        assert ws.recv() == "about to fail"
        opcode, frame = ws.recv_data_frame(True)
        assert (opcode, frame.data[:2]) == (ABNF.OPCODE_CLOSE, b"\x03\xf3")


def test_denied_handshake_is_a_bad_status_exception() -> None:
    async def deny(connection: Any, request: Any) -> Any:
        response = connection.respond(404 if request.path == "/missing" else 403, "no such room\n")
        response.headers["X-Reason"] = "room-missing"
        return response

    with wsfake.patch_client({"ws://example.com/*": wsfake.Handler(echo, process_request=deny)}):
        with pytest.raises(websocket.WebSocketBadStatusException) as raised:
            create_connection("ws://example.com/missing", timeout=TIMEOUT)
        assert raised.value.status_code == 404
        assert raised.value.resp_body == b"no such room\n"
        assert raised.value.resp_headers is not None
        assert raised.value.resp_headers["x-reason"] == "room-missing"
        with pytest.raises(websocket.WebSocketBadStatusException) as raised:
            create_connection("ws://example.com/private", timeout=TIMEOUT)
        assert raised.value.status_code == 403


def test_redirects_are_followed_in_memory() -> None:
    async def redirect(connection: Any, request: Any) -> Any:
        response = connection.respond(302, "")
        response.headers["Location"] = "ws://other.example/new"
        return response

    with wsfake.patch_client(
        {"ws://example.com/*": wsfake.Handler(echo, process_request=redirect), "ws://other.example/*": echo}
    ) as net:
        ws = create_connection("ws://example.com/old", timeout=TIMEOUT)
        ws.send("moved")
        assert ws.recv() == "moved"
        ws.close()
    assert [route.call_count for route in net.routes] == [1, 1]


def test_recv_timeout_and_settimeout() -> None:
    with wsfake.patch_client({URL: silent}):
        ws = create_connection(URL, timeout=0.05)
        assert ws.gettimeout() == 0.05
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv()
        ws.settimeout(0.01)
        assert ws.sock is not None and ws.sock.gettimeout() == 0.01
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv()
        ws.close()


def test_handshake_timeout_when_the_server_never_answers() -> None:
    async def never_accepts(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await receive()  # the disconnect when the client gives up

    target = wsfake.ASGI(never_accepts, lifespan=False)
    with wsfake.patch_client({URL: target}), pytest.raises(websocket.WebSocketTimeoutException):
        create_connection(URL, timeout=0.05)


def test_refused_like_a_closed_port() -> None:
    events: list[Any] = []
    with wsfake.patch_client({URL: echo}):
        with pytest.raises(ConnectionRefusedError) as raised:
            create_connection("ws://127.0.0.1:1/nothing", timeout=TIMEOUT)
        assert isinstance(raised.value, wsfake.NoRoute)
        assert raised.value.remote_ip == "127.0.0.1"  # type: ignore[attr-defined]  # set by the library
        app = WebSocketApp("ws://nowhere.example/", on_error=lambda app, exc: events.append(exc))
        assert app.run_forever() is True
    assert isinstance(events[0], ConnectionRefusedError)


def test_a_socket_the_caller_passes_is_left_alone() -> None:
    class Passed:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def send(self, data: bytes) -> int:
            self.sent.append(data)
            raise ConnectionAbortedError("the caller's own socket")

        def gettimeout(self) -> None:
            return None

        def close(self) -> None:
            pass

    passed = Passed()
    with wsfake.patch_client({URL: echo}) as net, pytest.raises(ConnectionAbortedError):
        create_connection(URL, socket=passed)
    assert passed.sent[0].startswith(b"GET /chat HTTP/1.1\r\n")
    assert net.routes[0].call_count == 0


# Proxies


def test_http_proxy_is_tunnelled_in_memory() -> None:
    with wsfake.patch_client({URL: echo}) as net:
        ws = create_connection(URL, http_proxy_host="proxy.invalid", http_proxy_port=3128, timeout=TIMEOUT)
        ws.send("through the proxy")
        assert ws.recv() == "through the proxy"
        ws.close()
    assert net.routes[0].call_count == 1


def test_proxy_from_the_environment_is_tunnelled_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://user:secret@proxy.invalid:8080")
    with wsfake.patch_client({"wss://secure.example/*": echo}):
        ws = create_connection("wss://secure.example/", timeout=TIMEOUT)
        ws.send("env proxy")
        assert ws.recv() == "env proxy"
        ws.close()


def test_proxy_settings_are_checked_by_the_library() -> None:
    with wsfake.patch_client({URL: echo}):
        with pytest.raises(Exception, match="Only http, socks4, socks5 proxy protocols are supported"):
            create_connection(URL, http_proxy_host="proxy.invalid", proxy_type="gopher")
        if not websocket._http.HAVE_PYTHON_SOCKS:
            with pytest.raises(websocket.WebSocketException, match="Python Socks is needed"):
                create_connection(URL, http_proxy_host="proxy.invalid", http_proxy_port=1080, proxy_type="socks5")


# Undo


def test_hooks_are_undone_on_exit_on_error_and_when_nested() -> None:
    assert hooks_removed()
    with wsfake.patch_client({URL: echo}):
        assert not hooks_removed()
        with wsfake.patch_client({"ws://inner.example/*": echo}):
            ws = create_connection(URL, timeout=TIMEOUT)  # the outer route still serves
            ws.close()
        assert not hooks_removed()
    assert hooks_removed()
    with contextlib.suppress(KeyError), wsfake.patch_client({URL: echo}):
        raise KeyError("body failed")
    assert hooks_removed()


# The real network, for what is not routed


@pytest.fixture
def real_echo_server() -> Iterator[int]:
    from websockets.sync.server import serve

    def handler(ws: Any) -> None:
        for message in ws:
            ws.send(f"real:{message}")

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield server.socket.getsockname()[1]
        finally:
            server.shutdown()
            thread.join(TIMEOUT)


@pytest.mark.network
def test_pass_through_reaches_a_real_server(real_echo_server: int) -> None:
    real_url = f"ws://127.0.0.1:{real_echo_server}/"
    with wsfake.patch_client({URL: echo}) as net:
        net.pass_through(f"ws://127.0.0.1:{real_echo_server}/*")
        for url, expected in [(real_url, "real:a"), (URL, "a")]:
            ws = create_connection(url, timeout=TIMEOUT)
            ws.send("a")
            assert ws.recv() == expected
            ws.close()
    ws = create_connection(real_url, timeout=TIMEOUT)
    ws.send("after")
    assert ws.recv() == "real:after"
    ws.close()


@pytest.mark.network
def test_plain_http_server_is_reached_untouched() -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(418)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"teapot")

        def log_message(self, *args: Any) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        port = server.server_address[1]
        try:
            with wsfake.patch_client({URL: echo}) as net:
                net.pass_through(f"ws://127.0.0.1:{port}/*")
                with pytest.raises(websocket.WebSocketBadStatusException) as raised:
                    create_connection(f"ws://127.0.0.1:{port}/plain", timeout=TIMEOUT)
        finally:
            server.shutdown()
            thread.join(TIMEOUT)
    assert (raised.value.status_code, raised.value.resp_body) == (418, b"teapot")
    assert net.routes[0].call_count == 0
