"""trio-websocket in memory: every client form and import style, refusal, pass-through, undo, errors, timeouts."""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket
import trio_websocket._impl
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    Endpoint,
    HandshakeError,
    WebSocketConnection,
    connect_websocket,
    connect_websocket_url,
    open_websocket,
    open_websocket_url,
)

import wsfake
from wsfake import ServerConnection

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

IMPL = trio_websocket._impl
ORIGINALS = {name: IMPL.__dict__[name] for name in ("trio", "connect_websocket", "_get_stream_endpoint")}
#: trio-websocket 0.12 made ConnectionTimeout wait for its reader task (the connection's end), not cancel it.
WAITS_FOR_READER = tuple(int(part) for part in trio_websocket.__version__.split(".")[:2]) >= (0, 12)
TRIO_ORIGINALS = {name: getattr(trio, name) for name in ("open_tcp_stream", "open_ssl_over_tcp_stream")}


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` on trio with a clock that jumps ahead whenever every task waits (timeouts take no time).

    A deadlock then fails at once: the hour it is bounded by passes in no time.
    """

    async def bounded() -> None:
        with trio.fail_after(3600):
            await main()

    trio.run(bounded, clock=trio.testing.MockClock(autojump_threshold=0))


def hooks() -> dict[str, Any]:
    return {name: IMPL.__dict__[name] for name in ORIGINALS} | {name: getattr(trio, name) for name in TRIO_ORIGINALS}


class Raised:
    value: BaseException


@contextlib.contextmanager
def raises(expected: type[BaseException]) -> Iterator[Raised]:
    """``pytest.raises`` for what ``open_websocket`` raises.

    Before 0.12, trio-websocket lets its nursery's ExceptionGroup out (trio's
    groups are strict since 0.25): the one error inside is what is checked.
    """
    raised = Raised()
    try:
        yield raised
    except BaseException as exc:
        inner = exc
        while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
            inner = inner.exceptions[0]
        if not isinstance(inner, expected):
            raise
        raised.value = inner
    else:
        pytest.fail(f"DID NOT RAISE {expected.__name__}")


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test leaves the hooks undone and, in memory, starts no thread."""
    threads = set(threading.enumerate())
    yield
    assert hooks() == ORIGINALS | TRIO_ORIGINALS
    if not request.node.get_closest_marker("network"):
        assert set(threading.enumerate()) == threads


async def tell_path(ws: ServerConnection) -> None:
    """Echo each message prefixed with the request path the server saw."""
    async for message in ws:
        await ws.send(f"{ws.request.path}:{message}")


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


#: Each client form, by the name it is imported under; the ``_url`` forms and ``open_websocket`` reach the
#: library's ``connect_websocket`` through its module global, a captured ``connect_websocket`` does not.
FORMS: dict[str, Callable[[trio.Nursery, str], Any]] = {
    "open_websocket_url": lambda n, path: open_websocket_url(f"ws://localhost:8000{path}"),
    "trio_websocket.open_websocket_url": lambda n, path: trio_websocket.open_websocket_url(
        f"ws://localhost:8000{path}"
    ),
    "_impl.open_websocket_url": lambda n, path: IMPL.open_websocket_url(f"ws://localhost:8000{path}"),
    "open_websocket": lambda n, path: open_websocket("localhost", 8000, path, use_ssl=False),
    "connect_websocket_url": lambda n, path: connect_websocket_url(n, f"ws://localhost:8000{path}"),
    "trio_websocket.connect_websocket_url": lambda n, path: trio_websocket.connect_websocket_url(
        n, f"ws://localhost:8000{path}"
    ),
    "connect_websocket": lambda n, path: connect_websocket(n, "localhost", 8000, path, use_ssl=False),
    "_impl.connect_websocket": lambda n, path: IMPL.connect_websocket(n, "localhost", 8000, path, use_ssl=False),
}


async def exchange(opened: Any, message: str) -> WebSocketConnection:
    """Send ``message`` and return the connection after reading one reply (context manager or connection)."""
    if hasattr(opened, "__aenter__"):
        async with opened as ws:
            await ws.send_message(message)
            ws.reply = await ws.get_message()
        return ws
    ws = await opened
    await ws.send_message(message)
    ws.reply = await ws.get_message()
    await ws.aclose()
    return ws


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_and_import_style_reaches_the_route_of_its_path(form: str) -> None:
    async def main() -> None:
        async with wsfake.patch_client() as net:
            net.route("ws://localhost:8000/a*", tell_path)
            net.route("ws://localhost:8000/b*", echo)
            async with trio.open_nursery() as nursery:
                ws = await exchange(FORMS[form](nursery, "/a?x=1"), "hi")
        assert ws.reply == "/a?x=1:hi"
        assert ws.closed is not None and ws.closed.code == 1000
        assert [call.url for call in net.routes[0].calls] == ["ws://localhost:8000/a?x=1"]
        assert not net.routes[1].called

    run(main)


def test_messages_close_reasons_and_the_clients_own_max_message_size() -> None:
    async def closes(ws: ServerConnection) -> None:
        await ws.send("ünï ✓")
        await ws.send(b"\x00\xff")
        await ws.close(4000, "bye")

    async def big(ws: ServerConnection) -> None:
        await ws.send("z" * 2000)
        await ws.wait_closed()

    async def main() -> None:
        async with wsfake.patch_client({"ws://x/close": closes, "ws://x/big": big}) as net:
            async with open_websocket_url("ws://x/close") as ws:
                assert await ws.get_message() == "ünï ✓"
                assert await ws.get_message() == b"\x00\xff"
                with pytest.raises(ConnectionClosed) as info:
                    await ws.get_message()
            reason = info.value.reason
            assert (reason.code, reason.name, reason.reason) == (4000, "PRIVATE_RESERVED", "bye")
            async with open_websocket_url("ws://x/big", max_message_size=1000) as ws:
                with pytest.raises(ConnectionClosed) as info:
                    await ws.get_message()
            assert info.value.reason.code == 1009
            assert info.value.reason.reason == "Exceeded maximum message size: 1000 bytes"
            # trio-websocket then keeps its connection open (never closing its stream): the server's wait_closed()
            # lasts until the context exits, as until its close_timeout on the network; it did get the close frame.
            assert net.routes[1].calls.last.close_received == (1009, "Exceeded maximum message size: 1000 bytes")

    run(main)


def refusal_chain(exc: BaseException) -> list[Any]:
    """What a closed port looks like to trio-websocket: HandshakeError <- OSError <- group of refusals."""
    chain: list[Any] = []
    while exc is not None:
        if isinstance(exc, ExceptionGroup):
            chain.append(("group", [(isinstance(e, ConnectionRefusedError), e.errno) for e in exc.exceptions]))
        else:
            chain.append((type(exc).__name__, getattr(exc, "errno", None)))
        exc = exc.__cause__  # type: ignore[assignment]
    return chain


def test_refusal_is_a_handshake_error_caused_by_trios_connection_error() -> None:
    async def main() -> None:
        async with wsfake.patch_client({"ws://localhost:8000/a": echo}):
            for url, address in [("ws://localhost:9/", "localhost:9"), ("ws://localhost:8000/b", "localhost:8000")]:
                with raises(HandshakeError) as info:
                    async with open_websocket_url(url):
                        pass
                assert type(info.value) is HandshakeError
                error = info.value.__cause__
                assert type(error) is OSError and error.errno is None
                assert str(error) == f"all attempts to connect to {address} failed"
                group = error.__cause__
                assert isinstance(group, ExceptionGroup) and str(group).startswith(str(error))
                (refused,) = group.exceptions
                assert isinstance(refused, wsfake.NoRoute) and refused.errno == errno.ECONNREFUSED
            async with trio.open_nursery() as nursery:
                with pytest.raises(OSError, match=r"all attempts to connect to \[::1\]:9 failed") as raw:
                    await connect_websocket_url(nursery, "ws://[::1]:9/")
                assert type(raw.value) is OSError

    run(main)


@pytest.mark.network
def test_refusal_looks_as_a_closed_port_on_127_0_0_1_does() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more

    async def refused(url: str) -> HandshakeError:
        with raises(HandshakeError) as info:
            async with open_websocket_url(url):
                pass
        return info.value

    async def main() -> None:
        real = await refused(f"ws://127.0.0.1:{port}/")
        async with wsfake.patch_client({"ws://localhost:8000/*": echo}):
            fake = await refused(f"ws://127.0.0.1:{port}/")
        assert refusal_chain(fake) == refusal_chain(real)
        assert str(fake.__cause__) == str(real.__cause__) == f"all attempts to connect to 127.0.0.1:{port} failed"

    trio.run(main)


def test_a_captured_connect_websocket_is_routed_when_its_request_arrives() -> None:
    """Without the path at connect time, the address is claimed; an unrouted path is reset when it is known."""

    async def main() -> None:
        with pytest.raises(wsfake.NoRoute) as info:
            async with wsfake.patch_client({"ws://h:1/a": echo}):
                with trio.move_on_after(60) as waited:
                    async with trio.open_nursery() as nursery:
                        await connect_websocket(nursery, "h", 1, "/elsewhere", use_ssl=False)
                # As when a real server drops the connection during the handshake: connect_websocket waits.
                assert waited.cancelled_caught
        assert "before its path was known" in str(info.value)

    run(main)


def test_wss_is_served_without_tls_and_endpoints_look_like_sockets() -> None:
    async def main() -> None:
        async with wsfake.patch_client(echo):
            context = ssl.create_default_context()
            async with open_websocket_url("wss://127.0.0.1:8443/s", context) as ws:
                await ws.send_message("secure")
                assert await ws.get_message() == "secure"
                assert isinstance(ws.remote, Endpoint) and ws.remote.url == "wss://127.0.0.1:8443"
                assert isinstance(ws.local, Endpoint) and ws.local.is_ssl
            async with open_websocket_url("wss://secure.example/s") as ws:
                await ws.send_message("by name")
                assert await ws.get_message() == "by name"
                # A socket reports an IP address, never a name: the server is local.
                assert isinstance(ws.remote, Endpoint) and ws.remote.url == "wss://127.0.0.1"
                assert ws.local.is_ssl
            async with open_websocket_url("ws://localhost/") as ws:
                assert ws.remote.url == "ws://127.0.0.1" and not ws.remote.is_ssl
                assert str(ws.local.address) == "127.0.0.1"

    run(main)


def test_rejections_carry_status_headers_and_body() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        if scope["path"] == "/deny":
            await send({"type": "websocket.close"})
            return
        await send({"type": "websocket.http.response.start", "status": 404, "headers": [(b"x-why", b"no room")]})
        await send({"type": "websocket.http.response.body", "body": b"room not found"})

    async def main() -> None:
        async with wsfake.patch_client(wsfake.ASGI(app, lifespan=False)):
            with raises(ConnectionRejected) as info:
                async with open_websocket_url("ws://x/deny"):
                    pass
            assert info.value.status_code == 403
            with raises(ConnectionRejected) as info:
                async with open_websocket_url("ws://x/room"):
                    pass
            assert info.value.status_code == 404 and info.value.body == b"room not found"
            assert (b"x-why", b"no room") in info.value.headers

    run(main)


def test_server_errors_close_1011_and_are_raised_on_exit() -> None:
    async def broken(ws: ServerConnection) -> None:
        raise ValueError("handler failed")

    async def main() -> None:
        with pytest.raises(ValueError, match="handler failed"):
            async with wsfake.patch_client(broken):
                async with open_websocket_url("ws://x/") as ws:
                    with pytest.raises(ConnectionClosed) as info:
                        await ws.get_message()
                assert info.value.reason.code == 1011

    run(main)


def test_connect_timeout_of_a_handshake_that_never_completes() -> None:
    """From 0.12 on, ConnectionTimeout waits until trio-websocket's reader task ends: the server must drop first.

    Before 0.12, the timeout cancelled the reader and bounded the wait, as it does on the network.
    """

    async def never(connection: Any, request: Any) -> None:
        await trio.sleep_forever()

    async def main() -> None:
        async with wsfake.patch_client() as net:
            net.route("ws://dropping/*", echo, process_request=never, open_timeout=5)
            net.route("ws://silent/*", echo, process_request=never, open_timeout=None)
            start = trio.current_time()
            with raises(ConnectionTimeout):
                async with open_websocket_url("ws://dropping/", connect_timeout=1):
                    pass
            assert trio.current_time() - start == (5 if WAITS_FOR_READER else 1)
            start = trio.current_time()
            with trio.move_on_after(100) as outer, raises(ConnectionTimeout):
                async with open_websocket_url("ws://silent/", connect_timeout=1):
                    pass
            # From 0.12 on, only the outer cancel scope ends the wait (its Cancelled passes through raises()).
            assert outer.cancelled_caught is WAITS_FOR_READER
            assert trio.current_time() - start == (100 if WAITS_FOR_READER else 1)

    run(main)


def test_backpressure_holds_the_sender_until_the_server_reads() -> None:
    go = trio.Event()
    received: list[int] = []

    async def slow(ws: ServerConnection) -> None:
        await go.wait()
        for _ in range(64):
            received.append(len(await ws.recv()))
        await ws.send("all read")
        await ws.wait_closed()

    async def main() -> None:
        sent = 0
        async with wsfake.patch_client(slow), open_websocket_url("ws://x/") as ws:

            async def send_all() -> None:
                nonlocal sent
                for _ in range(64):
                    await ws.send_message("b" * 65536)  # 4 MiB, more than the pipe holds
                    sent += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all)
                await trio.testing.wait_all_tasks_blocked()
                assert 0 < sent < 64
                go.set()
            assert await ws.get_message() == "all read"
        assert received == [65536] * 64

    run(main)


def test_server_pings_are_answered_and_client_pings_get_pongs() -> None:
    async def pinger(ws: ServerConnection) -> None:
        latency = await (await ws.ping(b"srv"))
        await ws.send(f"ponged {latency >= 0}")
        await ws.wait_closed()

    async def main() -> None:
        async with wsfake.patch_client(pinger), open_websocket_url("ws://x/") as ws:
            await ws.ping(b"client")
            assert await ws.get_message() == "ponged True"

    run(main)


def test_hooks_are_installed_once_when_nested_and_undone_on_exit_and_on_error() -> None:
    async def main() -> None:
        async with wsfake.patch_client({"ws://outer/*": echo}):
            patched = hooks()
            assert all(patched[name] is not original for name, original in ORIGINALS.items())
            async with wsfake.patch_client({"ws://inner/*": echo}):
                assert hooks() == patched
                for url in ["ws://inner/", "ws://outer/"]:
                    async with open_websocket_url(url) as ws:
                        await ws.send_message(url)
                        assert await ws.get_message() == url
            assert hooks() == patched
        assert hooks() == ORIGINALS | TRIO_ORIGINALS
        with pytest.raises(KeyError):
            async with wsfake.patch_client(echo):
                raise KeyError("body failed")
        assert hooks() == ORIGINALS | TRIO_ORIGINALS

    run(main)


async def real_echo(request: Any) -> None:
    ws = await request.accept()
    try:
        while True:
            await ws.send_message(f"real:{await ws.get_message()}")
    except ConnectionClosed:
        pass


@pytest.mark.network
def test_pass_through_reaches_a_real_server_on_127_0_0_1() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, real_echo, "127.0.0.1", 0, None)
            real_url = f"ws://127.0.0.1:{server.port}/"
            async with wsfake.patch_client() as net:
                net.route("ws://localhost:8000/*", echo)
                net.pass_through(real_url + "*")
                for url, expected in [(real_url, "real:a"), ("ws://localhost:8000/x", "a")]:
                    async with open_websocket_url(url) as ws:
                        await ws.send_message("a")
                        assert await ws.get_message() == expected
                        if url == real_url:
                            assert ws.remote.port == server.port
            async with open_websocket_url(real_url) as ws:
                await ws.send_message("after")
                assert await ws.get_message() == "real:after"
            nursery.cancel_scope.cancel()

    trio.run(main)


@pytest.mark.network
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # trio-websocket never closes the socket of a rejection
def test_plain_http_is_untouched_while_patched() -> None:
    """trio's own TCP streams and a trio-websocket upgrade answered by a plain HTTP server reach the network."""

    async def http_server(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(4096)
        body = b"plain http"
        await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\n" + body)
        await stream.aclose()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            (listener,) = await nursery.start(functools.partial(trio.serve_tcp, http_server, 0, host="127.0.0.1"))
            port = listener.socket.getsockname()[1]
            async with wsfake.patch_client({"ws://localhost:8000/*": echo}):
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                response = b""
                while chunk := await stream.receive_some(4096):
                    response += chunk
                await stream.aclose()
                assert response.startswith(b"HTTP/1.1 404") and response.endswith(b"plain http")
            async with wsfake.patch_client() as net:
                # The route names this address, so the guard lets only deliberate pass-throughs reach it.
                net.route(f"ws://127.0.0.1:{port}/ws", echo)
                net.pass_through(f"ws://*:{port}/http")
                with raises(ConnectionRejected) as info:
                    async with open_websocket_url(f"ws://127.0.0.1:{port}/http"):
                        pass
                assert info.value.status_code == 404 and info.value.body == b"plain http"
                async with open_websocket_url(f"ws://127.0.0.1:{port}/ws") as ws:
                    await ws.send_message("in memory")
                    assert await ws.get_message() == "in memory"
            nursery.cancel_scope.cancel()

    trio.run(main)
    gc.collect()  # the leaked socket is collected (silently) within this test


IMPORTED_WHILE_PATCHED = """
import trio, wsfake

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with wsfake.patch_client(echo):
        from trio_websocket import open_websocket_url  # first imported here
        import trio_websocket._impl as impl

        async with open_websocket_url("ws://late/") as ws:
            await ws.send_message("late")
            assert await ws.get_message() == "late"
        assert impl.trio is not trio
    assert impl.trio is trio and impl.connect_websocket.__module__ == "trio_websocket._impl"
    assert not hasattr(impl.connect_websocket, "__wrapped__")
    print("ok")

trio.run(main)
"""


def test_imported_inside_the_patch_is_served_and_undone() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", IMPORTED_WHILE_PATCHED], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
