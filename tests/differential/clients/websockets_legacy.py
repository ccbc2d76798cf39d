"""Differential drivers for the legacy ``websockets`` asyncio client (``websockets.legacy.client.connect``).

The legacy API differs from the new asyncio client: ``extra_headers`` instead of
``additional_headers``, ``response_headers`` instead of ``response``, no
``recv_streaming`` (``recv`` reassembles fragments), ``InvalidStatusCode``
instead of ``InvalidStatus``, and ``async for`` reconnects with a backoff set by
class attributes (made zero here by a subclass, as a user would).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import warnings
from collections.abc import AsyncIterator
from typing import Any

import websockets
from runner import Client, Trace

from clients._websockets import PingCounter, closed, describe, opened_legacy, raised

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # "websockets.legacy is deprecated"
    from websockets.legacy.client import Connect, connect

CLIENT = Client("websockets (legacy asyncio)", "asyncio", websockets.__version__, describe=describe)


class QuickReconnect(Connect):
    """``connect`` with no backoff between attempts (the defaults wait seconds)."""

    BACKOFF_INITIAL = 0.0
    BACKOFF_MIN = 0.0


# Helpers shared by the drivers


async def until_closed(ws: Any, trace: Trace) -> None:
    """Record every message until the connection closes, then the close."""
    try:
        while True:
            trace.received(await ws.recv())
    except websockets.exceptions.ConnectionClosed as exc:
        raised(trace, exc)
    closed(trace, ws)


async def echo(url: str, trace: Trace, messages: list[Any], **options: Any) -> None:
    async with connect(url, **options) as ws:
        opened_legacy(trace, ws)
        for message in messages:
            await ws.send(message)
            trace.received(await ws.recv())
    closed(trace, ws)


async def closes(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await until_closed(ws, trace)


async def opens(url: str, trace: Trace, **options: Any) -> None:
    """Connect (recording a failure to), then close at once."""
    ws = await connect(url, **options)
    opened_legacy(trace, ws)
    await ws.close()
    closed(trace, ws)


async def concurrent(url: str, trace: Trace) -> None:
    # Every connection is open before any closes: the server's log has one order, not a race.
    open_count = 0
    all_open = asyncio.Event()

    async def one(i: int) -> Any:
        nonlocal open_count
        async with connect(url) as ws:
            await ws.send(f"c{i}")
            reply = await ws.recv()
            open_count += 1
            if open_count == 50:
                all_open.set()
            await all_open.wait()
        return reply

    trace.add("replies", await asyncio.gather(*[one(i) for i in range(50)]))


async def keepalive(url: str, trace: Trace) -> None:
    async with connect(url, ping_interval=0.02, ping_timeout=5) as ws:
        while ws.latency == 0:
            await asyncio.sleep(0.01)
        await ws.send("still alive")
        trace.received(await ws.recv())
    closed(trace, ws)


async def client_ping(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        latency = await asyncio.wait_for(await ws.ping(b"abc"), 5)
        trace.add("pong", latency >= 0)
    closed(trace, ws)


async def backpressure(url: str, trace: Trace) -> None:
    async with connect(url, compression=None) as ws:
        for i in range(256):  # 4 MiB: more than socket buffers and max_queue hold
            await ws.send(f"{i:05d}" + "b" * 16379)
        trace.add("all sent")
        trace.received(await ws.recv())
    closed(trace, ws)


async def invalid_utf8_from_client(url: str, trace: Trace) -> None:
    async with connect(url, compression=None) as ws:
        ws.transport.write(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))  # a masked text frame, invalid UTF-8
        await until_closed(ws, trace)


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
    await echo(url, trace, ["x" * 999], compression=None)


@CLIENT.driver()
async def h_at_max_size(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x" * 1000], compression=None)


@CLIENT.driver()
async def h_over_max_size(url: str, trace: Trace) -> None:
    async with connect(url, compression=None) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


@CLIENT.driver("h_over_client_max_size", "a_over_client_max_size")
async def over_client_max_size(url: str, trace: Trace) -> None:
    async with connect(url, max_size=1000) as ws:
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_fragmented_client_sends(url: str, trace: Trace) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"p"
        yield b"q"

    async with connect(url) as ws:
        await ws.send(["x", "y", "z"])
        await ws.send(parts())
        trace.received(await ws.recv())
    closed(trace, ws)


@CLIENT.driver()
async def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    # No recv_streaming in the legacy client: recv() reassembles each fragmented message.
    async with connect(url) as ws:
        trace.received(await ws.recv())
        trace.received(await ws.recv())
    closed(trace, ws)


@CLIENT.driver("h_client_ping", "a_client_ping")
async def _client_ping(url: str, trace: Trace) -> None:
    await client_ping(url, trace)


@CLIENT.driver()
async def h_server_ping(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        trace.received(await ws.recv())
    closed(trace, ws)


@CLIENT.driver()
async def h_keepalive(url: str, trace: Trace) -> None:
    await keepalive(url, trace)


@CLIENT.driver(
    *[f"h_server_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)],
    "h_server_close_unicode",
    "h_server_close_long_reason",
    "h_handler_returns",
    "h_handler_raises",
    "h_server_abort",
    "h_invalid_utf8",
    *[f"a_app_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)],
    "a_close_reason_unicode",
    "a_close_reason_long",
    "a_exception_after_accept",
    "a_return_after_accept",
)
async def server_close(url: str, trace: Trace) -> None:
    await closes(url, trace)


@CLIENT.driver()
async def h_client_close_1000(url: str, trace: Trace) -> None:
    ws = await connect(url)
    await ws.send("one")
    await ws.close()
    closed(trace, ws)


@CLIENT.driver()
async def h_client_close_4000(url: str, trace: Trace) -> None:
    ws = await connect(url)
    await ws.close(4000, "client leaves")
    closed(trace, ws)
    try:
        await ws.recv()
    except websockets.exceptions.ConnectionClosed as exc:
        raised(trace, exc)


@CLIENT.driver()
async def h_double_close(url: str, trace: Trace) -> None:
    ws = await connect(url)
    await ws.close(4001, "first")
    await ws.close(4002, "second")
    closed(trace, ws)


@CLIENT.driver()
async def h_context_exit_on_error(url: str, trace: Trace) -> None:
    try:
        async with connect(url) as ws:
            await ws.send("then fail")
            raise KeyError("client bug")
    except KeyError:
        trace.add("client raised")
    closed(trace, ws)


@CLIENT.driver()
async def h_burst_before_read(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await asyncio.sleep(0.05)
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_subprotocol(url: str, trace: Trace) -> None:
    async with connect(url, subprotocols=["v1", "v2"]) as ws:
        opened_legacy(trace, ws)
        trace.received(await ws.recv())


@CLIENT.driver()
async def h_no_common_subprotocol(url: str, trace: Trace) -> None:
    await opens(url, trace, subprotocols=["v9"])


@CLIENT.driver(
    "h_missing_subprotocol",
    "h_deny_403",
    "h_deny_404",
    "h_invalid_request_line",
    "a_invalid_request_line",
    "a_close_before_accept",
    "a_denial_response",
    "a_exception_before_accept",
    "a_return_before_accept",
)
async def refused(url: str, trace: Trace) -> None:
    await opens(url, trace)


@CLIENT.driver()
async def h_request_headers(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "one"), ("x-custom", "two"), ("Authorization", "Bearer t")]
    async with connect(url, extra_headers=headers, origin="https://app.example", user_agent_header="agent/1.0") as ws:
        trace.add("server saw", json.loads(await ws.recv()))


@CLIENT.driver()
async def h_query_and_path(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        trace.received(await ws.recv())


@CLIENT.driver("h_deflate_large", "a_deflate_large")
async def deflate_large(url: str, trace: Trace) -> None:
    await echo(url, trace, ["chat event " * 20000, b"\x00" * 100000])


@CLIENT.driver("h_no_deflate_client", "a_no_deflate")
async def no_deflate_client(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"], compression=None)


@CLIENT.driver()
async def h_no_deflate_server(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"])


@CLIENT.driver("h_concurrent", "a_concurrent")
async def _concurrent(url: str, trace: Trace) -> None:
    await concurrent(url, trace)


@CLIENT.driver()
async def h_reconnect_after_503(url: str, trace: Trace) -> None:
    from servers import _seen

    _seen.clear()
    async with contextlib.aclosing(QuickReconnect(url).__aiter__()) as attempts:
        async for ws in attempts:
            await ws.send("back")
            trace.received(await ws.recv())
            break
    closed(trace, ws)


@CLIENT.driver("h_open_timeout", "a_open_timeout")
async def open_timeout(url: str, trace: Trace) -> None:
    await opens(url, trace, open_timeout=0.2)


@CLIENT.driver()
async def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        for i in range(10):
            await ws.send(f"q{i}")
    closed(trace, ws)


@CLIENT.driver("h_backpressure", "a_backpressure")
async def _backpressure(url: str, trace: Trace) -> None:
    await backpressure(url, trace)


@CLIENT.driver("h_invalid_utf8_from_client", "a_invalid_utf8_from_client")
async def _invalid_utf8_from_client(url: str, trace: Trace) -> None:
    await invalid_utf8_from_client(url, trace)


# ASGI targets (uvicorn with each WebSocket implementation)


@CLIENT.driver()
async def a_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", b"\x01\x02", "", b""])


@CLIENT.driver()
async def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    await opens(url, trace, subprotocols=["v1", "v2"])


@CLIENT.driver()
async def a_accept_unoffered_subprotocol(url: str, trace: Trace) -> None:
    await opens(url, trace, subprotocols=["v1"])


@CLIENT.driver()
async def a_no_common_subprotocol(url: str, trace: Trace) -> None:
    await opens(url, trace, subprotocols=["v9"])


@CLIENT.driver()
async def a_client_close_code(url: str, trace: Trace) -> None:
    ws = await connect(url)
    await ws.close(4000, "client leaves")
    closed(trace, ws)


@CLIENT.driver()
async def a_scope(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "A"), ("x-custom", "B")]
    async with connect(
        url, extra_headers=headers, origin="https://app.example", user_agent_header="agent/2", subprotocols=["p1", "p2"]
    ) as ws:
        trace.add("scope", json.loads(await ws.recv()))


@CLIENT.driver()
async def a_burst(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await asyncio.sleep(0.05)
        await until_closed(ws, trace)


@CLIENT.driver()
async def a_send_after_disconnect(url: str, trace: Trace) -> None:
    # Close without sending first: a message then a close frame would race inside the real server.
    async with connect(url) as ws:
        pass
    closed(trace, ws)


@CLIENT.driver()
async def a_keepalive(url: str, trace: Trace) -> None:
    await keepalive(url, trace)


# Server options and hooks


@CLIENT.driver(
    "h_server_header_none",
    "h_server_header_custom",
    "a_server_header_off",
    "h_process_request_strips_extensions",
    "h_process_response_adds_header",
)
async def opened_then_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x"])


@CLIENT.driver("h_process_request_breaks_key", "h_process_request_raises", "h_process_response_replaces")
async def handshake_answer(url: str, trace: Trace) -> None:
    await opens(url, trace)


@CLIENT.driver("h_origins")
async def wrong_origin(url: str, trace: Trace) -> None:
    await opens(url, trace, origin="https://evil.example")


@CLIENT.driver("h_select_subprotocol")
async def select_subprotocol(url: str, trace: Trace) -> None:
    async with connect(url, subprotocols=["v1", "v2", "v3"]) as ws:
        opened_legacy(trace, ws)
        trace.received(await ws.recv())


@CLIENT.driver("h_over_max_size_deflate", "a_over_max_size_deflate")
async def over_max_size_deflate(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


@CLIENT.driver("a_over_max_size")
async def over_max_size(url: str, trace: Trace) -> None:
    async with connect(url, compression=None) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


@CLIENT.driver("a_keepalive_off", "a_keepalive_on", "h_keepalive_none", "h_keepalive_zero")
async def server_pings(url: str, trace: Trace) -> None:
    counter = PingCounter(trace)
    with counter as logger:
        async with connect(url, ping_interval=None, logger=logger) as ws:
            await until_closed(ws, trace)
    trace.add("server pinged", counter.pings > 0)


@CLIENT.driver("a_close_nocode", "a_close_reason_124")
async def app_closes(url: str, trace: Trace) -> None:
    await closes(url, trace)


@CLIENT.driver("h_connection_attributes")
async def connection_attributes(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        trace.received(await ws.recv())
    closed(trace, ws)
