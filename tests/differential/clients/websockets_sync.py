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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import websockets
import websockets.sync.client
from clients._websockets import closed, describe, opened, raised
from runner import Client, Trace
from websockets.sync.client import connect

CLIENT = Client("websockets (sync)", "thread", websockets.__version__, describe=describe)

HAS_KEEPALIVE = "ping_interval" in inspect.signature(connect).parameters
HAS_RECONNECT = hasattr(websockets.sync.client, "reconnect")


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


@CLIENT.driver()
def h_text_echo(url: str, trace: Trace) -> None:
    echo(url, trace, ["hello", "ünïcødé ✓", "x" * 5000])


@CLIENT.driver()
def h_binary_echo(url: str, trace: Trace) -> None:
    echo(url, trace, [b"\x00\x01\xff", bytes(range(256)) * 20])


@CLIENT.driver()
def h_empty_messages(url: str, trace: Trace) -> None:
    echo(url, trace, ["", b""])


@CLIENT.driver()
def h_under_max_size(url: str, trace: Trace) -> None:
    echo(url, trace, ["x" * 999], compression=None)


@CLIENT.driver()
def h_at_max_size(url: str, trace: Trace) -> None:
    echo(url, trace, ["x" * 1000], compression=None)


@CLIENT.driver()
def h_over_max_size(url: str, trace: Trace) -> None:
    with connect(url, compression=None) as ws:
        ws.send("x" * 1001)
        until_closed(ws, trace)


@CLIENT.driver("h_over_client_max_size", "a_over_client_max_size")
def over_client_max_size(url: str, trace: Trace) -> None:
    closes(url, trace, max_size=1000)


@CLIENT.driver()
def h_fragmented_client_sends(url: str, trace: Trace) -> None:
    def parts() -> Iterator[bytes]:
        yield b"p"
        yield b"q"

    with connect(url) as ws:
        ws.send(["x", "y", "z"])
        ws.send(parts())
        trace.received(ws.recv())
    closed(trace, ws)


@CLIENT.driver()
def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        trace.add("fragments", list(ws.recv_streaming()))
        trace.received(ws.recv())
    closed(trace, ws)


@CLIENT.driver("h_client_ping", "a_client_ping")
def _client_ping(url: str, trace: Trace) -> None:
    client_ping(url, trace)


@CLIENT.driver()
def h_server_ping(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        trace.received(ws.recv())
    closed(trace, ws)


if HAS_KEEPALIVE:

    @CLIENT.driver("h_keepalive", "a_keepalive")
    def keepalive(url: str, trace: Trace) -> None:
        with connect(url, ping_interval=0.02, ping_timeout=5) as ws:
            while ws.latency == 0:
                time.sleep(0.01)
            ws.send("still alive")
            trace.received(ws.recv())
        closed(trace, ws)


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
def server_close(url: str, trace: Trace) -> None:
    closes(url, trace)


@CLIENT.driver()
def h_client_close_1000(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        ws.send("one")
        ws.close()
        closed(trace, ws)


@CLIENT.driver()
def h_client_close_4000(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        ws.close(4000, "client leaves")
        closed(trace, ws)
        try:
            ws.recv()
        except websockets.exceptions.ConnectionClosed as exc:
            raised(trace, exc)


@CLIENT.driver()
def h_double_close(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        ws.close(4001, "first")
        ws.close(4002, "second")
    closed(trace, ws)


@CLIENT.driver()
def h_context_exit_on_error(url: str, trace: Trace) -> None:
    try:
        with connect(url) as ws:
            ws.send("then fail")
            raise KeyError("client bug")
    except KeyError:
        trace.add("client raised")
    closed(trace, ws)


@CLIENT.driver("h_burst_before_read", "a_burst")
def _burst(url: str, trace: Trace) -> None:
    burst(url, trace)


@CLIENT.driver()
def h_subprotocol(url: str, trace: Trace) -> None:
    with connect(url, subprotocols=["v1", "v2"]) as ws:
        opened(trace, ws)
        trace.received(ws.recv())


@CLIENT.driver("h_no_common_subprotocol", "a_no_common_subprotocol")
def no_common_subprotocol(url: str, trace: Trace) -> None:
    opens(url, trace, subprotocols=["v9"])


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
def refused(url: str, trace: Trace) -> None:
    opens(url, trace)


@CLIENT.driver()
def h_request_headers(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "one"), ("x-custom", "two"), ("Authorization", "Bearer t")]
    with connect(
        url, additional_headers=headers, origin="https://app.example", user_agent_header="agent/1.0"
    ) as ws:
        trace.add("server saw", json.loads(ws.recv()))


@CLIENT.driver()
def h_query_and_path(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        trace.received(ws.recv())


@CLIENT.driver("h_deflate_large", "a_deflate_large")
def deflate_large(url: str, trace: Trace) -> None:
    echo(url, trace, ["chat event " * 20000, b"\x00" * 100000])


@CLIENT.driver("h_no_deflate_client", "a_no_deflate")
def no_deflate_client(url: str, trace: Trace) -> None:
    echo(url, trace, ["plain"], compression=None)


@CLIENT.driver()
def h_no_deflate_server(url: str, trace: Trace) -> None:
    echo(url, trace, ["plain"])


@CLIENT.driver("h_concurrent", "a_concurrent")
def _concurrent(url: str, trace: Trace) -> None:
    concurrent(url, trace)


if HAS_RECONNECT:

    @CLIENT.driver()
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


@CLIENT.driver("h_open_timeout", "a_open_timeout")
def open_timeout(url: str, trace: Trace) -> None:
    opens(url, trace, open_timeout=0.2)


@CLIENT.driver()
def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        for i in range(10):
            ws.send(f"q{i}")
    closed(trace, ws)


@CLIENT.driver("h_backpressure", "a_backpressure")
def _backpressure(url: str, trace: Trace) -> None:
    backpressure(url, trace)


@CLIENT.driver("h_invalid_utf8_from_client", "a_invalid_utf8_from_client")
def _invalid_utf8_from_client(url: str, trace: Trace) -> None:
    invalid_utf8_from_client(url, trace)


# ASGI targets (uvicorn with each WebSocket implementation)


@CLIENT.driver()
def a_echo(url: str, trace: Trace) -> None:
    echo(url, trace, ["hello", b"\x01\x02", "", b""])


@CLIENT.driver()
def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    opens(url, trace, subprotocols=["v1", "v2"])


@CLIENT.driver()
def a_accept_unoffered_subprotocol(url: str, trace: Trace) -> None:
    opens(url, trace, subprotocols=["v1"])


@CLIENT.driver()
def a_client_close_code(url: str, trace: Trace) -> None:
    with connect(url) as ws:
        ws.close(4000, "client leaves")
    closed(trace, ws)


@CLIENT.driver()
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


@CLIENT.driver()
def a_send_after_disconnect(url: str, trace: Trace) -> None:
    # Close without sending first: a message then a close frame would race inside the real server.
    with connect(url) as ws:
        pass
    closed(trace, ws)
