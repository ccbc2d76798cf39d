"""Differential drivers for the ``websockets`` trio client (``websockets.trio.client.connect``, websockets 17+).

On older releases ``websockets.trio`` does not exist and importing this module
fails, so the client is skipped. The trio client cannot be awaited directly
(it needs a nursery): connections are opened with ``async with``, concurrency
uses nurseries, ``ping()`` returns a ``trio.Event`` and ``aclose()`` closes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import trio
import websockets
from runner import Client, Trace
from websockets.trio.client import connect

from clients._websockets import PingCounter, closed, describe, opened, raised

CLIENT = Client("websockets (trio)", "trio", websockets.__version__, describe=describe)

driver = CLIENT.driver


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
        opened(trace, ws)
        for message in messages:
            await ws.send(message)
            trace.received(await ws.recv())
    closed(trace, ws)


async def closes(url: str, trace: Trace, **options: Any) -> None:
    async with connect(url, **options) as ws:
        await until_closed(ws, trace)


async def opens(url: str, trace: Trace, **options: Any) -> None:
    """Connect (recording a failure to), then close at once."""
    async with connect(url, **options) as ws:
        opened(trace, ws)
    closed(trace, ws)


async def concurrent(url: str, trace: Trace) -> None:
    # Every connection is open before any closes: the server's log has one order, not a race.
    replies: list[Any] = [None] * 50
    open_count = 0
    all_open = trio.Event()

    async def one(i: int) -> None:
        nonlocal open_count
        async with connect(url) as ws:
            await ws.send(f"c{i}")
            replies[i] = await ws.recv()
            open_count += 1
            if open_count == len(replies):
                all_open.set()
            await all_open.wait()

    async with trio.open_nursery() as nursery:
        for i in range(len(replies)):
            nursery.start_soon(one, i)
    trace.add("replies", replies)


async def client_ping(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        pong = await ws.ping(b"abc")
        with trio.fail_after(5):
            await pong.wait()
        trace.add("pong", ws.latency >= 0)
    closed(trace, ws)


async def keepalive(url: str, trace: Trace) -> None:
    async with connect(url, ping_interval=0.02, ping_timeout=5) as ws:
        while ws.latency == 0:
            await trio.sleep(0.01)
        await ws.send("still alive")
        trace.received(await ws.recv())
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
        await ws.stream.send_all(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))  # a masked text frame, invalid UTF-8
        await until_closed(ws, trace)


async def burst(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await trio.sleep(0.05)
        await until_closed(ws, trace)


# Handler targets (websockets.serve)


@driver("h_text_echo")
async def h_text_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", "ünïcødé ✓", "x" * 5000])


@driver("h_binary_echo")
async def h_binary_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, [b"\x00\x01\xff", bytes(range(256)) * 20])


@driver("h_empty_messages")
async def h_empty_messages(url: str, trace: Trace) -> None:
    await echo(url, trace, ["", b""])


@driver("h_under_max_size")
async def h_under_max_size(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x" * 999], compression=None)


@driver("h_at_max_size")
async def h_at_max_size(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x" * 1000], compression=None)


@driver("h_over_max_size")
async def h_over_max_size(url: str, trace: Trace) -> None:
    async with connect(url, compression=None) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


@driver("h_over_client_max_size", "a_over_client_max_size")
async def over_client_max_size(url: str, trace: Trace) -> None:
    await closes(url, trace, max_size=1000)


@driver("h_fragmented_client_sends")
async def h_fragmented_client_sends(url: str, trace: Trace) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"p"
        yield b"q"

    async with connect(url) as ws:
        await ws.send(["x", "y", "z"])
        await ws.send(parts())
        trace.received(await ws.recv())
    closed(trace, ws)


@driver("h_fragmented_server_sends")
async def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        trace.add("fragments", [f async for f in ws.recv_streaming()])
        trace.received(await ws.recv())
    closed(trace, ws)


@driver("h_client_ping", "a_client_ping")
async def _client_ping(url: str, trace: Trace) -> None:
    await client_ping(url, trace)


@driver("h_server_ping")
async def h_server_ping(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        trace.received(await ws.recv())
    closed(trace, ws)


@driver("h_keepalive", "a_keepalive")
async def _keepalive(url: str, trace: Trace) -> None:
    await keepalive(url, trace)


@driver(
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


@driver("h_client_close_1000")
async def h_client_close_1000(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await ws.send("one")
        await ws.aclose()
        closed(trace, ws)


@driver("h_client_close_4000")
async def h_client_close_4000(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await ws.aclose(4000, "client leaves")
        closed(trace, ws)
        try:
            await ws.recv()
        except websockets.exceptions.ConnectionClosed as exc:
            raised(trace, exc)


@driver("h_double_close")
async def h_double_close(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await ws.aclose(4001, "first")
        await ws.aclose(4002, "second")
    closed(trace, ws)


@driver("h_context_exit_on_error")
async def h_context_exit_on_error(url: str, trace: Trace) -> None:
    try:
        async with connect(url) as ws:
            await ws.send("then fail")
            raise KeyError("client bug")
    except KeyError:
        trace.add("client raised")
    closed(trace, ws)


@driver("h_burst_before_read", "a_burst")
async def _burst(url: str, trace: Trace) -> None:
    await burst(url, trace)


@driver("h_subprotocol")
async def h_subprotocol(url: str, trace: Trace) -> None:
    async with connect(url, subprotocols=["v1", "v2"]) as ws:
        opened(trace, ws)
        trace.received(await ws.recv())


@driver("h_no_common_subprotocol", "a_no_common_subprotocol")
async def no_common_subprotocol(url: str, trace: Trace) -> None:
    await opens(url, trace, subprotocols=["v9"])


@driver(
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


@driver("h_request_headers")
async def h_request_headers(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "one"), ("x-custom", "two"), ("Authorization", "Bearer t")]
    async with connect(
        url, additional_headers=headers, origin="https://app.example", user_agent_header="agent/1.0"
    ) as ws:
        trace.add("server saw", json.loads(await ws.recv()))


@driver("h_query_and_path")
async def h_query_and_path(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        trace.received(await ws.recv())


@driver("h_deflate_large", "a_deflate_large")
async def deflate_large(url: str, trace: Trace) -> None:
    await echo(url, trace, ["chat event " * 20000, b"\x00" * 100000])


@driver("h_no_deflate_client", "a_no_deflate")
async def no_deflate_client(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"], compression=None)


@driver("h_no_deflate_server")
async def h_no_deflate_server(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"])


@driver("h_concurrent", "a_concurrent")
async def _concurrent(url: str, trace: Trace) -> None:
    await concurrent(url, trace)


@driver("h_reconnect_after_503")
async def h_reconnect_after_503(url: str, trace: Trace) -> None:
    from contextlib import aclosing

    from servers import _seen

    def no_delay() -> Any:
        while True:
            yield 0.0

    _seen.clear()
    async with aclosing(connect(url, reconnect_delays=no_delay).__aiter__()) as attempts:
        async for ws in attempts:
            await ws.send("back")
            trace.received(await ws.recv())
            await ws.aclose()  # leaving the loop closes the connection with 1011 (GeneratorExit)
            break
    closed(trace, ws)


@driver("h_open_timeout", "a_open_timeout")
async def open_timeout(url: str, trace: Trace) -> None:
    await opens(url, trace, open_timeout=0.2)


@driver("h_close_with_queued_messages")
async def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        for i in range(10):
            await ws.send(f"q{i}")
    closed(trace, ws)


@driver("h_backpressure", "a_backpressure")
async def _backpressure(url: str, trace: Trace) -> None:
    await backpressure(url, trace)


@driver("h_invalid_utf8_from_client", "a_invalid_utf8_from_client")
async def _invalid_utf8_from_client(url: str, trace: Trace) -> None:
    await invalid_utf8_from_client(url, trace)


# ASGI targets (uvicorn with each WebSocket implementation)


@driver("a_echo")
async def a_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", b"\x01\x02", "", b""])


@driver("a_accept_subprotocol_headers")
async def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    await opens(url, trace, subprotocols=["v1", "v2"])


@driver("a_accept_unoffered_subprotocol")
async def a_accept_unoffered_subprotocol(url: str, trace: Trace) -> None:
    await opens(url, trace, subprotocols=["v1"])


@driver("a_client_close_code")
async def a_client_close_code(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await ws.aclose(4000, "client leaves")
    closed(trace, ws)


@driver("a_scope")
async def a_scope(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "A"), ("x-custom", "B")]
    async with connect(
        url,
        additional_headers=headers,
        origin="https://app.example",
        user_agent_header="agent/2",
        subprotocols=["p1", "p2"],
    ) as ws:
        trace.add("scope", json.loads(await ws.recv()))


@driver("a_send_after_disconnect")
async def a_send_after_disconnect(url: str, trace: Trace) -> None:
    # Close without sending first: a message then a close frame would race inside the real server.
    async with connect(url) as ws:
        pass
    closed(trace, ws)


# Server options and hooks


@driver(
    "h_server_header_none",
    "h_server_header_custom",
    "a_server_header_off",
    "h_process_request_strips_extensions",
    "h_process_response_adds_header",
)
async def opened_then_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x"])


@driver("h_process_request_breaks_key", "h_process_request_raises", "h_process_response_replaces")
async def handshake_answer(url: str, trace: Trace) -> None:
    await opens(url, trace)


@driver("h_origins")
async def wrong_origin(url: str, trace: Trace) -> None:
    await opens(url, trace, origin="https://evil.example")


@driver("h_select_subprotocol")
async def select_subprotocol(url: str, trace: Trace) -> None:
    async with connect(url, subprotocols=["v1", "v2", "v3"]) as ws:
        opened(trace, ws)
        trace.received(await ws.recv())


@driver("h_over_max_size_deflate", "a_over_max_size_deflate")
async def over_max_size_deflate(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


@driver("a_over_max_size")
async def over_max_size(url: str, trace: Trace) -> None:
    async with connect(url, compression=None) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


@driver("a_keepalive_off", "a_keepalive_on", "h_keepalive_none", "h_keepalive_zero")
async def server_pings(url: str, trace: Trace) -> None:
    counter = PingCounter(trace)
    with counter as logger:
        async with connect(url, ping_interval=None, logger=logger) as ws:
            await until_closed(ws, trace)
    trace.add("server pinged", counter.pings > 0)


@driver("a_close_nocode", "a_close_reason_124")
async def app_closes(url: str, trace: Trace) -> None:
    await closes(url, trace)


@driver("h_connection_attributes")
async def connection_attributes(url: str, trace: Trace) -> None:
    async with connect(url) as ws:
        trace.received(await ws.recv())
    closed(trace, ws)
