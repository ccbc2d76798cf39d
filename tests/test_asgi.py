"""ASGI targets: FastAPI, Starlette and plain ASGI callables, run as uvicorn runs them."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

import wsfake

pytestmark = pytest.mark.asyncio


def recording_app(log: list[Any], script: list[dict[str, Any]] | None = None) -> Any:
    """A raw ASGI app that records its scope and events and sends ``script`` after connect."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")
        log.append(scope)
        log.append(await receive())
        for message in script or [{"type": "websocket.accept"}]:
            await send(message)
        while True:
            event = await receive()
            log.append(event)
            if event["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": event.get("text"), "bytes": event.get("bytes")})

    return app


async def test_scope_is_complete() -> None:
    log: list[Any] = []
    url = "wss://api.example.com/chat/r%C3%A9sum%C3%A9%20x?token=a%20b&x=1"
    async with (
        wsfake.patch_client(recording_app(log)),
        websockets.connect(
            url,
            subprotocols=["v1", "v2"],
            additional_headers=[("X-Custom", "A"), ("x-custom", "B")],
            origin="https://app.example.com",
            user_agent_header="tester/1.0",
        ) as ws,
    ):
        await ws.send("hi")
        assert await ws.recv() == "hi"
    scope = log[0]
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "wss"
    assert scope["path"] == "/chat/résumé x"
    assert scope["raw_path"] == b"/chat/r%C3%A9sum%C3%A9%20x"
    assert scope["root_path"] == ""
    assert scope["query_string"] == b"token=a%20b&x=1"
    headers = scope["headers"]
    assert all(name == name.lower() and isinstance(value, bytes) for name, value in headers)
    assert [v for n, v in headers if n == b"x-custom"] == [b"A", b"B"]
    assert (b"host", b"api.example.com") in headers
    assert (b"origin", b"https://app.example.com") in headers
    assert (b"user-agent", b"tester/1.0") in headers
    assert scope["subprotocols"] == ["v1", "v2"]
    assert scope["server"] == ("127.0.0.1", 443)  # a socket reports an IP address; in memory the server is local
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["state"] == {}
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert log[1] == {"type": "websocket.connect"}
    assert log[2] == {"type": "websocket.receive", "text": "hi"}
    assert log[3] == {"type": "websocket.disconnect", "code": 1000, "reason": ""}


async def test_accept_with_subprotocol_and_headers() -> None:
    log: list[Any] = []
    accept = {"type": "websocket.accept", "subprotocol": "v2", "headers": [(b"x-app", b"yes")]}
    async with (
        wsfake.patch_client(recording_app(log, [accept])) as net,
        websockets.connect("ws://localhost:8000/", subprotocols=["v1", "v2"]) as ws,
    ):
        assert ws.subprotocol == "v2"
        assert ws.response.headers["x-app"] == "yes"
    assert net.routes[0].calls.last.subprotocol == "v2"


async def test_accepting_an_unoffered_subprotocol_is_answered_as_uvicorn_answers_it() -> None:
    # uvicorn sends the 101 with the subprotocol the app chose; the client library refuses it.
    accept = {"type": "websocket.accept", "subprotocol": "v9"}
    async with wsfake.patch_client(recording_app([], [accept])) as net:
        with pytest.raises(websockets.exceptions.NegotiationError, match="unsupported subprotocol: v9"):
            await websockets.connect("ws://localhost:8000/", subprotocols=["v1"])
    assert net.routes[0].calls.last.status == 101 and net.routes[0].calls.last.subprotocol == "v9"
    assert net.errors == []


async def test_close_before_accept_is_403() -> None:
    close = {"type": "websocket.close", "code": 1008}
    async with wsfake.patch_client(recording_app([], [close])) as net:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect("ws://localhost:8000/")
    response = info.value.response
    assert response.status_code == 403 and response.body == b""
    assert response.headers["Content-Length"] == "0"
    assert net.routes[0].calls.last.status == 403


async def test_denial_response_extension() -> None:
    script = [
        {"type": "websocket.http.response.start", "status": 404, "headers": [(b"x-why", b"no-room")]},
        {"type": "websocket.http.response.body", "body": b"room ", "more_body": True},
        {"type": "websocket.http.response.body", "body": b"not found"},
    ]
    async with wsfake.patch_client(recording_app([], script)):
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect("ws://localhost:8000/room/9")
    response = info.value.response
    assert (response.status_code, response.headers["x-why"], bytes(response.body)) == (
        404,
        "no-room",
        b"room not found",
    )
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


app = FastAPI()


@app.websocket("/ws/{user}")
async def chat(websocket: WebSocket, user: str) -> None:
    if user == "boom":
        raise ValueError("exception before accept")
    await websocket.accept()
    if user == "crash":
        raise RuntimeError("exception after accept")
    if user == "quit":
        return
    if user == "bye":
        await websocket.close(4000, "bye now")
        return
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"user": user, "text": text})
    except WebSocketDisconnect as exc:
        disconnects.append((exc.code, exc.reason))


disconnects: list[tuple[int, str]] = []


async def test_fastapi_echo_and_disconnect_event() -> None:
    disconnects.clear()
    async with (
        wsfake.patch_client({"ws://localhost:8000/*": app}),
        websockets.connect("ws://localhost:8000/ws/ann") as ws,
    ):
        await ws.send("hello")
        assert await ws.recv() == '{"user":"ann","text":"hello"}'
        await ws.close(4001, "done")
    assert disconnects == [(4001, "done")]


async def test_fastapi_exception_before_accept_is_500_and_reraised() -> None:
    async with wsfake.patch_client(app, raise_server_errors=False) as net:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect("ws://localhost:8000/ws/boom")
    assert info.value.response.status_code == 500
    assert info.value.response.body == b"Internal Server Error"
    assert [str(e) for e in net.errors] == ["exception before accept"] and isinstance(net.errors[0], ValueError)
    # Without raise_server_errors=False, the same error is raised when the context exits.
    with pytest.raises(ValueError, match="exception before accept"):
        async with wsfake.patch_client(app):
            with pytest.raises(InvalidStatus):
                await websockets.connect("ws://localhost:8000/ws/boom")


@pytest.mark.parametrize("user", ["crash", "quit"])
async def test_fastapi_end_after_accept_drops_the_connection_like_uvicorn(user: str) -> None:
    async with (
        wsfake.patch_client(app, raise_server_errors=False) as net,
        websockets.connect(f"ws://localhost:8000/ws/{user}") as ws,
    ):
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.rcvd is None and ws.protocol.close_code == 1006
    assert [type(e) for e in net.errors] == ([RuntimeError] if user == "crash" else [])


async def test_fastapi_close_with_code_and_reason() -> None:
    async with wsfake.patch_client(app), websockets.connect("ws://localhost:8000/ws/bye") as ws:
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert (ws.protocol.close_code, ws.protocol.close_reason) == (4000, "bye now")


async def test_unknown_fastapi_route_is_403() -> None:
    async with wsfake.patch_client(app):
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect("ws://localhost:8000/nope")
    assert info.value.response.status_code == 403


async def test_starlette_app_with_lifespan_state() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"greeting": "hello from lifespan"}
        events.append("shutdown")

    async def endpoint(websocket: Any) -> None:
        events.append("connection")
        await websocket.accept()
        await websocket.send_text(websocket.state.greeting)
        await websocket.close()

    starlette_app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)
    async with wsfake.patch_client(starlette_app):
        assert events == []
        async with websockets.connect("ws://localhost:8000/ws") as ws:
            assert await ws.recv() == "hello from lifespan"
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
        assert events == ["startup", "connection"]
    assert events == ["startup", "connection", "shutdown"]


async def test_lifespan_opt_out_and_apps_without_lifespan() -> None:
    calls: list[str] = []

    async def app_without_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["type"])
        if scope["type"] != "websocket":
            raise ValueError("only websockets")
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})

    async with wsfake.patch_client(app_without_lifespan), websockets.connect("ws://x/") as ws:
        await ws.wait_closed()
    assert calls == ["lifespan", "websocket"]
    calls.clear()
    async with (
        wsfake.patch_client(wsfake.ASGI(app_without_lifespan, lifespan=False)),
        websockets.connect("ws://x/") as ws,
    ):
        await ws.wait_closed()
    assert calls == ["websocket"]


async def test_lifespan_startup_failure_refuses_connections() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})

    refusals: list[ConnectionRefusedError] = []
    async with wsfake.patch_client(app, raise_server_errors=False) as net:
        for _ in range(2):
            with pytest.raises(ConnectionRefusedError) as info:
                await websockets.connect("ws://x/")
            refusals.append(info.value)
    # Refused as a closed port is (errno ECONNREFUSED), naming the target and the startup error.
    assert [r.errno for r in refusals] == [errno.ECONNREFUSED] * 2
    assert all("failed to start" in str(r) and "database unreachable" in str(r) for r in refusals)
    assert [str(e) for e in net.errors] == ["ASGI lifespan lifespan.startup.failed: database unreachable"]


async def test_send_after_disconnect_raises_client_disconnected() -> None:
    outcome: list[BaseException] = []
    gone = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            outcome.append(exc)
        gone.set()

    async with wsfake.patch_client(app):
        async with websockets.connect("ws://x/"):
            pass
        await asyncio.wait_for(gone.wait(), 5)
    assert isinstance(outcome[0], wsfake.ClientDisconnected)


async def test_wrong_message_order_is_an_app_error_with_uvicorns_message() -> None:
    script = [{"type": "websocket.send", "text": "before accept"}]
    async with wsfake.patch_client(recording_app([], script), raise_server_errors=False) as net:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect("ws://x/")
    assert info.value.response.status_code == 500
    assert len(net.errors) == 1 and isinstance(net.errors[0], RuntimeError)
    assert str(net.errors[0]).startswith("Expected ASGI message 'websocket.accept', 'websocket.close'")


async def test_messages_sent_right_after_accept_arrive_before_the_close() -> None:
    script: list[dict[str, Any]] = [{"type": "websocket.accept"}]
    script += [{"type": "websocket.send", "bytes": bytes([i])} for i in range(50)]
    script += [{"type": "websocket.close", "code": 1000}]
    async with wsfake.patch_client(recording_app([], script)), websockets.connect("ws://x/") as ws:
        assert [await ws.recv() for _ in range(50)] == [bytes([i]) for i in range(50)]
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


async def test_invalid_utf8_from_the_client_gets_1007() -> None:
    log: list[Any] = []
    async with wsfake.patch_client(recording_app(log)):
        ws = await websockets.connect("ws://x/", compression=None)
        # websockets' public API cannot send invalid UTF-8; write a raw text frame.
        ws.transport.write(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1007
    assert log[-1]["type"] == "websocket.disconnect"
