"""Differential drivers for httpx-ws's async client (``aconnect_ws``), on asyncio.

httpx-ws has no reconnect loop, no permessage-deflate and no message size limit
(``max_message_size_bytes`` is the size of each read); the drivers express each
scenario as a user of its API would. Not expressible: a request line that is not
valid HTTP (httpx encodes the space), a plain GET (plain HTTP is never served in
memory), and a compressed message over the server's limit. Its trio flavour and the sync ``connect_ws``
run the same hooks and are covered by ``tests/clients/test_httpx_ws.py``.

Exceptions that leave ``async with aconnect_ws(...)`` come out of httpx-ws's task
group; drivers catch what they expect inside the block, and ``describe`` records
a group with its members. An upgrade error's body is read by a response event
hook (httpx-ws closes the response before raising), as a user who wants it would.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import anyio
import httpx
import wsproto.events
from httpx_ws import (
    AsyncWebSocketSession,
    WebSocketDisconnect,
    WebSocketInvalidTypeReceived,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)
from runner import Client, Trace, picked_headers, qualified

from clients.raw import VIOLATIONS

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


def describe(exc: BaseException) -> list[Any]:
    """An httpx-ws (or httpx) exception as its class and the attributes a user can observe."""
    name = qualified(exc)
    if isinstance(exc, BaseExceptionGroup):
        return [name, [describe(member) for member in exc.exceptions]]
    if isinstance(exc, WebSocketDisconnect):
        return [name, exc.code, exc.reason]
    if isinstance(exc, WebSocketUpgradeError):
        response = exc.response
        body = response.content.decode("latin-1") if response.is_stream_consumed else None
        return [name, response.status_code, response.reason_phrase, body, _headers(response)]
    if isinstance(exc, WebSocketInvalidTypeReceived):
        return [name, type(exc.event).__name__]
    return [name, str(exc)]


CLIENT = Client("httpx-ws", "asyncio", version("httpx-ws"), describe=describe)


# Helpers shared by the drivers


def http(url: str) -> str:
    """The URL as httpx-ws's documentation writes it (http://); the ws:// form is used by some drivers as given."""
    return "http://" + url.removeprefix("ws://")


def _headers(response: httpx.Response) -> dict[str, list[str]]:
    return picked_headers(response.headers.multi_items())


def opened(trace: Trace, ws: AsyncWebSocketSession) -> None:
    assert ws.response is not None
    trace.add("open", ws.response.status_code, ws.response.http_version, ws.subprotocol, _headers(ws.response))


def closed(trace: Trace, ws: AsyncWebSocketSession) -> None:
    trace.add("closed", ws.connection.state.name)


def received(trace: Trace, event: wsproto.events.Event) -> None:
    if isinstance(event, wsproto.events.Message):
        trace.received(event.data)
    else:
        trace.add("event", type(event).__name__)


async def ready(ws: AsyncWebSocketSession) -> None:
    """One round trip (a ping): a websockets.serve handler starts after the handshake, and has by the pong.

    Drivers whose client never waits for the server call it first, so that the run cannot end
    before the handler has started (the runner waits only for server code that is running).
    """
    pong = await ws.ping()
    with anyio.fail_after(5):
        await pong.wait()


async def until_closed(ws: AsyncWebSocketSession, trace: Trace) -> None:
    """Record every message until the connection ends, then how it ended."""
    try:
        while True:
            received(trace, await ws.receive())
    except (WebSocketDisconnect, WebSocketNetworkError) as exc:
        trace.add("raised", *describe(exc))


async def _read_refusals(response: httpx.Response) -> None:
    if response.status_code != 101:
        await response.aread()


@asynccontextmanager
async def reading_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client that reads the body of a refused upgrade, so that the error's response keeps it."""
    async with httpx.AsyncClient(event_hooks={"response": [_read_refusals]}) as client:
        yield client


async def refused(url: str, trace: Trace, **options: Any) -> None:
    """Connect to a URL expected to refuse the upgrade; record the error (or the session if it is accepted)."""
    async with reading_client() as client:
        try:
            async with aconnect_ws(url, client, **options) as ws:
                opened(trace, ws)
        except WebSocketUpgradeError as exc:
            trace.add("raised", *describe(exc))


async def echo(url: str, trace: Trace, messages: list[str | bytes], **options: Any) -> None:
    async with aconnect_ws(url, **options) as ws:
        opened(trace, ws)
        for message in messages:
            if isinstance(message, str):
                await ws.send_text(message)
            else:
                await ws.send_bytes(message)
            received(trace, await ws.receive())
    closed(trace, ws)


async def session_until_closed(url: str, trace: Trace, **options: Any) -> None:
    async with aconnect_ws(url, **options) as ws:
        await until_closed(ws, trace)
    closed(trace, ws)


INVALID_UTF8_FRAME = bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28])  # a masked text frame, invalid UTF-8


# Handler targets (websockets.serve)


@CLIENT.driver()
async def h_text_echo(url: str, trace: Trace) -> None:
    await echo(http(url), trace, ["hello", "ünïcødé ✓", "x" * 5000])


@CLIENT.driver()
async def h_binary_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, [b"\x00\x01\xff", bytes(range(256)) * 20])


@CLIENT.driver()
async def h_empty_messages(url: str, trace: Trace) -> None:
    await echo(http(url), trace, ["", b""])


@CLIENT.driver()
async def h_under_max_size(url: str, trace: Trace) -> None:
    await echo(http(url), trace, ["x" * 999])


@CLIENT.driver()
async def h_at_max_size(url: str, trace: Trace) -> None:
    await echo(http(url), trace, ["x" * 1000])


@CLIENT.driver()
async def h_over_max_size(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        await ws.send_text("x" * 1001)
        await until_closed(ws, trace)
    closed(trace, ws)


@CLIENT.driver("h_over_client_max_size", "a_over_client_max_size")
async def over_client_max_size(url: str, trace: Trace) -> None:
    # max_message_size_bytes is the size of each read, not a limit: the whole message arrives.
    async with aconnect_ws(http(url), max_message_size_bytes=1000) as ws:
        message = await ws.receive()
        trace.add("message", type(message).__name__, len(message.data))
    closed(trace, ws)


@CLIENT.driver()
async def h_fragmented_client_sends(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        for fragment in ("x", "y"):
            await ws.send(wsproto.events.TextMessage(fragment, message_finished=False))
        await ws.send(wsproto.events.TextMessage("z", message_finished=True))
        await ws.send(wsproto.events.BytesMessage(b"p", message_finished=False))
        await ws.send(wsproto.events.BytesMessage(b"q", message_finished=True))
        received(trace, await ws.receive())
    closed(trace, ws)


@CLIENT.driver()
async def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        trace.add("text", await ws.receive_text())
        trace.add("bytes", (await ws.receive_bytes()).hex())
    closed(trace, ws)


@CLIENT.driver("h_client_ping", "a_client_ping")
async def client_ping(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        pong = await ws.ping(b"abc")
        with anyio.fail_after(5):
            await pong.wait()
        trace.add("pong", pong.is_set())
    closed(trace, ws)


@CLIENT.driver()
async def h_server_ping(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        received(trace, await ws.receive())
    closed(trace, ws)


@CLIENT.driver("h_keepalive", "a_keepalive")
async def keepalive(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url), keepalive_ping_interval_seconds=0.02, keepalive_ping_timeout_seconds=5) as ws:
        for i in range(3):
            await anyio.sleep(0.05)  # a few keepalive pings each way in between
            await ws.send_text(f"alive {i}")
            received(trace, await ws.receive())
    closed(trace, ws)


@CLIENT.driver(*[f"h_server_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)])
@CLIENT.driver(*[f"a_app_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)])
@CLIENT.driver("h_server_close_unicode", "h_server_close_long_reason", "a_close_reason_unicode", "a_close_reason_long")
@CLIENT.driver("h_handler_returns", "h_handler_raises", "h_server_abort", "h_invalid_utf8")
@CLIENT.driver("a_exception_after_accept", "a_return_after_accept")
async def server_ends(url: str, trace: Trace) -> None:
    await session_until_closed(http(url), trace)


@CLIENT.driver("h_burst_before_read", "a_burst")
async def burst(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        await anyio.sleep(0.05)
        await until_closed(ws, trace)
    closed(trace, ws)


@CLIENT.driver()
async def h_client_close_1000(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        await ready(ws)
        await ws.send_text("one")
        await ws.close()
        closed(trace, ws)


@CLIENT.driver("h_client_close_4000", "a_client_close_code")
async def client_close_4000(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        await ready(ws)
        await ws.close(4000, "client leaves")
        closed(trace, ws)


@CLIENT.driver()
async def h_double_close(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        await ready(ws)
        await ws.close(4001, "first")
        await ws.close(4002, "second")
        closed(trace, ws)


@CLIENT.driver()
async def h_context_exit_on_error(url: str, trace: Trace) -> None:
    try:
        async with aconnect_ws(http(url)) as ws:
            await ready(ws)
            await ws.send_text("then fail")
            raise KeyError("client bug")
    except KeyError:
        trace.add("client raised", "KeyError")
    except BaseExceptionGroup as group:
        trace.add("client raised", describe(group))
    closed(trace, ws)


@CLIENT.driver()
async def h_subprotocol(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url), subprotocols=["v1", "v2"]) as ws:
        opened(trace, ws)
        received(trace, await ws.receive())


@CLIENT.driver()
async def h_no_common_subprotocol(url: str, trace: Trace) -> None:
    await refused(http(url), trace, subprotocols=["v9"])


@CLIENT.driver()
async def h_missing_subprotocol(url: str, trace: Trace) -> None:
    await refused(http(url), trace)


@CLIENT.driver("h_deny_403", "h_deny_404", "a_close_before_accept", "a_denial_response")
@CLIENT.driver("a_exception_before_accept", "a_return_before_accept")
async def denied(url: str, trace: Trace) -> None:
    await refused(http(url), trace)


@CLIENT.driver()
async def h_request_headers(url: str, trace: Trace) -> None:
    headers = httpx.Headers(
        [
            ("X-Custom", "one"),
            ("x-custom", "two"),
            ("Authorization", "Bearer t"),
            ("Origin", "https://app.example"),
            ("User-Agent", "agent/1.0"),
        ]
    )
    async with aconnect_ws(http(url), headers=headers) as ws:
        trace.add("server saw", json.loads(await ws.receive_text()))


@CLIENT.driver()
async def h_query_and_path(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        received(trace, await ws.receive())


@CLIENT.driver("h_deflate_large", "a_deflate_large")
async def large_messages(url: str, trace: Trace) -> None:
    # httpx-ws offers no compression: the large messages travel as they are.
    await echo(http(url), trace, ["chat event " * 20000, b"\x00" * 100000])


@CLIENT.driver("h_no_deflate_client", "h_no_deflate_server", "a_no_deflate")
async def no_deflate(url: str, trace: Trace) -> None:
    await echo(http(url), trace, ["plain"])


@CLIENT.driver("h_concurrent", "a_concurrent")
async def concurrent(url: str, trace: Trace) -> None:
    replies: list[str] = [""] * 50

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with aconnect_ws(http(url), client) as ws:
            await ws.send_text(f"c{i}")
            replies[i] = await ws.receive_text()

    async with httpx.AsyncClient() as client, anyio.create_task_group() as group:
        for i in range(50):
            group.start_soon(one, client, i)
    trace.add("replies", replies)


@CLIENT.driver()
async def h_reconnect_after_503(url: str, trace: Trace) -> None:
    from servers import _seen

    _seen.clear()
    async with reading_client() as client:
        for _ in range(2):  # httpx-ws has no reconnect loop: a user retries a 503 by hand
            try:
                async with aconnect_ws(http(url), client) as ws:
                    await ws.send_text("back")
                    received(trace, await ws.receive())
                break
            except WebSocketUpgradeError as exc:
                trace.add("raised", *describe(exc))


@CLIENT.driver("h_open_timeout", "a_open_timeout")
async def open_timeout(url: str, trace: Trace) -> None:
    try:
        async with aconnect_ws(http(url), timeout=0.2) as ws:
            opened(trace, ws)
    except httpx.TimeoutException as exc:
        trace.add("raised", *describe(exc))


@CLIENT.driver()
async def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        await ready(ws)
        for i in range(10):
            await ws.send_text(f"q{i}")
    closed(trace, ws)


@CLIENT.driver("h_backpressure", "a_backpressure")
async def backpressure(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        for i in range(256):  # 4 MiB: more than socket buffers hold
            await ws.send_text(f"{i:05d}" + "b" * 16379)
        trace.add("all sent")
        received(trace, await ws.receive())
    closed(trace, ws)


@CLIENT.driver("h_invalid_utf8_from_client", "a_invalid_utf8_from_client")
async def invalid_utf8_from_client(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        await ws.stream.write(INVALID_UTF8_FRAME)
        await until_closed(ws, trace)
    closed(trace, ws)


# ASGI targets (uvicorn with each WebSocket implementation)


@CLIENT.driver()
async def a_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", b"\x01\x02", "", b""])


@CLIENT.driver()
async def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url), subprotocols=["v1", "v2"]) as ws:
        opened(trace, ws)


@CLIENT.driver()
async def a_accept_unoffered_subprotocol(url: str, trace: Trace) -> None:
    # httpx-ws does not check the server's choice against its offer.
    async with aconnect_ws(http(url), subprotocols=["v1"]) as ws:
        opened(trace, ws)


@CLIENT.driver()
async def a_no_common_subprotocol(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url), subprotocols=["v9"]) as ws:
        opened(trace, ws)


@CLIENT.driver()
async def a_scope(url: str, trace: Trace) -> None:
    headers = {"X-Custom": "A", "Origin": "https://app.example", "User-Agent": "agent/2"}
    async with aconnect_ws(http(url), headers=headers, subprotocols=["p1", "p2"]) as ws:
        trace.add("scope", json.loads(await ws.receive_text()))


@CLIENT.driver()
async def a_send_after_disconnect(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        pass
    closed(trace, ws)


# Protocol violations, written on httpx-ws's own stream (what the raw client sends)


def _violation(data: bytes) -> Any:
    async def drive(url: str, trace: Trace) -> None:
        async with aconnect_ws(http(url)) as ws:
            await ws.stream.write(data)
            await until_closed(ws, trace)
        closed(trace, ws)

    return drive


for _name, _data in VIOLATIONS.items():
    CLIENT.driver(f"h_{_name}", f"a_{_name}")(_violation(_data))


@CLIENT.driver("h_bad_key", "a_bad_key")
async def bad_key(url: str, trace: Trace) -> None:
    async def break_key(request: httpx.Request) -> None:
        request.headers["Sec-WebSocket-Key"] = "not-a-key"

    async with httpx.AsyncClient(event_hooks={"request": [break_key], "response": [_read_refusals]}) as client:
        try:
            async with aconnect_ws(http(url), client) as ws:
                opened(trace, ws)
        except WebSocketUpgradeError as exc:
            trace.add("raised", *describe(exc))


@CLIENT.driver("h_client_vanishes", "a_client_vanishes")
async def client_vanishes(url: str, trace: Trace) -> None:
    # The connection ends without a close frame: httpx-ws's own close then finds the stream closed.
    async with aconnect_ws(http(url)) as ws:
        await ready(ws)
        await ws.send_text("last words")
        await ws.stream.aclose()
    closed(trace, ws)


# Server options and hooks


@CLIENT.driver("h_server_header_none", "h_server_header_custom", "a_server_header_off")
@CLIENT.driver("h_process_request_strips_extensions", "h_process_response_adds_header")
async def opened_then_echo(url: str, trace: Trace) -> None:
    await echo(http(url), trace, ["x"])


@CLIENT.driver("h_process_request_breaks_key", "h_process_request_raises", "h_process_response_replaces")
async def handshake_answer(url: str, trace: Trace) -> None:
    await refused(http(url), trace)


@CLIENT.driver()
async def h_origins(url: str, trace: Trace) -> None:
    await refused(http(url), trace, headers={"Origin": "https://evil.example"})


@CLIENT.driver()
async def h_select_subprotocol(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url), subprotocols=["v1", "v2", "v3"]) as ws:
        opened(trace, ws)
        received(trace, await ws.receive())


@CLIENT.driver()
async def a_over_max_size(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        await ws.send_text("x" * 1001)
        await until_closed(ws, trace)
    closed(trace, ws)


@CLIENT.driver("a_keepalive_off", "a_keepalive_on", "h_keepalive_none", "h_keepalive_zero")
@CLIENT.driver("a_close_nocode", "a_close_reason_124")
async def held_until_the_server_closes(url: str, trace: Trace) -> None:
    # httpx-ws answers the server's pings itself and does not show them; the server closes the held connection.
    await session_until_closed(http(url), trace, keepalive_ping_interval_seconds=None)


@CLIENT.driver()
async def h_connection_attributes(url: str, trace: Trace) -> None:
    async with aconnect_ws(http(url)) as ws:
        received(trace, await ws.receive())
    closed(trace, ws)
