"""Differential drivers for trio-websocket (``open_websocket_url`` and friends, on trio).

Each driver runs against the real servers on 127.0.0.1 and against wsfake; the
traces must be equal (see runner.py). trio-websocket has no permessage-deflate
and no fragmented sends: those scenarios are not driven. It has no client
keepalive and no reconnect loop either: those are driven with what its API
offers (manual pings, a retry after ``ConnectionRejected``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio
import trio_websocket
from runner import Client, Trace, picked_headers, qualified
from serverlog import SERVER
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

#: A masked text frame whose payload is invalid UTF-8, written to the connection's stream as is.
INVALID_UTF8_FRAME = bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28])


def _reason(reason: Any) -> list[Any] | None:
    return None if reason is None else [reason.code, reason.name, reason.reason]


def _headers(headers: Any) -> dict[str, list[str]]:
    return picked_headers((key.decode("latin-1"), value.decode("latin-1")) for key, value in headers)


def describe(exc: BaseException) -> list[Any]:
    """A trio-websocket exception as its class and the attributes a user can observe."""
    name = qualified(exc)
    if isinstance(exc, ConnectionClosed):
        return [name, _reason(exc.reason)]
    if isinstance(exc, ConnectionRejected):
        body = None if exc.body is None else exc.body.decode("latin-1")
        return [name, exc.status_code, _headers(exc.headers), body]
    if isinstance(exc, HandshakeError):
        cause = exc.__cause__
        return [name, None if cause is None else describe(cause)]
    if isinstance(exc, OSError):
        return [name, exc.errno]
    return [name, str(exc)]


CLIENT = Client("trio-websocket", "trio", trio_websocket.__version__, describe=describe)


@contextlib.asynccontextmanager
async def closing_streams() -> AsyncIterator[None]:
    """Close the streams trio-websocket leaves open, after the run.

    When the server closes first, rejects the handshake or the opening is
    cancelled, trio-websocket never closes its stream (on the network, the socket
    is left to the garbage collector and warns). Closing them after the driver
    keeps runs from leaking sockets and makes the moment the server sees the
    client leave the same in every run.
    """
    streams: list[Any] = []
    init = WebSocketConnection.__init__

    def tracking(self: Any, stream: Any, *args: Any, **kwargs: Any) -> None:
        streams.append(stream)
        init(self, stream, *args, **kwargs)

    WebSocketConnection.__init__ = tracking  # type: ignore[method-assign]
    try:
        yield
    finally:
        WebSocketConnection.__init__ = init  # type: ignore[method-assign]
        with trio.CancelScope(shield=True):
            for stream in streams:
                await stream.aclose()


def driver(*names: str) -> Callable[[Callable[[str, Trace], Awaitable[None]]], Any]:
    """Register a driver for the named scenarios, run in :func:`closing_streams`."""

    def register(fn: Callable[[str, Trace], Awaitable[None]]) -> Any:
        @functools.wraps(fn)
        async def run(url: str, trace: Trace) -> None:
            async with closing_streams():
                await fn(url, trace)

        for name in names or (fn.__name__,):
            CLIENT.drivers[name] = run
        return run

    return register


# Helpers shared by the drivers


def opened(trace: Trace, ws: Any) -> None:
    trace.add("open", ws.subprotocol, _headers(ws.handshake_headers))


def closed(trace: Trace, ws: Any) -> None:
    trace.add("closed", _reason(ws.closed))


async def until_closed(ws: Any, trace: Trace) -> None:
    """Record every message until the connection closes, then the close."""
    try:
        while True:
            trace.received(await ws.get_message())
    except ConnectionClosed as exc:
        trace.add("raised", *describe(exc))
    closed(trace, ws)


async def echo(url: str, trace: Trace, messages: list[Any], **options: Any) -> None:
    async with open_websocket_url(url, **options) as ws:
        opened(trace, ws)
        for message in messages:
            await ws.send_message(message)
            trace.received(await ws.get_message())
    closed(trace, ws)


async def connect_only(url: str, trace: Trace, **options: Any) -> None:
    async with open_websocket_url(url, **options) as ws:
        opened(trace, ws)


async def read_until_closed(url: str, trace: Trace, **options: Any) -> None:
    async with open_websocket_url(url, **options) as ws:
        await until_closed(ws, trace)


async def write_invalid_utf8(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        await ws._stream.send_all(INVALID_UTF8_FRAME)  # no API sends invalid UTF-8: the raw frame, on its stream
        await until_closed(ws, trace)


async def concurrent(url: str, trace: Trace) -> None:
    replies: list[Any] = [None] * 50

    async def one(i: int) -> None:
        async with open_websocket_url(url) as ws:
            await ws.send_message(f"c{i}")
            replies[i] = await ws.get_message()

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(one, i)
    trace.add("replies", replies)


async def backpressure(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        for i in range(256):  # 4 MiB: more than socket buffers hold
            await ws.send_message(f"{i:05d}" + "b" * 16379)
        trace.add("all sent")
        trace.received(await ws.get_message())
    closed(trace, ws)


# Handler targets (websockets.serve)


@driver()
async def h_text_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", "ünïcødé ✓", "x" * 5000])


@driver()
async def h_binary_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, [b"\x00\x01\xff", bytes(range(256)) * 20])


@driver()
async def h_empty_messages(url: str, trace: Trace) -> None:
    await echo(url, trace, ["", b""])


@driver()
async def h_under_max_size(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x" * 999])


@driver()
async def h_at_max_size(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x" * 1000])


@driver()
async def h_over_max_size(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        await ws.send_message("x" * 1001)
        await until_closed(ws, trace)


@driver("h_over_client_max_size", "a_over_client_max_size")
async def over_client_max_size(url: str, trace: Trace) -> None:
    await read_until_closed(url, trace, max_message_size=1000)


@driver()
async def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        trace.received(await ws.get_message())
        trace.received(await ws.get_message())
    closed(trace, ws)


@driver("h_client_ping", "a_client_ping")
async def client_ping(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        with trio.fail_after(5):
            await ws.ping(b"abc")
        trace.add("pong")
    closed(trace, ws)


@driver()
async def h_server_ping(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        trace.received(await ws.get_message())
    closed(trace, ws)


@driver("h_keepalive", "a_keepalive")
async def keepalive(url: str, trace: Trace) -> None:
    # trio-websocket has no keepalive of its own: the client pings by hand (the server's own pings are answered).
    async with open_websocket_url(url) as ws:
        for i in range(3):
            with trio.fail_after(5):
                await ws.ping(f"keepalive {i}".encode())
        await ws.send_message("still alive")
        trace.received(await ws.get_message())
    closed(trace, ws)


@driver(
    *[f"h_server_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)],
    *[f"a_app_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)],
    "h_server_close_unicode",
    "h_server_close_long_reason",
    "a_close_reason_unicode",
    "a_close_reason_long",
    "h_handler_returns",
    "h_handler_raises",
    "h_server_abort",
    "a_exception_after_accept",
    "a_return_after_accept",
)
async def server_closes(url: str, trace: Trace) -> None:
    await read_until_closed(url, trace)


@driver()
async def h_invalid_utf8(url: str, trace: Trace) -> None:
    # wsproto turns the bad frame into a close event without sending a close frame: get_message raises
    # ConnectionClosed 1007, then the reader waits for the server, which waits for the client's close frame.
    with trio.move_on_after(1) as scope:
        await read_until_closed(url, trace)
    trace.add("cancelled by the outer scope", scope.cancelled_caught)


@driver()
async def h_client_close_1000(url: str, trace: Trace) -> None:
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.connect_websocket_url(nursery, url)
        await ws.send_message("one")
        await ws.aclose()
    closed(trace, ws)


@driver("h_client_close_4000", "a_client_close_code")
async def client_close_4000(url: str, trace: Trace) -> None:
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.connect_websocket_url(nursery, url)
        await ws.aclose(4000, "client leaves")
        closed(trace, ws)
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            trace.add("raised", *describe(exc))


@driver()
async def h_double_close(url: str, trace: Trace) -> None:
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.connect_websocket_url(nursery, url)
        await ws.aclose(4001, "first")
        await ws.aclose(4002, "second")
    closed(trace, ws)


@driver()
async def h_context_exit_on_error(url: str, trace: Trace) -> None:
    try:
        async with open_websocket_url(url) as ws:
            await ws.send_message("then fail")
            raise KeyError("client bug")
    except KeyError:
        trace.add("client raised")
    closed(trace, ws)


@driver("h_burst_before_read", "a_burst")
async def burst(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        await trio.sleep(0.05)
        await until_closed(ws, trace)


@driver()
async def h_subprotocol(url: str, trace: Trace) -> None:
    async with open_websocket_url(url, subprotocols=["v1", "v2"]) as ws:
        opened(trace, ws)
        trace.received(await ws.get_message())


@driver()
async def h_no_common_subprotocol(url: str, trace: Trace) -> None:
    await connect_only(url, trace, subprotocols=["v9"])


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
async def rejected(url: str, trace: Trace) -> None:
    await connect_only(url, trace)


@driver()
async def h_request_headers(url: str, trace: Trace) -> None:
    headers = [
        (b"X-Custom", b"one"),
        (b"x-custom", b"two"),
        (b"Authorization", b"Bearer t"),
        (b"Origin", b"https://app.example"),
        (b"User-Agent", b"agent/1.0"),
    ]
    async with open_websocket_url(url, extra_headers=headers) as ws:
        trace.add("server saw", json.loads(await ws.get_message()))


@driver()
async def h_query_and_path(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        trace.received(await ws.get_message())


@driver("h_no_deflate_client", "h_no_deflate_server", "a_no_deflate")
async def no_deflate(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"])


@driver("h_concurrent", "a_concurrent")
async def concurrent_connections(url: str, trace: Trace) -> None:
    await concurrent(url, trace)


@driver()
async def h_reconnect_after_503(url: str, trace: Trace) -> None:
    # No reconnect loop in trio-websocket: the client retries after the rejection by hand.
    from servers import _seen

    _seen.clear()
    for _ in range(2):
        try:
            async with open_websocket_url(url) as ws:
                await ws.send_message("back")
                trace.received(await ws.get_message())
            break
        except ConnectionRejected as exc:
            trace.add("raised", *describe(exc))


@driver()
async def h_open_timeout(url: str, trace: Trace) -> None:
    # connect_timeout fires at 0.2 s, but ConnectionTimeout comes out only when the server drops the
    # connection (its open_timeout, 0.5 s): trio-websocket's reader task keeps its nursery open until then.
    await connect_only(url, trace, connect_timeout=0.2)


@driver()
async def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        for i in range(10):
            await ws.send_message(f"q{i}")
    closed(trace, ws)


@driver("h_backpressure", "a_backpressure")
async def backpressure_driver(url: str, trace: Trace) -> None:
    await backpressure(url, trace)


@driver("h_invalid_utf8_from_client", "a_invalid_utf8_from_client")
async def invalid_utf8_from_client(url: str, trace: Trace) -> None:
    await write_invalid_utf8(url, trace)


# ASGI targets (uvicorn with each WebSocket implementation)


@driver()
async def a_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", b"\x01\x02", "", b""])


@driver()
async def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    await connect_only(url, trace, subprotocols=["v1", "v2"])


@driver()
async def a_accept_unoffered_subprotocol(url: str, trace: Trace) -> None:
    # wsproto refuses the 101 and trio-websocket stops reading, but only connect_timeout ends the wait.
    await connect_only(url, trace, subprotocols=["v1"], connect_timeout=0.5)


@driver()
async def a_no_common_subprotocol(url: str, trace: Trace) -> None:
    await connect_only(url, trace, subprotocols=["v9"])


@driver()
async def a_scope(url: str, trace: Trace) -> None:
    headers = [
        (b"X-Custom", b"A"),
        (b"x-custom", b"B"),
        (b"Origin", b"https://app.example"),
        (b"User-Agent", b"agent/2"),
    ]
    async with open_websocket_url(url, extra_headers=headers, subprotocols=["p1", "p2"]) as ws:
        trace.add("scope", json.loads(await ws.get_message()))


@driver()
async def a_send_after_disconnect(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        pass
    closed(trace, ws)


@driver()
async def a_open_timeout(url: str, trace: Trace) -> None:
    # The app never accepts and uvicorn never gives up: trio-websocket's connect_timeout cannot end the wait
    # (its reader task keeps the nursery open), so only an outer cancel scope does.
    with trio.move_on_after(1) as scope:
        await connect_only(url, trace, connect_timeout=0.2)
    trace.add("cancelled by the outer scope", scope.cancelled_caught)


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
    await connect_only(url, trace)


@driver()
async def h_origins(url: str, trace: Trace) -> None:
    await connect_only(url, trace, extra_headers=[(b"Origin", b"https://evil.example")])


@driver()
async def h_select_subprotocol(url: str, trace: Trace) -> None:
    async with open_websocket_url(url, subprotocols=["v1", "v2", "v3"]) as ws:
        opened(trace, ws)
        trace.received(await ws.get_message())


@driver()
async def a_over_max_size(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        await ws.send_message("x" * 1001)
        await until_closed(ws, trace)


@driver("a_close_nocode", "a_close_reason_124")
async def app_closes(url: str, trace: Trace) -> None:
    await read_until_closed(url, trace)


@driver()
async def h_connection_attributes(url: str, trace: Trace) -> None:
    async with open_websocket_url(url) as ws:
        trace.received(await ws.get_message())
    closed(trace, ws)


@driver("a_client_vanishes", "h_client_vanishes")
async def client_vanishes(url: str, trace: Trace) -> None:
    # No API drops the connection without a close frame: its stream is closed under it. No message first:
    # the handler would answer it by returning, and its close frame would race the client's own close. The
    # server code must have started (a real server starts it after its response): else it may never see this.
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.connect_websocket_url(nursery, url)
        assert await SERVER.wait_started_async(5.0), "the server code never started"
        await ws._stream.aclose()
        await until_closed(ws, trace)


class _PingCounter(logging.Handler):
    """Counts the pings trio-websocket answers (its debug log names each one)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.pings = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "%s ping %r":
            self.pings += 1


@driver("a_keepalive_off", "a_keepalive_on", "h_keepalive_none", "h_keepalive_zero")
async def server_pings(url: str, trace: Trace) -> None:
    logger = logging.getLogger("trio-websocket")
    counter = _PingCounter()
    level = logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    try:
        await read_until_closed(url, trace)
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
    trace.add("server pinged", counter.pings > 0)
