"""The ``websockets`` sync client in memory: plain sync code, threads, async tests; unchanged user code."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets
import websockets.sync.client
import websockets.sync.connection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

import wsfake
from wsfake import ServerConnection

URL = "ws://localhost:8000/ws"
CLIENT = websockets.sync.client
HAS_RECONNECT = hasattr(CLIENT, "reconnect")
#: websockets 17.1+ warns when connect() is not used as a context manager (``legacy=True`` opts out).
WARNS_WITHOUT_CONTEXT = "legacy" in inspect.signature(connect).parameters


def hooks() -> dict[str, Any]:
    found = {
        "socket": vars(CLIENT)["socket"],
        "parse_uri": vars(CLIENT)["parse_uri"],
        "wrap_socket": vars(ssl.SSLContext)["wrap_socket"],
        "selectors": vars(websockets.sync.connection).get("selectors"),
    }
    if HAS_RECONNECT:
        found["open_socket"] = vars(CLIENT.reconnect)["open_socket"]
    return found


ORIGINALS = hooks()


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test leaves the hooks as they were and, in memory, no thread behind."""
    threads = set(threading.enumerate())
    yield
    assert hooks() == ORIGINALS
    assert CLIENT.socket is socket
    if not request.node.get_closest_marker("network"):
        # websockets' own keepalive threads end on their own, just after their connection.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            keepalive = [t for t in set(threading.enumerate()) - threads if t.name.endswith("(keepalive)")]
            if not keepalive:
                break
            for thread in keepalive:
                thread.join(0.5)
        assert set(threading.enumerate()) == threads


def in_thread(body: Callable[[], Any]) -> Any:
    """Run ``body`` in a thread of its own; return its result or raise its exception here."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, body()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="sync client under test")
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the client thread hung"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def tell_path(ws: ServerConnection) -> None:
    await ws.send(ws.request.path)
    await echo(ws)


def round_trip(url: str = URL, message: str = "ping") -> Any:
    with connect(url) as ws:
        ws.send(message)
        return ws.recv()


@pytest.mark.parametrize(
    "connect_", [CLIENT.connect, connect], ids=["websockets.sync.client.connect", "from-import connect"]
)
def test_every_import_style_with_and_without_a_context_manager(connect_: Any) -> None:
    with wsfake.patch_client({"ws://localhost:8000/*": tell_path}) as net:
        with connect_(f"{URL}?form=with") as ws:
            assert ws.recv() == "/ws?form=with"
            ws.send(b"\x00\xff")
            assert ws.recv() == b"\x00\xff"
        warns = pytest.warns(DeprecationWarning, match="context manager")
        with warns if WARNS_WITHOUT_CONTEXT else contextlib.nullcontext():
            ws = connect_(f"{URL}?form=plain")
            assert ws.recv() == "/ws?form=plain"
            ws.close()
    assert [call.url for call in net.routes[0].calls] == [f"{URL}?form=with", f"{URL}?form=plain"]


@pytest.mark.skipif(not HAS_RECONNECT, reason="reconnect() is new in websockets 17.1")
def test_reconnect_retries_a_503_then_connects() -> None:
    def flaky(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(503, "warming up\n") if net.routes[0].call_count < 2 else None

    def no_delay() -> Iterator[float]:
        while True:
            yield 0.0

    with wsfake.patch_client() as net:
        net.route(URL, echo, process_request=flaky)
        with contextlib.closing(iter(CLIENT.reconnect(URL, reconnect_delays=no_delay))) as attempts:
            for ws in attempts:
                ws.send("finally")
                assert ws.recv() == "finally"
                ws.close()
                break
    assert [call.status for call in net.routes[0].calls] == [503, 101]


def test_from_a_thread() -> None:
    with wsfake.patch_client({URL: echo}) as net:
        assert in_thread(lambda: round_trip(message="threaded")) == "threaded"
        assert in_thread(round_trip) == "ping"
    assert net.routes[0].call_count == 2


@pytest.mark.asyncio
async def test_called_inside_an_async_test() -> None:
    # The sync client blocks this test's loop: its server runs on wsfake's background loop.
    async with wsfake.patch_client({URL: echo}) as net:
        assert round_trip(message="from async") == "from async"
    assert net.routes[0].call_count == 1
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_recv_timeout_raises_timeout_error_then_a_later_message_arrives() -> None:
    async def on_demand(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(f"answer to {message}")

    with wsfake.patch_client({URL: on_demand}), connect(URL) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.01)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0)
        ws.send("question")
        assert ws.recv(timeout=5) == "answer to question"


def test_ping_returns_an_event_set_by_the_pong_and_server_pings_are_answered() -> None:
    async def pings(ws: ServerConnection) -> None:
        pong = await ws.ping(b"from server")
        await pong
        await ws.send("ponged")
        await echo(ws)

    with wsfake.patch_client({URL: pings}), connect(URL) as ws:
        assert ws.recv() == "ponged"  # the server's ping was answered
        pong = ws.ping(b"from client")
        assert isinstance(pong, threading.Event)
        assert pong.wait(5)


def test_recv_streaming_and_iteration_until_the_server_closes() -> None:
    async def talks(ws: ServerConnection) -> None:
        await ws.send(["frag", "ments"])
        await ws.send("x")
        await ws.send(b"y")
        await ws.recv()  # the client has read everything
        await ws.close(1000, "done")

    with wsfake.patch_client({URL: talks}), connect(URL) as ws:
        assert "".join(ws.recv_streaming()) == "fragments"
        received = []
        for message in ws:  # ends at a 1000 close
            received.append(message)
            if message == b"y":
                ws.send("ack")
        assert received == ["x", b"y"]
        assert (ws.protocol.close_code, ws.protocol.close_reason) == (1000, "done")


def test_patch_exit_wakes_a_thread_blocked_in_recv_with_connection_closed() -> None:
    entered = threading.Event()
    raised: list[BaseException] = []

    async def opened(ws: ServerConnection) -> None:
        await ws.recv()
        entered.set()
        await ws.wait_closed()

    def blocked_reader() -> None:
        with connect(URL) as ws:
            ws.send("reading")
            try:
                ws.recv()  # nothing comes: blocked until the patch exits
            except BaseException as exc:
                raised.append(exc)

    with wsfake.patch_client({URL: opened}):
        reader = threading.Thread(target=blocked_reader, name="blocked reader")
        reader.start()
        assert entered.wait(5)
    reader.join(10)
    assert not reader.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], ConnectionClosed)
    assert raised[0].rcvd is not None and raised[0].rcvd.code == 1001  # the handler's server shuts down
    # no_leaks checks that no thread is left behind.


def test_a_thread_that_outlives_the_patch_gets_the_clients_own_errors_at_once() -> None:
    opened = threading.Event()
    patch_exited = threading.Event()
    errors: list[BaseException] = []

    def outlives() -> None:
        with connect(URL) as ws:
            ws.send("inside")
            assert ws.recv() == "inside"
            opened.set()
            assert patch_exited.wait(10)
            for use in (lambda: ws.send("after"), ws.recv, ws.ping):
                try:
                    use()
                except BaseException as exc:
                    errors.append(exc)

    with wsfake.patch_client({URL: echo}):
        thread = threading.Thread(target=outlives, name="outlives the patch")
        thread.start()
        assert opened.wait(5)
    patch_exited.set()
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 3 and all(isinstance(exc, ConnectionClosed) for exc in errors)


def test_patch_exit_during_a_handshake_ends_the_connect_call() -> None:
    waiting = threading.Event()
    raised: list[BaseException] = []

    async def never_answers(connection: ServerConnection, request: Any) -> Any:
        waiting.set()
        await connection.wait_closed()

    def connecting() -> None:
        try:
            connect(URL, open_timeout=30)
        except BaseException as exc:
            raised.append(exc)

    # On exit, a handshake still waiting after shutdown_timeout is dropped: the client sees the connection end.
    with wsfake.patch_client(shutdown_timeout=0.05) as net:
        net.route(URL, echo, process_request=never_answers)
        thread = threading.Thread(target=connecting, name="connecting")
        thread.start()
        assert waiting.wait(5)
    thread.join(10)
    assert not thread.is_alive()
    assert len(raised) == 1
    # websockets' own error for a connection that ends during the handshake (EOFError before 14.1).
    assert isinstance(raised[0], (websockets.exceptions.InvalidHandshake, EOFError))


def test_wss_is_served_without_tls_whatever_the_ssl_argument() -> None:
    with wsfake.patch_client({"wss://secure.test/*": echo}) as net:
        for option in ({}, {"ssl": ssl.create_default_context()}):
            with connect("wss://secure.test/s", **option) as ws:
                assert not isinstance(ws.socket, ssl.SSLSocket)
                ws.send("secret")
                assert ws.recv() == "secret"
    assert [call.url for call in net.routes[0].calls] == ["wss://secure.test:443/s"] * 2


@pytest.mark.skipif(not HAS_RECONNECT, reason="connect(address=...) is new in websockets 17.1")
def test_host_and_port_from_the_address_argument_the_path_from_the_uri() -> None:
    with wsfake.patch_client() as net:
        route = net.route("ws://localhost:8000/*", tell_path)
        net.route("ws://app.example/*", echo)
        with connect("ws://app.example/room?x=1", address=("localhost", 8000)) as ws:
            assert ws.recv(timeout=5) == "/room?x=1"
    assert route.calls.last.url == "ws://localhost:8000/room?x=1"
    assert route.calls.last.header("Host") == "app.example"


def test_an_unrouted_url_is_refused_as_a_closed_port() -> None:
    with wsfake.patch_client({URL: echo}):
        for url in ("ws://localhost:8000/elsewhere", "ws://other.test/"):
            with pytest.raises(ConnectionRefusedError) as info:
                round_trip(url)
            assert isinstance(info.value, wsfake.NoRoute)
            assert info.value.errno == errno.ECONNREFUSED


@pytest.mark.network
def test_refusal_looks_as_a_closed_port_on_127_0_0_1_does() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more
    with pytest.raises(OSError) as real:
        round_trip(f"ws://127.0.0.1:{port}/")
    with wsfake.patch_client({URL: echo}), pytest.raises(OSError) as fake:
        round_trip(f"ws://127.0.0.1:{port}/")
    assert isinstance(real.value, ConnectionRefusedError) and isinstance(fake.value, ConnectionRefusedError)
    assert fake.value.errno == real.value.errno == errno.ECONNREFUSED


def test_rejections_and_server_errors_as_the_sync_client_reports_them() -> None:
    def deny(connection: ServerConnection, request: Any) -> Any:
        response = connection.respond(403, "keep out\n")
        response.headers["X-Why"] = "closed room"
        return response

    async def fails(ws: ServerConnection) -> None:
        await ws.send("before")
        raise ValueError("handler bug")

    with pytest.raises(ValueError, match="handler bug"), wsfake.patch_client() as net:
        net.route("ws://localhost:8000/deny", echo, process_request=deny)
        net.route("ws://localhost:8000/fail", fails)
        with pytest.raises(InvalidStatus) as rejected:
            connect("ws://localhost:8000/deny")
        response = rejected.value.response
        assert (response.status_code, response.body, response.headers["X-Why"]) == (403, b"keep out\n", "closed room")
        with connect("ws://localhost:8000/fail") as ws:
            assert ws.recv() == "before"
            with pytest.raises(ConnectionClosedError) as closed:
                ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


def test_hooks_are_shared_when_nested_and_undone_on_error() -> None:
    with pytest.raises(KeyError), wsfake.patch_client({URL: echo}):
        with wsfake.patch_client({"ws://inner.test/*": echo}):
            assert hooks() != ORIGINALS
            assert round_trip("ws://inner.test/", "inner") == "inner"
            assert round_trip(URL, "outer") == "outer"
        assert hooks() != ORIGINALS
        raise KeyError("test body failed")
    assert hooks() == ORIGINALS


@pytest.mark.network
def test_pass_through_reaches_a_real_server_on_127_0_0_1() -> None:
    from websockets.sync.server import serve

    def real_echo(ws: Any) -> None:
        for message in ws:
            ws.send(f"real:{message}")

    with serve(real_echo, "127.0.0.1", 0) as server:
        serving = threading.Thread(target=server.serve_forever, name="real sync server")
        serving.start()
        try:
            real_url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"
            with wsfake.patch_client() as net:
                net.route(URL, echo)
                net.pass_through(f"{real_url}*")
                assert round_trip(real_url, "a") == "real:a"
                assert round_trip(URL, "a") == "a"
            assert net.routes[0].call_count == 1
        finally:
            server.shutdown()
            serving.join(10)
