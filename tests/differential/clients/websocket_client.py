"""Differential drivers for websocket-client (``websocket.create_connection``, ``WebSocketApp``).

Each driver runs in a thread against the real servers on 127.0.0.1 and against
wsfake; the traces must be equal (see runner.py). Messages and close frames are
read with ``recv_data_frame(True)``, which shows the opcode and the close frame's
payload; a few scenarios read with ``WebSocketApp``'s callbacks, whose
``on_close(code, reason)`` is how most users see a close. websocket-client has
no permessage-deflate, no client-side message size limit and no context
manager: the scenarios about those are not expressible. Protocol violations and
requests that are not upgrades are the raw client's (clients/raw.py).
"""

from __future__ import annotations

import json
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import websocket
from runner import Client, Trace, picked_headers, qualified
from websocket import ABNF

TIMEOUT = 5


def describe(exc: BaseException) -> list[Any]:
    """A websocket-client exception as its class and the attributes a user can observe."""
    name = qualified(exc)
    if isinstance(exc, websocket.WebSocketBadStatusException):
        body = None if exc.resp_body is None else bytes(exc.resp_body).decode("latin-1")
        headers = picked_headers((exc.resp_headers or {}).items())
        # The message goes on with every response header (Date too): keep its first part.
        message = str(exc).split(" -+-+- ")[0]
        # status_message is kept from websocket-client 1.9.1 on (older releases take it and drop it).
        return [name, exc.status_code, getattr(exc, "status_message", None), body, headers, message]
    if isinstance(exc, OSError):
        return [name, exc.errno]
    return [name, str(exc)]


CLIENT = Client("websocket-client", "thread", websocket.__version__, describe=describe)


# Helpers shared by the drivers


def connect(url: str, trace: Trace | None = None, **options: Any) -> websocket.WebSocket:
    ws = websocket.create_connection(url, timeout=options.pop("timeout", TIMEOUT), **options)
    if trace is not None:
        opened(trace, ws)
    return ws


def opened(trace: Trace, ws: websocket.WebSocket) -> None:
    trace.add("open", ws.status, ws.getsubprotocol(), picked_headers((ws.getheaders() or {}).items()))


def close_args(data: bytes) -> list[Any]:
    if len(data) < 2:
        return [None, data.decode("utf-8", "replace")]
    return [struct.unpack("!H", data[:2])[0], data[2:].decode("utf-8", "replace")]


def record_frame(trace: Trace, opcode: int, frame: ABNF) -> None:
    if opcode == ABNF.OPCODE_TEXT:
        trace.received(bytes(frame.data).decode("utf-8"))
    elif opcode == ABNF.OPCODE_BINARY:
        trace.received(bytes(frame.data))
    elif opcode == ABNF.OPCODE_CLOSE:
        trace.add("close frame", *close_args(bytes(frame.data)))
    else:
        trace.add(ABNF.OPCODE_MAP[opcode], bytes(frame.data).hex())


def until_closed(ws: websocket.WebSocket, trace: Trace, read_after_close: bool = True) -> None:
    """Record every frame until the server's close frame (answered by the library), then the next read.

    Without ``read_after_close``, the socket is closed instead: when the server closes its socket right after its
    close frame (uvicorn failing a connection), the library's answer races that, and the next read sees EOF or a reset.
    """
    try:
        while True:
            opcode, frame = ws.recv_data_frame(True)
            record_frame(trace, opcode, frame)
            if opcode == ABNF.OPCODE_CLOSE:
                break
        if read_after_close:
            trace.add("after close", ws.recv())
    except websocket.WebSocketException as exc:
        trace.add("raised", *describe(exc))
    trace.add("connected", ws.connected)
    ws.shutdown()


def closed(trace: Trace, ws: websocket.WebSocket) -> None:
    """The server's answer to the client's close, as ``close()`` keeps it (websocket-client >= 1.9.1)."""
    if not hasattr(ws, "close_frame"):  # older releases read the answer and drop it
        trace.add("closed", "close frame not kept", ws.connected)
        return
    frame = ws.close_frame
    trace.add("closed", None if frame is None else close_args(bytes(frame.data)), ws.connected)


def echo(url: str, trace: Trace, messages: list[str | bytes]) -> None:
    ws = connect(url, trace)
    for message in messages:
        if isinstance(message, str):
            ws.send(message)
        else:
            ws.send_binary(message)
        trace.received(ws.recv())
    ws.close()
    closed(trace, ws)


class App:
    """A ``WebSocketApp`` whose callbacks record into the trace; ``run()`` runs it to the end."""

    def __init__(self, url: str, trace: Trace, **callbacks: Any) -> None:
        self.trace = trace
        self.pinged = threading.Event()
        self.ponged = threading.Event()
        self.sockets: list[websocket.WebSocket] = []

        def opened(app: websocket.WebSocketApp, callback: Any) -> None:
            assert app.sock is not None
            self.sockets.append(app.sock)
            callback(app)

        on_open = callbacks.get("on_open", lambda app: trace.add("on_open"))
        on_reconnect = callbacks.get("on_reconnect")
        self.app = websocket.WebSocketApp(
            url,
            on_open=lambda app: opened(app, on_open),
            on_reconnect=None if on_reconnect is None else lambda app: opened(app, on_reconnect),
            on_message=callbacks.get("on_message", lambda app, message: trace.received(message)),
            on_error=lambda app, exc: trace.add("on_error", *describe(exc)),
            on_close=lambda app, code, reason: trace.add("on_close", code, reason),
            on_ping=callbacks.get("on_ping", lambda app, data: self.pinged.set()),
            on_pong=callbacks.get("on_pong", lambda app, data: self.ponged.set()),
        )

    def run(self, **options: Any) -> None:
        self.trace.add("run_forever", self.app.run_forever(**options))
        for ws in self.sockets:
            # After a close the server started, run_forever leaves the TCP connection open (its
            # WebSocket.close() returns early once the close frame was answered): record it, then
            # close it, as the garbage collector would at some point.
            self.trace.add("left open", ws.sock is not None)
            ws.shutdown()


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
    echo(url, trace, ["x" * 999])


@CLIENT.driver()
def h_at_max_size(url: str, trace: Trace) -> None:
    echo(url, trace, ["x" * 1000])


@CLIENT.driver()
def h_over_max_size(url: str, trace: Trace) -> None:
    ws = connect(url)
    ws.send("x" * 1001)
    until_closed(ws, trace)


@CLIENT.driver()
def h_fragmented_client_sends(url: str, trace: Trace) -> None:
    ws = connect(url)
    ws.send_frame(ABNF.create_frame("x", ABNF.OPCODE_TEXT, 0))
    ws.send_frame(ABNF.create_frame("y", ABNF.OPCODE_CONT, 0))
    ws.send_frame(ABNF.create_frame("z", ABNF.OPCODE_CONT, 1))
    ws.send_frame(ABNF.create_frame(b"p", ABNF.OPCODE_BINARY, 0))
    ws.send_frame(ABNF.create_frame(b"q", ABNF.OPCODE_CONT, 1))
    trace.received(ws.recv())
    ws.close()
    closed(trace, ws)


@CLIENT.driver()
def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    ws = connect(url)
    frames, ends = [], 0
    while ends < 2:  # two fragmented messages, read frame by frame
        frame = ws.recv_frame()
        frames.append([frame.opcode, frame.fin, bytes(frame.data).hex()])
        ends += frame.fin
    trace.add("frames", frames)
    ws.close()
    closed(trace, ws)


@CLIENT.driver()
def h_client_ping(url: str, trace: Trace) -> None:
    ws = connect(url)
    ws.ping("abc")
    opcode, frame = ws.recv_data_frame(True)
    record_frame(trace, opcode, frame)
    ws.close()
    closed(trace, ws)


@CLIENT.driver()
def h_server_ping(url: str, trace: Trace) -> None:
    ws = connect(url)
    for _ in range(2):  # the ping (answered by the library), then the server's message
        opcode, frame = ws.recv_data_frame(True)
        record_frame(trace, opcode, frame)
    ws.close()
    closed(trace, ws)


def keepalive(url: str, trace: Trace) -> None:
    """WebSocketApp's own pings every 50 ms; once a pong came back, one echo, then close."""
    app: App

    def on_pong(ws: websocket.WebSocketApp, data: bytes) -> None:
        if not app.ponged.is_set():
            app.ponged.set()
            trace.add("on_pong", data.hex())
            ws.send("still alive")

    def on_message(ws: websocket.WebSocketApp, message: str) -> None:
        trace.received(message)
        ws.close()

    app = App(url, trace, on_pong=on_pong, on_message=on_message)
    app.run(ping_interval=0.05, ping_payload="keepalive")


CLIENT.driver("h_keepalive", "a_keepalive")(keepalive)


@CLIENT.driver(*[f"h_server_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)])
@CLIENT.driver("h_server_close_unicode", "h_server_close_long_reason", "h_handler_returns", "h_handler_raises")
@CLIENT.driver("h_server_abort", "h_burst_before_read", "a_burst", "a_exception_after_accept", "a_return_after_accept")
def server_closes(url: str, trace: Trace) -> None:
    until_closed(connect(url), trace)


@CLIENT.driver()
def h_invalid_utf8(url: str, trace: Trace) -> None:
    ws = connect(url)
    try:
        ws.recv()
    except websocket.WebSocketException as exc:
        trace.add("raised", *describe(exc))
    ws.close()
    closed(trace, ws)


@CLIENT.driver()
def h_client_close_1000(url: str, trace: Trace) -> None:
    ws = connect(url)
    ws.send("one")
    ws.close()
    closed(trace, ws)


@CLIENT.driver("h_client_close_4000", "a_client_close_code")
def client_close_4000(url: str, trace: Trace) -> None:
    ws = connect(url)
    ws.close(4000, b"client leaves")  # bytes: a str reason needs websocket-client >= 1.9.1
    closed(trace, ws)
    ws.recv()


@CLIENT.driver()
def h_double_close(url: str, trace: Trace) -> None:
    ws = connect(url)
    ws.close(4001, b"first")
    ws.close(4002, b"second")
    closed(trace, ws)


@CLIENT.driver()
def h_subprotocol(url: str, trace: Trace) -> None:
    ws = connect(url, trace, subprotocols=["v1", "v2"])
    trace.received(ws.recv())
    ws.close()


@CLIENT.driver()
def h_no_common_subprotocol(url: str, trace: Trace) -> None:
    connect(url, trace, subprotocols=["v9"])


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
def refused_handshake(url: str, trace: Trace) -> None:
    connect(url, trace)


@CLIENT.driver()
def h_request_headers(url: str, trace: Trace) -> None:
    headers = ["X-Custom: one", "x-custom: two", "Authorization: Bearer t", "User-Agent: agent/1.0"]
    ws = connect(url, header=headers, origin="https://app.example")
    trace.add("server saw", json.loads(ws.recv()))
    ws.close()


@CLIENT.driver()
def h_query_and_path(url: str, trace: Trace) -> None:
    ws = connect(url)
    trace.received(ws.recv())
    ws.close()


@CLIENT.driver("h_no_deflate_client", "h_no_deflate_server", "a_no_deflate")
def no_deflate(url: str, trace: Trace) -> None:
    echo(url, trace, ["plain"])


@CLIENT.driver("h_concurrent", "a_concurrent")
def concurrent(url: str, trace: Trace) -> None:
    # Every connection opens before any sends: the server sees 50 connects, then 50 disconnects.
    opened = threading.Barrier(50, timeout=TIMEOUT)

    def one(i: int) -> Any:
        ws = connect(url)
        opened.wait()
        ws.send(f"c{i}")
        reply = ws.recv()
        ws.close()
        return reply

    with ThreadPoolExecutor(50) as pool:
        trace.add("replies", list(pool.map(one, range(50))))


@CLIENT.driver()
def h_reconnect_after_503(url: str, trace: Trace) -> None:
    from servers import _seen

    _seen.clear()

    def on_reconnect(ws: websocket.WebSocketApp) -> None:
        trace.add("on_reconnect")
        ws.send("back")

    def on_message(ws: websocket.WebSocketApp, message: str) -> None:
        trace.received(message)
        ws.close()

    App(url, trace, on_reconnect=on_reconnect, on_message=on_message).run(reconnect=0.01)


@CLIENT.driver("h_open_timeout", "a_open_timeout")
def open_timeout(url: str, trace: Trace) -> None:
    connect(url, trace, timeout=0.2)


@CLIENT.driver()
def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    ws = connect(url)
    for i in range(10):
        ws.send(f"q{i}")
    ws.close()
    closed(trace, ws)


@CLIENT.driver("h_backpressure", "a_backpressure")
def backpressure(url: str, trace: Trace) -> None:
    ws = connect(url)
    for i in range(256):  # 4 MiB: more than socket buffers hold
        ws.send(f"{i:05d}" + "b" * 16379)
    trace.add("all sent")
    trace.received(ws.recv())
    ws.close()
    closed(trace, ws)


def send_invalid_utf8(url: str) -> websocket.WebSocket:
    ws = connect(url)
    ws.send_frame(ABNF(1, 0, 0, 0, ABNF.OPCODE_TEXT, 1, b"\xc3\x28"))  # a masked text frame, invalid UTF-8
    return ws


@CLIENT.driver()
def h_invalid_utf8_from_client(url: str, trace: Trace) -> None:
    until_closed(send_invalid_utf8(url), trace)


@CLIENT.driver()
def a_invalid_utf8_from_client(url: str, trace: Trace) -> None:
    until_closed(send_invalid_utf8(url), trace, read_after_close=False)


# ASGI targets (uvicorn with each WebSocket implementation)


@CLIENT.driver()
def a_echo(url: str, trace: Trace) -> None:
    echo(url, trace, ["hello", b"\x01\x02", "", b""])


@CLIENT.driver()
def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    connect(url, trace, subprotocols=["v1", "v2"]).close()


@CLIENT.driver()
def a_accept_unoffered_subprotocol(url: str, trace: Trace) -> None:
    connect(url, trace, subprotocols=["v1"]).close()


@CLIENT.driver()
def a_no_common_subprotocol(url: str, trace: Trace) -> None:
    connect(url, trace, subprotocols=["v9"]).close()


@CLIENT.driver(*[f"a_app_close_{code}" for code in (1000, 1001, 1011, 3000, 4999)])
@CLIENT.driver("a_close_reason_unicode", "a_close_reason_long")
def app_closes(url: str, trace: Trace) -> None:
    App(url, trace).run()


@CLIENT.driver()
def a_scope(url: str, trace: Trace) -> None:
    headers = {"X-Custom": "A", "User-Agent": "agent/2"}
    ws = connect(url, header=headers, origin="https://app.example")
    trace.add("scope", json.loads(ws.recv()))
    ws.close()


@CLIENT.driver()
def a_client_ping(url: str, trace: Trace) -> None:
    h_client_ping(url, trace)


@CLIENT.driver()
def a_send_after_disconnect(url: str, trace: Trace) -> None:
    ws = connect(url)
    ws.close()
    closed(trace, ws)


# Server options and hooks


@CLIENT.driver(
    "h_server_header_none",
    "h_server_header_custom",
    "a_server_header_off",
    "h_process_request_strips_extensions",
    "h_process_response_adds_header",
)
def opened_then_echo(url: str, trace: Trace) -> None:
    echo(url, trace, ["x"])


@CLIENT.driver("h_process_request_breaks_key", "h_process_request_raises", "h_process_response_replaces")
def handshake_answer(url: str, trace: Trace) -> None:
    connect(url, trace)


@CLIENT.driver("h_bad_key", "a_bad_key")
def bad_key(url: str, trace: Trace) -> None:
    # websocket-client sends the Sec-WebSocket-Key given in a header dict instead of its own.
    connect(url, trace, header={"Sec-WebSocket-Key": "not a key"}).close()


@CLIENT.driver()
def h_origins(url: str, trace: Trace) -> None:
    connect(url, trace, origin="https://evil.example")


@CLIENT.driver()
def h_select_subprotocol(url: str, trace: Trace) -> None:
    ws = connect(url, trace, subprotocols=["v1", "v2", "v3"])
    trace.received(ws.recv())
    ws.close()


@CLIENT.driver()
def a_over_max_size(url: str, trace: Trace) -> None:
    ws = connect(url)
    ws.send("x" * 1001)
    until_closed(ws, trace, read_after_close=False)


@CLIENT.driver("a_keepalive_off", "a_keepalive_on", "h_keepalive_none", "h_keepalive_zero")
def server_pings(url: str, trace: Trace) -> None:
    """The server holds the connection, then closes it: were there pings before (answered by the library)?"""
    ws = connect(url)
    pinged = False
    try:
        while True:
            opcode, frame = ws.recv_data_frame(True)
            if opcode == ABNF.OPCODE_PING:
                pinged = True
                continue
            record_frame(trace, opcode, frame)
            if opcode == ABNF.OPCODE_CLOSE:
                break
    except websocket.WebSocketException as exc:
        trace.add("raised", *describe(exc))
    trace.add("server pinged", pinged)
    ws.shutdown()  # close() does nothing once the close frame was answered; the socket is still open


@CLIENT.driver("a_close_nocode", "a_close_reason_124")
def app_closes_with_frame(url: str, trace: Trace) -> None:
    until_closed(connect(url), trace)


@CLIENT.driver()
def h_connection_attributes(url: str, trace: Trace) -> None:
    ws = connect(url)
    trace.received(ws.recv())
    ws.close()
    closed(trace, ws)


@CLIENT.driver("h_client_vanishes", "a_client_vanishes")
def client_vanishes(url: str, trace: Trace) -> None:
    # shutdown() closes the socket without a close frame. The message first ends the server's wait, so nothing races.
    ws = connect(url)
    ws.send("last words")
    ws.shutdown()
    trace.add("connected", ws.connected)
