"""Differential drivers for the ``websockets`` sync client (``websockets.sync.client.connect``).

The drivers run in a thread of their own (the runner's ``thread`` kind). Every
connection is used as a context manager, the form that has no deprecation
warning on any supported release. Keepalive (``ping_interval``, ``latency``,
websockets 15+) and ``reconnect`` (17.1+) drivers exist only where the release
has the feature.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import websockets
import websockets.sync.client
import websockets.sync.connection
from runner import Client, Trace
from websockets.sync.client import connect

from clients._websockets import PingCounter, closed, describe, opened, raised

CLIENT = Client("websockets (sync)", "thread", websockets.__version__, describe=describe)

HAS_KEEPALIVE = "ping_interval" in inspect.signature(connect).parameters
HAS_RECONNECT = hasattr(websockets.sync.client, "reconnect")

#: websockets 14.0's sync client drops the messages still buffered when the connection closes (14.1 made
#: them readable, and added ``close_code`` to the connection in the same release). Whether a message sent
#: just before a close is seen then depends on thread timing, against the real servers as in memory.
KEEPS_BUFFERED_MESSAGES = hasattr(websockets.sync.connection.Connection, "close_code")
MESSAGES_THEN_CLOSE = {"h_burst_before_read", "a_burst", "h_server_abort"}


def driver(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``CLIENT.driver`` for the scenarios this release can run reliably in memory."""
    kept = [name for name in names if KEEPS_BUFFERED_MESSAGES or name not in MESSAGES_THEN_CLOSE]
    return CLIENT.driver(*kept) if kept else lambda fn: fn


# Helpers shared by the drivers


def until_closed(ws: Any, trace: Trace) -> None:
    """Record every message until the connection closes, then the close."""
    try:
        while True:
            trace.received(ws.recv())
    except websockets.exceptions.ConnectionClosed as exc:
        raised(trace, exc)
    closed(trace, ws)


def echo(url: str, trace: Trace, messages: list[Any], **options: Any) -> None:
    with connect(url, **options) as ws:
        opened(trace, ws)
        for message in messages:
            ws.send(message)
            trace.received(ws.recv())
    closed(trace, ws)


def closes(url: str, trace: Trace, **options: Any) -> None:
    with connect(url, **options) as ws:
        until_closed(ws, trace)


def opens(url: str, trace: Trace, **options: Any) -> None:
    """Connect (recording a failure to), then close at once."""
    with connect(url, **options) as ws:
        opened(trace, ws)
    closed(trace, ws)


def concurrent(url: str, trace: Trace) -> None:
    # Every connection is open before any closes: the server's log has one order, not a thread race.
    all_open = threading.Barrier(50)

    def one(i: int) -> Any:
        with connect(url) as ws:
            ws.send(f"c{i}")
            reply = ws.recv()
            all_open.wait(10)
        return reply

    with ThreadPoolExecutor(50) as pool:
        trace.add("replies", list(pool.map(one, range(50))))


def client_ping(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        trace.add("pong", ws.ping(b"abc").wait(5))
    closed(trace, ws)


def backpressure(url: str, trace: Trace) -> None:
    with connect(url, compression=None) as ws:
        for i in range(256):  # 4 MiB: more than socket buffers and max_queue hold
            ws.send(f"{i:05d}" + "b" * 16379)
        trace.add("all sent")
        trace.received(ws.recv())
    closed(trace, ws)


def invalid_utf8_from_client(url: str, trace: Trace) -> None:
    with connect(url, compression=None) as ws:
        ws.socket.sendall(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))  # a masked text frame, invalid UTF-8
        until_closed(ws, trace)


def burst(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        time.sleep(0.05)
        until_closed(ws, trace)


# Handler targets (websockets.serve)


@driver("h_text_echo")
def h_text_echo(url: str, trace: Trace) -> None:
    echo(url, trace, ["hello", "ünïcødé ✓", "x" * 5000])


@driver("h_binary_echo")
def h_binary_echo(url: str, trace: Trace) -> None:
    echo(url, trace, [b"\x00\x01\xff", bytes(range(256)) * 20])


@driver("h_empty_messages")
def h_empty_messages(url: str, trace: Trace) -> None:
    echo(url, trace, ["", b""])


@driver("h_under_max_size")
def h_under_max_size(url: str, trace: Trace) -> None:
    echo(url, trace, ["x" * 999], compression=None)


@driver("h_at_max_size")
def h_at_max_size(url: str, trace: Trace) -> None:
    echo(url, trace, ["x" * 1000], compression=None)


@driver("h_over_max_size")
def h_over_max_size(url: str, trace: Trace) -> None:
    with connect(url, compression=None) as ws:
        ws.send("x" * 1001)
        until_closed(ws, trace)


@driver("h_over_client_max_size", "a_over_client_max_size")
def over_client_max_size(url: str, trace: Trace) -> None:
    closes(url, trace, max_size=1000)


@driver("h_fragmented_client_sends")
def h_fragmented_client_sends(url: str, trace: Trace) -> None:
    def parts() -> Iterator[bytes]:
        yield b"p"
        yield b"q"

    with connect(url) as ws:
        ws.send(["x", "y", "z"])
        ws.send(parts())
        trace.received(ws.recv())
    closed(trace, ws)


@driver("h_fragmented_server_sends")
def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        trace.add("fragments", list(ws.recv_streaming()))
        trace.received(ws.recv())
    closed(trace, ws)


@driver("h_client_ping", "a_client_ping")
def _client_ping(url: str, trace: Trace) -> None:
    client_ping(url, trace)


@driver("h_server_ping")
def h_server_ping(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        trace.received(ws.recv())
    closed(trace, ws)


if HAS_KEEPALIVE:

    @driver("h_keepalive", "a_keepalive")
    def keepalive(url: str, trace: Trace) -> None:
        with connect(url, ping_interval=0.02, ping_timeout=5) as ws:
            while ws.latency == 0:
                time.sleep(0.01)
            ws.send("still alive")
            trace.received(ws.recv())
        closed(trace, ws)


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
def server_close(url: str, trace: Trace) -> None:
    closes(url, trace)


@driver("h_client_close_1000")
def h_client_close_1000(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        ws.send("one")
        ws.close()
        closed(trace, ws)


@driver("h_client_close_4000")
def h_client_close_4000(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        ws.close(4000, "client leaves")
        closed(trace, ws)
        try:
            ws.recv()
        except websockets.exceptions.ConnectionClosed as exc:
            raised(trace, exc)


@driver("h_double_close")
def h_double_close(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        ws.close(4001, "first")
        ws.close(4002, "second")
    closed(trace, ws)


@driver("h_context_exit_on_error")
def h_context_exit_on_error(url: str, trace: Trace) -> None:
    try:
        with connect(url) as ws:
            ws.send("then fail")
            raise KeyError("client bug")
    except KeyError:
        trace.add("client raised")
    closed(trace, ws)


@driver("h_burst_before_read", "a_burst")
def _burst(url: str, trace: Trace) -> None:
    burst(url, trace)


@driver("h_subprotocol")
def h_subprotocol(url: str, trace: Trace) -> None:
    with connect(url, subprotocols=["v1", "v2"]) as ws:
        opened(trace, ws)
        trace.received(ws.recv())


@driver("h_no_common_subprotocol", "a_no_common_subprotocol")
def no_common_subprotocol(url: str, trace: Trace) -> None:
    opens(url, trace, subprotocols=["v9"])


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
def refused(url: str, trace: Trace) -> None:
    opens(url, trace)


@driver("h_request_headers")
def h_request_headers(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "one"), ("x-custom", "two"), ("Authorization", "Bearer t")]
    with connect(url, additional_headers=headers, origin="https://app.example", user_agent_header="agent/1.0") as ws:
        trace.add("server saw", json.loads(ws.recv()))


@driver("h_query_and_path")
def h_query_and_path(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        trace.received(ws.recv())


@driver("h_deflate_large", "a_deflate_large")
def deflate_large(url: str, trace: Trace) -> None:
    echo(url, trace, ["chat event " * 20000, b"\x00" * 100000])


@driver("h_no_deflate_client", "a_no_deflate")
def no_deflate_client(url: str, trace: Trace) -> None:
    echo(url, trace, ["plain"], compression=None)


@driver("h_no_deflate_server")
def h_no_deflate_server(url: str, trace: Trace) -> None:
    echo(url, trace, ["plain"])


@driver("h_concurrent", "a_concurrent")
def _concurrent(url: str, trace: Trace) -> None:
    concurrent(url, trace)


if HAS_RECONNECT:

    @driver("h_reconnect_after_503")
    def h_reconnect_after_503(url: str, trace: Trace) -> None:
        from contextlib import closing

        from servers import _seen

        def no_delay() -> Iterator[float]:
            while True:
                yield 0.0

        _seen.clear()
        reconnect = websockets.sync.client.reconnect(url, reconnect_delays=no_delay)
        with closing(iter(reconnect)) as attempts:
            for ws in attempts:
                ws.send("back")
                trace.received(ws.recv())
                ws.close()  # leaving the loop closes the connection with 1011 (GeneratorExit)
                break
        closed(trace, ws)


@driver("h_open_timeout", "a_open_timeout")
def open_timeout(url: str, trace: Trace) -> None:
    opens(url, trace, open_timeout=0.2)


@driver("h_close_with_queued_messages")
def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        for i in range(10):
            ws.send(f"q{i}")
    closed(trace, ws)


@driver("h_backpressure", "a_backpressure")
def _backpressure(url: str, trace: Trace) -> None:
    backpressure(url, trace)


@driver("h_invalid_utf8_from_client", "a_invalid_utf8_from_client")
def _invalid_utf8_from_client(url: str, trace: Trace) -> None:
    invalid_utf8_from_client(url, trace)


# ASGI targets (uvicorn with each WebSocket implementation)


@driver("a_echo")
def a_echo(url: str, trace: Trace) -> None:
    echo(url, trace, ["hello", b"\x01\x02", "", b""])


@driver("a_accept_subprotocol_headers")
def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    opens(url, trace, subprotocols=["v1", "v2"])


@driver("a_accept_unoffered_subprotocol")
def a_accept_unoffered_subprotocol(url: str, trace: Trace) -> None:
    opens(url, trace, subprotocols=["v1"])


@driver("a_client_close_code")
def a_client_close_code(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        ws.close(4000, "client leaves")
    closed(trace, ws)


@driver("a_scope")
def a_scope(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "A"), ("x-custom", "B")]
    with connect(
        url,
        additional_headers=headers,
        origin="https://app.example",
        user_agent_header="agent/2",
        subprotocols=["p1", "p2"],
    ) as ws:
        trace.add("scope", json.loads(ws.recv()))


@driver("a_send_after_disconnect")
def a_send_after_disconnect(url: str, trace: Trace) -> None:
    # Close without sending first: a message then a close frame would race inside the real server.
    with connect(url) as ws:
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
def opened_then_echo(url: str, trace: Trace) -> None:
    echo(url, trace, ["x"])


@driver("h_process_request_breaks_key", "h_process_request_raises", "h_process_response_replaces")
def handshake_answer(url: str, trace: Trace) -> None:
    opens(url, trace)


@driver("h_origins")
def wrong_origin(url: str, trace: Trace) -> None:
    opens(url, trace, origin="https://evil.example")


@driver("h_select_subprotocol")
def select_subprotocol(url: str, trace: Trace) -> None:
    with connect(url, subprotocols=["v1", "v2", "v3"]) as ws:
        opened(trace, ws)
        trace.received(ws.recv())


@driver("h_over_max_size_deflate", "a_over_max_size_deflate")
def over_max_size_deflate(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        ws.send("x" * 1001)
        until_closed(ws, trace)


@driver("a_over_max_size")
def over_max_size(url: str, trace: Trace) -> None:
    with connect(url, compression=None) as ws:
        ws.send("x" * 1001)
        until_closed(ws, trace)


@driver("a_keepalive_off", "a_keepalive_on", "h_keepalive_none", "h_keepalive_zero")
def server_pings(url: str, trace: Trace) -> None:
    counter = PingCounter(trace)
    no_keepalive = {"ping_interval": None} if HAS_KEEPALIVE else {}  # no keepalive before 15: nothing to turn off
    with counter as logger, connect(url, logger=logger, **no_keepalive) as ws:
        until_closed(ws, trace)
    trace.add("server pinged", counter.pings > 0)


@driver("a_close_nocode", "a_close_reason_124")
def app_closes(url: str, trace: Trace) -> None:
    closes(url, trace)


@driver("h_connection_attributes")
def connection_attributes(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        trace.received(ws.recv())
    closed(trace, ws)
