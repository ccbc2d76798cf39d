"""Differential drivers for the ``websockets`` asyncio client (``websockets.connect``).

Each driver runs against the real servers on 127.0.0.1 and against wsfake; the
traces must be equal (see runner.py for what a trace holds and what is normalised).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import websockets
from runner import Client, Trace

from clients._websockets import closed, describe, opened, raised

CLIENT = Client("websockets (asyncio)", "asyncio", websockets.__version__, describe=describe)


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
    async with websockets.connect(url, **options) as ws:
        opened(trace, ws)
        for message in messages:
            await ws.send(message)
            trace.received(await ws.recv())
    closed(trace, ws)


def _no_delay() -> Any:
    while True:
        yield 0.0


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
    async with websockets.connect(url, compression=None) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_over_client_max_size(url: str, trace: Trace) -> None:
    async with websockets.connect(url, max_size=1000) as ws:
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_fragmented_client_sends(url: str, trace: Trace) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"p"
        yield b"q"

    async with websockets.connect(url) as ws:
        await ws.send(["x", "y", "z"])
        await ws.send(parts())
        trace.received(await ws.recv())
    closed(trace, ws)


@CLIENT.driver()
async def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        trace.add("fragments", [f async for f in ws.recv_streaming()])
        trace.received(await ws.recv())
    closed(trace, ws)


@CLIENT.driver()
async def h_client_ping(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        latency = await asyncio.wait_for(await ws.ping(b"abc"), 5)
        trace.add("pong", latency >= 0)
    closed(trace, ws)


@CLIENT.driver()
async def h_server_ping(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        trace.received(await ws.recv())
    closed(trace, ws)


@CLIENT.driver()
async def h_keepalive(url: str, trace: Trace) -> None:
    async with websockets.connect(url, ping_interval=0.02, ping_timeout=5) as ws:
        while ws.latency == 0:
            await asyncio.sleep(0.01)
        await ws.send("still alive")
        trace.received(await ws.recv())
    closed(trace, ws)


@CLIENT.driver(*[f"h_server_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)])
@CLIENT.driver(*[f"a_app_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)])
async def server_close(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@CLIENT.driver(
    "h_server_close_unicode",
    "h_server_close_long_reason",
    "h_handler_returns",
    "h_handler_raises",
    "h_server_abort",
    "h_invalid_utf8",
    "a_exception_after_accept",
    "a_return_after_accept",
    "a_close_reason_unicode",
    "a_close_reason_long",
)
async def connect_and_read_until_closed(url: str, trace: Trace) -> None:
    """Scenarios where the server does everything: the client connects and reads until the connection closes."""
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_client_close_1000(url: str, trace: Trace) -> None:
    ws = await websockets.connect(url)
    await ws.send("one")
    await ws.close()
    closed(trace, ws)


@CLIENT.driver()
async def h_client_close_4000(url: str, trace: Trace) -> None:
    ws = await websockets.connect(url)
    await ws.close(4000, "client leaves")
    closed(trace, ws)
    try:
        await ws.recv()
    except websockets.exceptions.ConnectionClosed as exc:
        raised(trace, exc)


@CLIENT.driver()
async def h_double_close(url: str, trace: Trace) -> None:
    ws = await websockets.connect(url)
    await ws.close(4001, "first")
    await ws.close(4002, "second")
    closed(trace, ws)


@CLIENT.driver()
async def h_context_exit_on_error(url: str, trace: Trace) -> None:
    try:
        async with websockets.connect(url) as ws:
            await ws.send("then fail")
            raise KeyError("client bug")
    except KeyError:
        trace.add("client raised")
    closed(trace, ws)


@CLIENT.driver()
async def h_burst_before_read(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await asyncio.sleep(0.05)
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_subprotocol(url: str, trace: Trace) -> None:
    async with websockets.connect(url, subprotocols=["v1", "v2"]) as ws:
        opened(trace, ws)
        trace.received(await ws.recv())


@CLIENT.driver()
async def h_no_common_subprotocol(url: str, trace: Trace) -> None:
    await websockets.connect(url, subprotocols=["v9"])


@CLIENT.driver()
async def h_missing_subprotocol(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@CLIENT.driver()
async def h_deny_403(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@CLIENT.driver()
async def h_deny_404(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@CLIENT.driver()
async def h_request_headers(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "one"), ("x-custom", "two"), ("Authorization", "Bearer t")]
    async with websockets.connect(
        url, additional_headers=headers, origin="https://app.example", user_agent_header="agent/1.0"
    ) as ws:
        trace.add("server saw", json.loads(await ws.recv()))


@CLIENT.driver()
async def h_query_and_path(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        trace.received(await ws.recv())


@CLIENT.driver()
async def h_deflate_large(url: str, trace: Trace) -> None:
    await echo(url, trace, ["chat event " * 20000, b"\x00" * 100000])


@CLIENT.driver()
async def h_no_deflate_client(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"], compression=None)


@CLIENT.driver()
async def h_no_deflate_server(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"])


@CLIENT.driver()
async def h_concurrent(url: str, trace: Trace) -> None:
    async def one(i: int) -> Any:
        async with websockets.connect(url) as ws:
            await ws.send(f"c{i}")
            return await ws.recv()

    trace.add("replies", await asyncio.gather(*[one(i) for i in range(50)]))


@CLIENT.driver()
async def h_reconnect_after_503(url: str, trace: Trace) -> None:
    from servers import _seen

    _seen.clear()
    async for ws in websockets.connect(url, reconnect_delays=_no_delay):
        await ws.send("back")
        trace.received(await ws.recv())
        await ws.close()  # breaking out of `async for` alone leaves the connection open
        break


@CLIENT.driver()
async def h_open_timeout(url: str, trace: Trace) -> None:
    await websockets.connect(url, open_timeout=0.2)


@CLIENT.driver()
async def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        for i in range(10):
            await ws.send(f"q{i}")
    closed(trace, ws)


@CLIENT.driver()
async def h_backpressure(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        for i in range(256):  # 4 MiB: more than socket buffers and max_queue hold
            await ws.send(f"{i:05d}" + "b" * 16379)
        trace.add("all sent")
        trace.received(await ws.recv())
    closed(trace, ws)


@CLIENT.driver()
async def h_invalid_utf8_from_client(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        ws.transport.write(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))  # a masked text frame, invalid UTF-8
        await until_closed(ws, trace)


@CLIENT.driver()
async def h_invalid_request_line(url: str, trace: Trace) -> None:
    await websockets.connect(url)


# ASGI targets (uvicorn with each WebSocket implementation)


@CLIENT.driver()
async def a_invalid_request_line(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@CLIENT.driver()
async def a_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", b"\x01\x02", "", b""])


@CLIENT.driver()
async def a_close_before_accept(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@CLIENT.driver()
async def a_denial_response(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@CLIENT.driver()
async def a_exception_before_accept(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@CLIENT.driver()
async def a_return_before_accept(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@CLIENT.driver()
async def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    async with websockets.connect(url, subprotocols=["v1", "v2"]) as ws:
        opened(trace, ws)


@CLIENT.driver()
async def a_accept_unoffered_subprotocol(url: str, trace: Trace) -> None:
    async with websockets.connect(url, subprotocols=["v1"]) as ws:
        opened(trace, ws)


@CLIENT.driver()
async def a_no_common_subprotocol(url: str, trace: Trace) -> None:
    async with websockets.connect(url, subprotocols=["v9"]) as ws:
        opened(trace, ws)


@CLIENT.driver()
async def a_client_close_code(url: str, trace: Trace) -> None:
    ws = await websockets.connect(url)
    await ws.close(4000, "client leaves")
    closed(trace, ws)


@CLIENT.driver()
async def a_scope(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "A"), ("x-custom", "B")]
    async with websockets.connect(
        url,
        additional_headers=headers,
        origin="https://app.example",
        user_agent_header="agent/2",
        subprotocols=["p1", "p2"],
    ) as ws:
        trace.add("scope", json.loads(await ws.recv()))


@CLIENT.driver()
async def a_burst(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await asyncio.sleep(0.05)
        await until_closed(ws, trace)


@CLIENT.driver()
async def a_over_client_max_size(url: str, trace: Trace) -> None:
    async with websockets.connect(url, max_size=1000) as ws:
        await until_closed(ws, trace)


@CLIENT.driver()
async def a_deflate_large(url: str, trace: Trace) -> None:
    await echo(url, trace, ["chat event " * 20000, b"\x00" * 100000])


@CLIENT.driver()
async def a_no_deflate(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"], compression=None)


@CLIENT.driver()
async def a_client_ping(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        trace.add("pong", await asyncio.wait_for(await ws.ping(b"x"), 5) >= 0)
    closed(trace, ws)


@CLIENT.driver()
async def a_invalid_utf8_from_client(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        ws.transport.write(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))  # a masked text frame, invalid UTF-8
        await until_closed(ws, trace)


@CLIENT.driver()
async def a_send_after_disconnect(url: str, trace: Trace) -> None:
    # Close without sending first: a message then a close frame would race inside the real server.
    async with websockets.connect(url) as ws:
        pass
    closed(trace, ws)


@CLIENT.driver()
async def a_concurrent(url: str, trace: Trace) -> None:
    async def one(i: int) -> Any:
        async with websockets.connect(url) as ws:
            await ws.send(f"c{i}")
            return await ws.recv()

    trace.add("replies", await asyncio.gather(*[one(i) for i in range(50)]))


@CLIENT.driver()
async def a_open_timeout(url: str, trace: Trace) -> None:
    await websockets.connect(url, open_timeout=0.2)


@CLIENT.driver()
async def a_backpressure(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        for i in range(256):
            await ws.send(f"{i:05d}" + "b" * 16379)
        trace.add("all sent")
        trace.received(await ws.recv())
    closed(trace, ws)


@CLIENT.driver()
async def a_keepalive(url: str, trace: Trace) -> None:
    async with websockets.connect(url, ping_interval=0.02, ping_timeout=5) as ws:
        while ws.latency == 0:
            await asyncio.sleep(0.01)
        await ws.send("alive")
        trace.received(await ws.recv())
    closed(trace, ws)


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


@CLIENT.driver(
    "h_process_request_breaks_key",
    "h_process_request_raises",
    "h_process_response_replaces",
)
async def handshake_answer(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@CLIENT.driver("h_origins")
async def wrong_origin(url: str, trace: Trace) -> None:
    await websockets.connect(url, origin="https://evil.example")


@CLIENT.driver("h_select_subprotocol")
async def select_subprotocol(url: str, trace: Trace) -> None:
    async with websockets.connect(url, subprotocols=["v1", "v2", "v3"]) as ws:
        opened(trace, ws)
        trace.received(await ws.recv())


@CLIENT.driver("h_over_max_size_deflate", "a_over_max_size_deflate")
async def over_max_size_deflate(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


@CLIENT.driver("a_over_max_size")
async def over_max_size(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


class _PingCounter(logging.Handler):
    """Counts the pings websockets logs as received (its debug log names every frame)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.pings = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("< PING"):
            self.pings += 1


@CLIENT.driver("a_keepalive_off", "a_keepalive_on", "h_keepalive_none", "h_keepalive_zero")
async def server_pings(url: str, trace: Trace) -> None:
    logger = logging.getLogger(f"differential.pings.{id(trace)}")
    counter = _PingCounter()
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        async with websockets.connect(url, ping_interval=None, logger=logger) as ws:
            with pytest_raises_closed():
                await ws.recv()
    finally:
        logger.removeHandler(counter)
    trace.add("server pinged", counter.pings > 0)
    closed(trace, ws)


class pytest_raises_closed:
    """Swallow the ConnectionClosed that ends a held connection (its details are traced by closed())."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return exc_type is not None and issubclass(exc_type, websockets.exceptions.ConnectionClosed)


@CLIENT.driver("a_close_nocode", "a_close_reason_124")
async def app_closes(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@CLIENT.driver("h_connection_attributes")
async def connection_attributes(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        trace.received(await ws.recv())
    closed(trace, ws)
