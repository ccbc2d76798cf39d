"""The ``websockets`` trio client (websockets 17+) in memory: forms, reconnect, cancellation, refusal, undo."""

from __future__ import annotations

import errno
import functools
import socket
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing
from typing import Any

import pytest
import trio
import trio.testing
from websockets.exceptions import ConnectionClosedError, InvalidStatus

import wsfake
from wsfake import ServerConnection

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

trio_client = pytest.importorskip("websockets.trio.client", reason="websockets.trio is new in websockets 17")
connect = trio_client.connect

URL = "ws://localhost:8000/ws"
ORIGINALS = {name: vars(connect)[name] for name in ("open_tcp_stream", "enable_tls")}
TRIO_ORIGINALS = {name: getattr(trio, name) for name in ("open_tcp_stream", "open_ssl_over_tcp_stream")}


def hooks() -> dict[str, Any]:
    return {name: vars(connect)[name] for name in ORIGINALS} | {name: getattr(trio, name) for name in TRIO_ORIGINALS}


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test leaves the hooks undone and, in memory, starts no thread."""
    threads = set(threading.enumerate())
    yield
    assert hooks() == ORIGINALS | TRIO_ORIGINALS
    if not request.node.get_closest_marker("network"):
        assert set(threading.enumerate()) == threads


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` on trio with a clock that jumps ahead whenever every task waits (delays take no time)."""
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def all_tasks() -> set[trio.lowlevel.Task]:
    """Every task of this trio run, the system tasks (where wsfake serves) included."""
    found: set[trio.lowlevel.Task] = set()
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        found.add(task)
        pending.extend(child for nursery in task.child_nurseries for child in nursery.child_tasks)
    return found


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def tell_path(ws: ServerConnection) -> None:
    await ws.send(ws.request.path)
    await echo(ws)


@pytest.mark.parametrize(
    "connect_", [trio_client.connect, connect], ids=["websockets.trio.client.connect", "from-import connect"]
)
def test_every_import_style_with_async_with(connect_: Any) -> None:
    async def main() -> None:
        async with wsfake.patch_client({"ws://localhost:8000/*": tell_path}) as net:
            async with connect_(f"{URL}?x=1") as ws:
                assert await ws.recv() == "/ws?x=1"
                await ws.send(b"\x00\xff")
                assert await ws.recv() == b"\x00\xff"
            assert ws.close_code == 1000
        assert [call.url for call in net.routes[0].calls] == [f"{URL}?x=1"]

    run(main)


def test_await_needs_a_nursery_as_on_the_network() -> None:
    async def main() -> None:
        async with wsfake.patch_client({URL: echo}) as net:
            with pytest.raises(TypeError, match="await"):
                await connect(URL)  # type: ignore[misc]  # trio's connect cannot be awaited directly
            async with trio.open_nursery() as nursery:
                ws = await connect(URL).connect(nursery)  # the awaitable form: the caller's nursery
                await ws.send("awaited")
                assert await ws.recv() == "awaited"
                await ws.aclose()
            assert ws.close_code == 1000
        assert net.routes[0].call_count == 1

    run(main)


def test_async_for_reconnects_with_the_default_backoff() -> None:
    def flaky(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(503, "warming up\n") if net.routes[0].call_count < 3 else None

    async def main() -> None:
        started = trio.current_time()
        async with aclosing(connect(URL).__aiter__()) as attempts:
            async for ws in attempts:  # backoff delays pass at once on the mock clock
                await ws.send("finally")
                assert await ws.recv() == "finally"
                await ws.aclose()
                break
        assert trio.current_time() > started  # it did back off

    with wsfake.patch_client() as net:
        net.route(URL, echo, process_request=flaky)
        run(main)
    assert [call.status for call in net.routes[0].calls] == [503, 503, 101]


def test_cancelled_in_the_middle_of_a_handshake_no_task_is_left_and_the_app_sees_the_client_leave() -> None:
    seen: list[Any] = []

    async def never_accepts(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((await receive())["type"])
        in_handshake.set()
        event = await receive()  # the client leaves
        seen.append((event["type"], event.get("code")))
        client_left.set()

    async def main() -> None:
        nonlocal in_handshake, client_left
        in_handshake, client_left = trio.Event(), trio.Event()
        before = all_tasks()
        async with wsfake.patch_client({URL: wsfake.ASGI(never_accepts, lifespan=False)}):
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:

                    async def client() -> None:
                        async with connect(URL):
                            raise AssertionError("the app never accepts")

                    nursery.start_soon(client)
                    await in_handshake.wait()
                    scope.cancel()
            assert scope.cancelled_caught
            with trio.fail_after(5):
                await client_left.wait()
        assert all_tasks() == before

    in_handshake: trio.Event
    client_left: trio.Event
    run(main)
    assert seen == ["websocket.connect", ("websocket.disconnect", 1006)]


def test_cancelled_while_process_request_decides_it_runs_on_as_under_websockets_serve() -> None:
    outcome: list[Any] = []

    async def waits(connection: ServerConnection, request: Any) -> Any:
        deciding.set()
        try:
            await trio.sleep_forever()
        finally:
            outcome.append("process_request ended")

    async def main() -> None:
        nonlocal deciding
        deciding = trio.Event()
        before = all_tasks()
        async with wsfake.patch_client() as net:
            net.route(URL, echo, process_request=waits)
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:

                    async def client() -> None:
                        async with connect(URL):
                            raise AssertionError("process_request never decides")

                    nursery.start_soon(client)
                    await deciding.wait()
                    scope.cancel()
            assert scope.cancelled_caught
            await trio.testing.wait_all_tasks_blocked()
            # websockets.serve does not cancel process_request when the client leaves: neither does wsfake.
            assert outcome == []
        # The exit ends it (after shutdown_timeout, at once on the mock clock) and leaves no task.
        assert outcome == ["process_request ended"]
        assert all_tasks() == before

    deciding: trio.Event
    run(main)


def test_wss_is_served_without_tls_whatever_the_ssl_argument() -> None:
    async def main() -> None:
        async with wsfake.patch_client({"wss://secure.test/*": echo}) as net:
            for option in ({}, {"ssl": ssl.create_default_context()}):
                async with connect("wss://secure.test/s", **option) as ws:
                    assert not isinstance(ws.stream, trio.SSLStream)
                    await ws.send("secret")
                    assert await ws.recv() == "secret"
        assert [call.url for call in net.routes[0].calls] == ["wss://secure.test:443/s"] * 2

    run(main)


def test_host_and_port_arguments_choose_the_address_and_the_uri_its_path() -> None:
    async def main() -> None:
        async with wsfake.patch_client() as net:
            route = net.route("ws://localhost:8000/*", tell_path)
            net.route("ws://app.example/*", echo)
            async with connect("ws://app.example/room?x=1", host="localhost", port=8000) as ws:
                assert await ws.recv() == "/room?x=1"
        assert route.calls.last.url == "ws://localhost:8000/room?x=1"
        assert route.calls.last.header("Host") == "app.example"

    run(main)


def test_addresses_are_those_of_a_tcp_connection() -> None:
    async def main() -> None:
        async with wsfake.patch_client({URL: echo}), connect(URL) as ws:
            assert ws.remote_address == ("127.0.0.1", 8000)
            assert ws.local_address[0] == "127.0.0.1"

    run(main)


def refused(exc: BaseException) -> BaseException | None:
    """The ECONNREFUSED error behind ``exc``, whether raised as it is or as trio's group of attempts."""
    while exc is not None:
        if isinstance(exc, ConnectionRefusedError):
            return exc
        if isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
            continue
        exc = exc.__cause__  # type: ignore[assignment]
    return None


def test_an_unrouted_url_is_refused() -> None:
    async def main() -> None:
        async with wsfake.patch_client({URL: echo}):
            for url in ("ws://localhost:8000/elsewhere", "ws://other.test/"):
                with pytest.raises(OSError) as info:
                    async with connect(url):
                        pass
                refusal = refused(info.value)
                assert isinstance(refusal, wsfake.NoRoute) and refusal.errno == errno.ECONNREFUSED

    run(main)


def refusal_shape(exc: BaseException) -> list[Any]:
    """A refusal as a user's ``except`` clauses see it: class, errno, message, then the same for its cause."""
    shape: list[Any] = []
    while exc is not None:
        if isinstance(exc, ExceptionGroup):
            shape.append(("group", [(type(e).__mro__[-4:], e.errno) for e in exc.exceptions]))
        else:
            shape.append((type(exc).__name__, getattr(exc, "errno", None), str(exc)))
        exc = exc.__cause__  # type: ignore[assignment]
    return shape


@pytest.mark.network
def test_refusal_looks_as_a_closed_port_on_127_0_0_1_does() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more

    async def attempt() -> BaseException:
        with pytest.raises(OSError) as info:
            async with connect(f"ws://127.0.0.1:{port}/"):
                pass
        return info.value

    async def main() -> None:
        real = await attempt()
        async with wsfake.patch_client({URL: echo}):
            fake = await attempt()
        assert refusal_shape(fake)[:1] == refusal_shape(real)[:1]
        assert refusal_shape(fake)[1] == refusal_shape(real)[1]

    trio.run(main)


def test_rejections_and_server_errors_as_the_trio_client_reports_them() -> None:
    def deny(connection: ServerConnection, request: Any) -> Any:
        response = connection.respond(403, "keep out\n")
        response.headers["X-Why"] = "closed room"
        return response

    async def fails(ws: ServerConnection) -> None:
        await ws.send("before")
        raise ValueError("handler bug")

    async def main() -> None:
        async with wsfake.patch_client() as net:
            net.route("ws://localhost:8000/deny", echo, process_request=deny)
            net.route("ws://localhost:8000/fail", fails)
            with pytest.raises(InvalidStatus) as rejected:
                async with connect("ws://localhost:8000/deny"):
                    pass
            response = rejected.value.response
            assert (response.status_code, response.body, response.headers["X-Why"]) == (
                403,
                b"keep out\n",
                "closed room",
            )
            async with connect("ws://localhost:8000/fail") as ws:
                assert await ws.recv() == "before"
                with pytest.raises(ConnectionClosedError) as closed:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011

    with pytest.raises(ValueError, match="handler bug"):
        run(main)


def test_ping_returns_a_trio_event_set_by_the_pong() -> None:
    async def main() -> None:
        async with wsfake.patch_client({URL: echo}), connect(URL) as ws:
            pong = await ws.ping(b"manual")
            assert isinstance(pong, trio.Event)
            with trio.fail_after(5):
                await pong.wait()
            assert ws.latency > 0  # measured by the library on trio's clock, here the real one

    trio.run(main)


def test_hooks_are_shared_when_nested_and_undone_on_error() -> None:
    async def main() -> None:
        with pytest.raises(KeyError):
            async with wsfake.patch_client({URL: echo}):
                async with wsfake.patch_client({"ws://inner.test/*": echo}):
                    assert hooks() != ORIGINALS | TRIO_ORIGINALS
                    async with connect("ws://inner.test/") as ws, connect(URL) as outer:
                        await ws.send("inner")
                        await outer.send("outer")
                        assert (await ws.recv(), await outer.recv()) == ("inner", "outer")
                assert hooks() != ORIGINALS | TRIO_ORIGINALS
                raise KeyError("test body failed")
        assert hooks() == ORIGINALS | TRIO_ORIGINALS

    run(main)


@pytest.mark.network
def test_pass_through_reaches_a_real_server_on_127_0_0_1() -> None:
    from websockets.trio.server import serve

    async def real_echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(f"real:{message}")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(serve, real_echo, 0, host="127.0.0.1"))
            async with server:
                port = server.listeners[0].socket.getsockname()[1]
                real_url = f"ws://127.0.0.1:{port}/"
                async with wsfake.patch_client() as net:
                    net.route(URL, echo)
                    net.pass_through(f"{real_url}*")
                    for url, expected in [(real_url, "real:a"), (URL, "a")]:
                        async with connect(url) as ws:
                            await ws.send("a")
                            assert await ws.recv() == expected
                assert net.routes[0].call_count == 1

    trio.run(main)
