"""Differential drivers for the aiohttp client (``ClientSession.ws_connect``).

Each driver runs against the real servers on 127.0.0.1 and against wsfake; the
traces must be equal (see runner.py for what a trace holds and what is normalised).
A trace records what aiohttp shows: message types by name (``TEXT``, ``CLOSE``,
``CLOSED``, ``ERROR``...), ``close_code``, ``exception()``, and the exceptions
``ws_connect`` raises with their attributes. aiohttp cannot send fragmented
messages, so ``h_fragmented_client_sends`` has no driver.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from runner import Client, Trace, picked_headers, qualified
from yarl import URL


def describe(exc: BaseException) -> list[Any]:
    """An aiohttp exception as its class and the attributes a user can observe."""
    name = qualified(exc)
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        headers = picked_headers(exc.headers.items()) if exc.headers is not None else None
        return [name, exc.status, exc.message, headers]
    if isinstance(exc, aiohttp.ClientConnectorError):
        return [name, qualified(exc.os_error), exc.os_error.errno, exc.host, exc.ssl]
    if isinstance(exc, aiohttp.WebSocketError):
        return [name, exc.code, str(exc)]
    return [name, str(exc)]


CLIENT = Client("aiohttp", "asyncio", aiohttp.__version__, describe=describe)


# Helpers shared by the drivers


@asynccontextmanager
async def session(**options: Any) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(**options) as client:
        yield client


def message(trace: Trace, msg: aiohttp.WSMessage) -> None:
    """Record a received message as aiohttp shows it: its type's name, data and extra."""
    data = msg.data
    if isinstance(data, (bytes, bytearray)):  # a PONG's data is a bytearray before aiohttp 3.10
        data = bytes(data).hex()
    elif isinstance(data, BaseException):
        data = describe(data)
    trace.add("msg", msg.type.name, data, msg.extra)


def opened(trace: Trace, ws: aiohttp.ClientWebSocketResponse) -> None:
    response = ws._response
    trace.add("open", response.status, ws.protocol, picked_headers(response.headers.items()))


def closed(trace: Trace, ws: aiohttp.ClientWebSocketResponse) -> None:
    exc = ws.exception()
    trace.add("closed", ws.closed, ws.close_code, None if exc is None else describe(exc))


async def until_closed(ws: aiohttp.ClientWebSocketResponse, trace: Trace) -> None:
    """Record every message up to and including CLOSED, then the connection's state."""
    while True:
        msg = await ws.receive()
        message(trace, msg)
        if msg.type is aiohttp.WSMsgType.CLOSED:
            break
    closed(trace, ws)


async def echo(url: str, trace: Trace, messages: list[str | bytes], **options: Any) -> None:
    async with session() as client, client.ws_connect(url, **options) as ws:
        opened(trace, ws)
        for item in messages:
            if isinstance(item, str):
                await ws.send_str(item)
            else:
                await ws.send_bytes(item)
            message(trace, await ws.receive())
    closed(trace, ws)


async def connect_only(url: str, trace: Trace, **options: Any) -> None:
    """``ws_connect`` for a handshake expected to fail; a success is recorded and closed."""
    async with session() as client:
        ws = await client.ws_connect(url, **options)
        opened(trace, ws)
        await ws.close()
        closed(trace, ws)


async def keepalive(url: str, trace: Trace, text: str) -> None:
    """Heartbeat pings: wait for the pong to one (answering the server's own pings), then echo."""
    async with session() as client, client.ws_connect(url, heartbeat=0.02, autoping=False) as ws:
        while (msg := await ws.receive()).type is not aiohttp.WSMsgType.PONG:
            assert msg.type is aiohttp.WSMsgType.PING, msg
            await ws.pong(msg.data)
        trace.add("heartbeat answered")
        await ws.send_str(text)
        while (msg := await ws.receive()).type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG):
            if msg.type is aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
        message(trace, msg)
    closed(trace, ws)


async def client_ping(url: str, trace: Trace, payload: bytes) -> None:
    async with session() as client, client.ws_connect(url, autoping=False) as ws:
        await ws.ping(payload)
        message(trace, await ws.receive())
    closed(trace, ws)


async def invalid_utf8_from_client(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        ws._writer.transport.write(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))  # a masked text frame, invalid UTF-8
        await until_closed(ws, trace)


async def concurrent(url: str, trace: Trace) -> None:
    async with session() as client:

        async def one(i: int) -> Any:
            async with client.ws_connect(url) as ws:
                await ws.send_str(f"c{i}")
                return (await ws.receive()).data

        trace.add("replies", await asyncio.gather(*[one(i) for i in range(50)]))


async def backpressure(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        for i in range(256):  # 4 MiB: more than socket buffers hold
            await ws.send_str(f"{i:05d}" + "b" * 16379)
        trace.add("all sent")
        message(trace, await ws.receive())
    closed(trace, ws)


# Handler targets (websockets.serve)


@CLIENT.driver()
async def h_text_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", "ünïcødé ✓", "x" * 5000])


@CLIENT.driver()
async def h_binary_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, [b"\x00\x01\xff", bytes(range(256)) * 20])


@CLIENT.driver()
async def h_empty_messages(url: str, trace: Trace) -> None:
    await echo(url, trace, ["", b""])


@CLIENT.driver()
async def h_under_max_size(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x" * 999])


@CLIENT.driver()
async def h_at_max_size(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x" * 1000])


@CLIENT.driver()
async def h_over_max_size(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        await ws.send_str("x" * 1001)
        await until_closed(ws, trace)


@CLIENT.driver("h_over_client_max_size", "a_over_client_max_size")
async def over_client_max_size(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url, max_msg_size=1000) as ws:
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        message(trace, await ws.receive())
        message(trace, await ws.receive())
    closed(trace, ws)


@CLIENT.driver()
async def h_client_ping(url: str, trace: Trace) -> None:
    await client_ping(url, trace, b"abc")


@CLIENT.driver()
async def h_server_ping(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        message(trace, await ws.receive())
    closed(trace, ws)


@CLIENT.driver()
async def h_keepalive(url: str, trace: Trace) -> None:
    await keepalive(url, trace, "still alive")


@CLIENT.driver(*[f"h_server_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)])
@CLIENT.driver(*[f"a_app_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)])
@CLIENT.driver("h_server_close_unicode", "h_server_close_long_reason", "a_close_reason_unicode", "a_close_reason_long")
@CLIENT.driver("h_handler_returns", "h_handler_raises", "h_server_abort", "h_invalid_utf8")
@CLIENT.driver("a_exception_after_accept", "a_return_after_accept")
async def server_close(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_client_close_1000(url: str, trace: Trace) -> None:
    async with session() as client:
        ws = await client.ws_connect(url)
        await ws.send_str("one")
        trace.add("close returned", await ws.close())
        closed(trace, ws)


@CLIENT.driver("h_client_close_4000", "a_client_close_code")
async def client_close_4000(url: str, trace: Trace) -> None:
    async with session() as client:
        ws = await client.ws_connect(url)
        trace.add("close returned", await ws.close(code=4000, message=b"client leaves"))
        closed(trace, ws)
        message(trace, await ws.receive())


@CLIENT.driver()
async def h_double_close(url: str, trace: Trace) -> None:
    async with session() as client:
        ws = await client.ws_connect(url)
        trace.add("close returned", await ws.close(code=4001, message=b"first"))
        trace.add("close returned", await ws.close(code=4002, message=b"second"))
        closed(trace, ws)


@CLIENT.driver()
async def h_context_exit_on_error(url: str, trace: Trace) -> None:
    async with session() as client:
        try:
            async with client.ws_connect(url) as ws:
                await ws.send_str("then fail")
                raise KeyError("client bug")
        except KeyError:
            trace.add("client raised")
        closed(trace, ws)


@CLIENT.driver("h_burst_before_read", "a_burst")
async def burst(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        await asyncio.sleep(0.05)
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_subprotocol(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url, protocols=["v1", "v2"]) as ws:
        opened(trace, ws)
        message(trace, await ws.receive())


@CLIENT.driver()
async def h_no_common_subprotocol(url: str, trace: Trace) -> None:
    await connect_only(url, trace, protocols=["v9"])


@CLIENT.driver("h_missing_subprotocol", "h_deny_403", "h_deny_404")
@CLIENT.driver("a_close_before_accept", "a_denial_response", "a_exception_before_accept", "a_return_before_accept")
async def denied(url: str, trace: Trace) -> None:
    await connect_only(url, trace)


@CLIENT.driver()
async def h_request_headers(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "one"), ("x-custom", "two"), ("Authorization", "Bearer t"), ("User-Agent", "agent/1.0")]
    async with session() as client, client.ws_connect(url, headers=headers, origin="https://app.example") as ws:
        trace.add("server saw", json.loads((await ws.receive()).data))


@CLIENT.driver()
async def h_query_and_path(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        message(trace, await ws.receive())


@CLIENT.driver("h_deflate_large", "a_deflate_large")
async def deflate_large(url: str, trace: Trace) -> None:
    await echo(url, trace, ["chat event " * 20000, b"\x00" * 100000], compress=15)


@CLIENT.driver("h_no_deflate_client", "a_no_deflate")
async def no_deflate_client(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"], compress=0)


@CLIENT.driver()
async def h_no_deflate_server(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"], compress=15)


@CLIENT.driver("h_concurrent", "a_concurrent")
async def concurrent_driver(url: str, trace: Trace) -> None:
    await concurrent(url, trace)


@CLIENT.driver()
async def h_reconnect_after_503(url: str, trace: Trace) -> None:
    # aiohttp has no reconnect loop: the user's retry is the loop.
    from servers import _seen

    _seen.clear()
    async with session() as client:
        try:
            await client.ws_connect(url)
        except aiohttp.WSServerHandshakeError as exc:
            trace.add("raised", *describe(exc))
        async with client.ws_connect(url) as ws:
            await ws.send_str("back")
            message(trace, await ws.receive())
        closed(trace, ws)


@CLIENT.driver("h_open_timeout", "a_open_timeout")
async def open_timeout(url: str, trace: Trace) -> None:
    async with session(timeout=aiohttp.ClientTimeout(total=0.2)) as client:
        await client.ws_connect(url)


@CLIENT.driver()
async def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        for i in range(10):
            await ws.send_str(f"q{i}")
    closed(trace, ws)


@CLIENT.driver("h_backpressure", "a_backpressure")
async def backpressure_driver(url: str, trace: Trace) -> None:
    await backpressure(url, trace)


@CLIENT.driver("h_invalid_utf8_from_client", "a_invalid_utf8_from_client")
async def invalid_utf8_from_client_driver(url: str, trace: Trace) -> None:
    await invalid_utf8_from_client(url, trace)


@CLIENT.driver("h_invalid_request_line", "a_invalid_request_line")
async def invalid_request_line(url: str, trace: Trace) -> None:
    # yarl percent-encodes a space unless the URL is marked as already encoded.
    await connect_only(URL(url, encoded=True), trace)  # type: ignore[arg-type]


# ASGI targets (uvicorn with each WebSocket implementation)


@CLIENT.driver()
async def a_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", b"\x01\x02", "", b""])


@CLIENT.driver()
async def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url, protocols=["v1", "v2"]) as ws:
        opened(trace, ws)


@CLIENT.driver()
async def a_accept_unoffered_subprotocol(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url, protocols=["v1"]) as ws:
        opened(trace, ws)


@CLIENT.driver()
async def a_no_common_subprotocol(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url, protocols=["v9"]) as ws:
        opened(trace, ws)


@CLIENT.driver()
async def a_scope(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "A"), ("x-custom", "B"), ("User-Agent", "agent/2")]
    async with (
        session() as client,
        client.ws_connect(url, headers=headers, origin="https://app.example", protocols=["p1", "p2"]) as ws,
    ):
        trace.add("scope", json.loads((await ws.receive()).data))


@CLIENT.driver()
async def a_client_ping(url: str, trace: Trace) -> None:
    await client_ping(url, trace, b"x")


@CLIENT.driver()
async def a_send_after_disconnect(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        pass
    closed(trace, ws)


@CLIENT.driver()
async def a_keepalive(url: str, trace: Trace) -> None:
    await keepalive(url, trace, "alive")


# Server options and hooks


@CLIENT.driver(
    "h_server_header_none", "h_server_header_custom", "a_server_header_off", "h_process_response_adds_header"
)
async def opened_then_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x"])


@CLIENT.driver()
async def h_process_request_strips_extensions(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x"], compress=15)


@CLIENT.driver("h_process_request_breaks_key", "h_process_request_raises", "h_process_response_replaces")
async def handshake_answer(url: str, trace: Trace) -> None:
    await connect_only(url, trace)


@CLIENT.driver()
async def h_origins(url: str, trace: Trace) -> None:
    await connect_only(url, trace, origin="https://evil.example")


@CLIENT.driver()
async def h_select_subprotocol(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url, protocols=["v1", "v2", "v3"]) as ws:
        opened(trace, ws)
        message(trace, await ws.receive())


@CLIENT.driver("h_over_max_size_deflate", "a_over_max_size_deflate")
async def over_max_size_deflate(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url, compress=15) as ws:
        await ws.send_str("x" * 1001)
        await until_closed(ws, trace)


@CLIENT.driver()
async def a_over_max_size(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        await ws.send_str("x" * 1001)
        await until_closed(ws, trace)


async def server_pings(url: str, trace: Trace, wait: float | None) -> None:
    """Whether the server pings (``autoping=False`` shows PINGs), then the client closes.

    A handler route closes by itself after its delay; an ASGI route waits for the client, which gives up
    after ``wait`` seconds without a ping (the pinging servers ping every 20 ms).
    """
    async with session() as client, client.ws_connect(url, autoping=False) as ws:
        try:
            msg = await ws.receive(timeout=wait)
        except asyncio.TimeoutError:
            trace.add("server pinged", False)
        else:
            trace.add("server pinged", msg.type is aiohttp.WSMsgType.PING)
            if msg.type is aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
            else:
                message(trace, msg)
    closed(trace, ws)


@CLIENT.driver("h_keepalive_none", "h_keepalive_zero")
async def handler_pings(url: str, trace: Trace) -> None:
    await server_pings(url, trace, None)


@CLIENT.driver("a_keepalive_off", "a_keepalive_on")
async def asgi_pings(url: str, trace: Trace) -> None:
    await server_pings(url, trace, 0.5)


@CLIENT.driver("a_close_nocode", "a_close_reason_124")
async def app_closes(url: str, trace: Trace) -> None:
    await server_close(url, trace)


@CLIENT.driver()
async def h_connection_attributes(url: str, trace: Trace) -> None:
    async with session() as client, client.ws_connect(url) as ws:
        message(trace, await ws.receive())
    closed(trace, ws)


@CLIENT.driver("h_client_vanishes", "a_client_vanishes")
async def client_vanishes(url: str, trace: Trace) -> None:
    # Closing the session closes its connector's connections: no close frame is sent. The message first
    # (as the raw client does) ends the handler's wait whenever it starts, so nothing races.
    client = aiohttp.ClientSession()
    ws = await client.ws_connect(url)
    await ws.send_str("last words")
    await client.close()
    message(trace, await ws.receive())
    closed(trace, ws)
