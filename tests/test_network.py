"""Leaving a network: the body's failure wins, departures are not errors, and stopping goes as uvicorn stops."""

from __future__ import annotations

import asyncio
import errno
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import websockets
from fastapi import FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from wsproto.events import AcceptConnection, CloseConnection

import wsfake
from wsfake import ServerConnection
from wsproto_client import WsprotoClient

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.asyncio

URL = "ws://localhost:8000/ws"


async def broken(ws: ServerConnection) -> None:
    await ws.recv()
    raise ValueError("server bug")


def notes(exc: BaseException) -> str:
    return "\n".join(getattr(exc, "__notes__", []))


# A. The body's exception always wins


@pytest.mark.parametrize("form", ["async with", "with"])
async def test_the_bodys_failure_propagates_unchanged_with_the_server_error_attached(form: str) -> None:
    own_failure = AssertionError("the test's own assertion")

    async def body() -> None:
        async with websockets.connect(URL) as ws:
            await ws.send("trigger")
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
        raise own_failure

    with pytest.raises(AssertionError) as info:
        if form == "with":
            with wsfake.patch_client(broken):
                await body()
        else:
            async with wsfake.patch_client(broken):
                await body()
    assert info.value is own_failure
    assert "wsfake: meanwhile the server raised" in notes(info.value)
    assert "ValueError: server bug" in notes(info.value)
    assert 'raise ValueError("server bug")' in notes(info.value)  # with the server's traceback


async def test_the_clients_own_exception_wins_too() -> None:
    async def never_answers(ws: ServerConnection) -> None:
        await ws.recv()
        raise KeyError("server side")

    with pytest.raises(TimeoutError) as info:
        async with wsfake.patch_client(never_answers), websockets.connect(URL) as ws:
            await ws.send("x")
            with anyio.fail_after(0.05):
                await asyncio.Event().wait()
    assert "KeyError: 'server side'" in notes(info.value)


async def test_without_a_body_failure_server_errors_are_raised() -> None:
    with pytest.raises(ValueError, match="server bug") as info:
        async with wsfake.patch_client(broken), websockets.connect(URL) as ws:
            await ws.send("trigger")
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
    assert not notes(info.value)


async def test_several_server_errors_are_raised_as_a_group() -> None:
    with pytest.raises(ExceptionGroup) as info:
        async with wsfake.patch_client(broken):
            for _ in range(2):
                async with websockets.connect(URL) as ws:
                    await ws.send("trigger")
                    with pytest.raises(ConnectionClosedError):
                        await ws.recv()
    assert [str(e) for e in info.value.exceptions] == ["server bug", "server bug"]


# A. Exceptions that only mirror the client's normal departure

tutorial = FastAPI()


@tutorial.websocket("/ws")
async def tutorial_endpoint(websocket: WebSocket) -> None:
    # FastAPI's tutorial: no `except WebSocketDisconnect`.
    await websocket.accept()
    while True:
        data = await websocket.receive_text()
        await websocket.send_text(f"echo: {data}")


async def reader(ws: ServerConnection) -> None:
    while True:
        await ws.send(f"echo: {await ws.recv()}")


@pytest.mark.parametrize("target", [tutorial, reader], ids=["fastapi-tutorial", "handler-recv-loop"])
async def test_an_error_mirroring_a_normal_close_is_a_warning_not_a_failure(target: Any) -> None:
    with pytest.warns(wsfake.ClientDepartureWarning, match="only because the client left normally") as warned:
        async with wsfake.patch_client(target) as net, websockets.connect(URL) as ws:
            await ws.send("hi")
            assert await ws.recv() == "echo: hi"
    assert net.errors == []
    assert [type(e).__name__ for e in net.departures] == [
        "WebSocketDisconnect" if target is tutorial else "ConnectionClosedOK"
    ]
    assert len(warned) == 1
    entry = net.routes[0].calls.last.transcript[-1]
    assert (entry.direction, entry.kind) == ("!", "departure")


async def test_raise_departure_errors_makes_them_fail() -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect):
        async with wsfake.patch_client(tutorial, raise_departure_errors=True), websockets.connect(URL) as ws:
            await ws.send("hi")
            await ws.recv()


async def test_an_error_after_an_abnormal_close_still_fails() -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as info:
        async with wsfake.patch_client(tutorial):
            ws = await websockets.connect(URL)
            await ws.close(4000, "client crashed")
    assert info.value.code == 4000


# B. Stopping as uvicorn (ASGI) and websockets.serve (handlers) stop


def shutdown_app(log: list[Any]) -> Any:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.append("startup")
        yield
        log.append("shutdown")

    async def endpoint(websocket: Any) -> None:
        await websocket.accept()
        message = await websocket.receive()
        log.append(("app received", message["type"], message.get("code")))

    return Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)


async def parked(ws: ServerConnection) -> None:
    try:
        await ws.recv()
    except ConnectionClosed as exc:
        parked.log.append(("handler saw", exc.sent.code if exc.sent else None))  # type: ignore[attr-defined]


parked.log = []  # type: ignore[attr-defined]


@pytest.mark.parametrize("form", ["async with", "with"])
@pytest.mark.parametrize("kind", ["asgi", "handler"])
async def test_exit_closes_live_connections_as_the_real_server_stops(kind: str, form: str) -> None:
    # ASGI: 1012 as all three uvicorn implementations send it, the app hearing it at once, then
    # lifespan shutdown. Handlers: 1001, as websockets.serve. The sync exit inside a running loop
    # sends the same close frame: the client sees the same thing.
    log: list[Any] = []
    parked.log = log  # type: ignore[attr-defined]
    target = shutdown_app(log) if kind == "asgi" else parked
    if form == "with":
        with wsfake.patch_client(target):
            ws = await websockets.connect(URL)
    else:
        async with wsfake.patch_client(target):
            ws = await websockets.connect(URL)
    expected = 1012 if kind == "asgi" else 1001
    with pytest.raises(ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (expected, "")
    if form == "with":
        return  # the server side finishes on the loop's next turns: a sync exit cannot await it
    if kind == "asgi":
        assert log == ["startup", ("app received", "websocket.disconnect", 1012), "shutdown"]
    else:
        assert log == [("handler saw", 1001)]
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("wsfake")]


async def test_a_client_reconnecting_during_exit_is_refused() -> None:
    # The handler goes on after its 1001 until the client has tried to reconnect: that attempt
    # happens while the exit waits for the server side, when the server no longer accepts.
    attempted = asyncio.Event()
    attempts: list[BaseException] = []

    async def lingering(ws: ServerConnection) -> None:
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        await attempted.wait()

    async def reconnect_when_closed(ws: Any) -> None:
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        try:
            await websockets.connect(URL)
        except ConnectionRefusedError as exc:
            attempts.append(exc)
        finally:
            attempted.set()

    async with wsfake.patch_client(lingering):
        ws = await websockets.connect(URL)
        client = asyncio.get_running_loop().create_task(reconnect_when_closed(ws))
    await client
    assert len(attempts) == 1 and "the server is stopping" in str(attempts[0])
    assert attempts[0].errno == errno.ECONNREFUSED


async def test_a_handshake_whose_client_gave_up_does_not_delay_the_exit() -> None:
    async def hang(connection: ServerConnection, request: Any) -> None:
        await asyncio.Event().wait()

    with anyio.fail_after(5):  # far below shutdown_timeout: the exit must not wait for it
        async with wsfake.patch_client(shutdown_timeout=60) as net:
            net.route(URL, parked, process_request=hang, open_timeout=None)
            with pytest.raises(asyncio.TimeoutError):  # TimeoutError itself from Python 3.11 on
                await websockets.connect(URL, open_timeout=0.05)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("wsfake")]


@pytest.mark.parametrize("target", ["handler", "mock"])
async def test_a_client_that_never_closes_its_socket_after_the_closing_handshake_does_not_delay_the_exit(
    target: str,
) -> None:
    # websocket-client's WebSocketApp and trio-websocket answer the server's close frame and never close their
    # socket: the server waits for an EOF that only the socket's garbage collection would send.
    async def close_first(ws: ServerConnection) -> None:
        await ws.close(4001, "bye")

    with anyio.fail_after(5):  # far below shutdown_timeout: the exit must not wait for it
        async with wsfake.patch_client(shutdown_timeout=60) as net, anyio.create_task_group() as tasks:
            if target == "mock":
                server = net.mock(URL)

                async def close_from_the_mock() -> None:
                    conn = await server.connected()
                    assert await conn.close(4001, "bye") == (4001, "bye")

                tasks.start_soon(close_from_the_mock)
            else:
                net.route(URL, close_first)
            client, first = await WsprotoClient.connect(net, URL, close_when_done=False)
            assert isinstance(first, AcceptConnection)
            event = await client.next_event()
            assert isinstance(event, CloseConnection) and event.code == 4001
            await client.send(event.response())  # and its socket stays open
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("wsfake")]


async def test_a_handshake_in_progress_at_exit_is_answered_503() -> None:
    # websockets.serve lets a handshake in progress finish, then answers 503. An open connection's
    # handler hears the shutdown's 1001 and only then lets the slow handshake finish.
    entered = asyncio.Event()
    release = asyncio.Event()
    outcome: list[BaseException] = []

    async def slow(connection: ServerConnection, request: Any) -> None:
        if request.path == "/slow":
            entered.set()
            await release.wait()

    async def releases_on_shutdown(ws: ServerConnection) -> None:
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        release.set()

    async def attempt() -> None:
        try:
            await websockets.connect("ws://localhost:8000/slow")
        except websockets.exceptions.InvalidStatus as exc:
            outcome.append(exc)

    async with wsfake.patch_client() as net:
        net.route("ws://localhost:8000/*", releases_on_shutdown, process_request=slow)
        ws = await websockets.connect(URL)
        client = asyncio.get_running_loop().create_task(attempt())
        await entered.wait()
    await client
    assert ws.protocol.close_code == 1001  # ws.close_code is new in websockets 15
    assert len(outcome) == 1
    response = outcome[0].response  # type: ignore[attr-defined]
    assert (response.status_code, response.body) == (503, b"Server is shutting down.\n")


# Nothing waits forever


async def test_a_stuck_connection_fails_at_the_deadline_saying_who_waits_for_what() -> None:
    async def silent(ws: ServerConnection) -> None:
        await ws.recv()  # the handler waits for the client, which waits for the handler

    with pytest.raises(wsfake.DeadlineExceeded) as info:
        async with wsfake.patch_client(silent, deadline=0.2), websockets.connect(URL) as ws:
            await ws.recv()
    message = str(info.value)
    assert "nothing moved on any connection for" in message and "deadline 0.2 s" in message
    assert "ws://localhost:8000/ws: the handler waits in recv() for the client" in message
    assert "nothing is on its way to the client" in message
    assert "  +  " in message  # the transcript
    assert isinstance(info.value.__cause__, ConnectionClosedError)  # what the cut made the client raise


async def test_an_unanswered_handshake_is_reported_as_such() -> None:
    async def never_accepts(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await asyncio.Event().wait()

    with pytest.raises(wsfake.DeadlineExceeded, match="the app has not accepted or rejected the handshake"):
        async with wsfake.patch_client(wsfake.ASGI(never_accepts, lifespan=False), deadline=0.2):
            await websockets.connect(URL, open_timeout=None)


async def test_no_deadline_while_things_move() -> None:
    async def slow_stream(ws: ServerConnection) -> None:
        for i in range(6):
            await asyncio.sleep(0.05)
            await ws.send(str(i))

    async with wsfake.patch_client(slow_stream, deadline=0.15), websockets.connect(URL) as ws:
        assert [await ws.recv() for _ in range(6)] == [str(i) for i in range(6)]  # 0.3 s in all, never idle 0.15 s


# Memory: a finished connection is freed by reference counting


async def _echo_handler(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def _echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message.get("text")})


@pytest.mark.parametrize("kind", ["ASGI", "handler", "mock"])
async def test_a_finished_connection_leaves_no_cyclic_garbage(kind: str) -> None:
    """As with asyncio's own transports, nothing of a closed connection waits for the cycle collector.

    Thousands of connections in a suite would otherwise keep the collector busy
    (and the records already bound what a route keeps).
    """
    import gc

    async with wsfake.patch_client() as net:
        if kind == "mock":
            server = net.mock(URL)
        else:
            net.route(URL, wsfake.ASGI(_echo_app) if kind == "ASGI" else _echo_handler)

        async def one() -> None:
            async with websockets.connect(URL) as ws:
                if kind == "mock":
                    connection = await server.connected()
                    await ws.send("ping")
                    assert await connection.receive() == "ping"
                    await connection.send("pong")
                    assert await ws.recv() == "pong"
                else:
                    await ws.send("ping")
                    assert await ws.recv() == "ping"
            await ws.wait_closed()

        await one()  # whatever is created once (caches, the lifespan) is not counted
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(3):
                await one()
            while net.connections:
                await asyncio.sleep(0)
            gc.collect()
            garbage = list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        # Only wsfake's own cycles count: a client library may have cycles of its own, on any network (websockets
        # 14.0 does), and whatever they hold (our transport included) is collected with them.
        in_cycles = sorted({type(item).__module__ + "." + type(item).__qualname__ for item in _in_cycles(garbage)})
        assert [name for name in in_cycles if name.startswith(("wsfake", "wsproto", "h11"))] == []


def _in_cycles(garbage: list[Any]) -> list[Any]:
    """The objects of ``garbage`` that can reach themselves (members of a reference cycle)."""
    import gc

    ids = {id(item) for item in garbage}
    members = []
    for item in garbage:
        seen: set[int] = set()
        stack = list(gc.get_referents(item))
        while stack:
            other = stack.pop()
            if other is item:
                members.append(item)
                break
            if id(other) in seen or id(other) not in ids:
                continue
            seen.add(id(other))
            stack.extend(gc.get_referents(other))
    return members
