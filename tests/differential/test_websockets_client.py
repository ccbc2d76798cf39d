"""Differential scenarios for the websockets asyncio client.

Each scenario runs against real servers on 127.0.0.1 and against wsfake; the traces
must be equal (see runner.py for what a trace holds and what is normalised).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
import websockets
from runner import SCENARIOS, Trace, run, scenario
from servers import app, deny, deny_503_once, handler

# Helpers shared by the drivers


async def until_closed(ws: Any, trace: Trace) -> None:
    """Record every message until the connection closes, then the close."""
    try:
        while True:
            trace.received(await ws.recv())
    except websockets.exceptions.ConnectionClosed as exc:
        trace.raised(exc)
    trace.closed(ws)


async def echo(url: str, trace: Trace, messages: list[Any], **options: Any) -> None:
    async with websockets.connect(url, **options) as ws:
        trace.opened(ws)
        for message in messages:
            await ws.send(message)
            trace.received(await ws.recv())
    trace.closed(ws)


def _no_delay() -> Any:
    while True:
        yield 0.0


# Handler targets (websockets.serve)


@scenario("text echo", handler=handler, path="/echo")
async def h_text_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", "ünïcødé ✓", "x" * 5000])


@scenario("binary echo", handler=handler, path="/echo")
async def h_binary_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, [b"\x00\x01\xff", bytes(range(256)) * 20])


@scenario("empty text and binary messages", handler=handler, path="/echo")
async def h_empty_messages(url: str, trace: Trace) -> None:
    await echo(url, trace, ["", b""])


@scenario("client message just under the server's max_size", handler=handler, path="/echo", max_size=1000)
async def h_under_max_size(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x" * 999], compression=None)


@scenario("client message at the server's max_size", handler=handler, path="/echo", max_size=1000)
async def h_at_max_size(url: str, trace: Trace) -> None:
    await echo(url, trace, ["x" * 1000], compression=None)


@scenario("client message over the server's max_size (1009)", handler=handler, path="/echo", max_size=1000)
async def h_over_max_size(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        await ws.send("x" * 1001)
        await until_closed(ws, trace)


@scenario("server message over the client's max_size (client sends 1009)", handler=handler, path="/big?size=2000")
async def h_over_client_max_size(url: str, trace: Trace) -> None:
    async with websockets.connect(url, max_size=1000) as ws:
        await until_closed(ws, trace)


@scenario("fragmented sends from the client, read with recv_streaming", handler=handler, path="/streaming")
async def h_fragmented_client_sends(url: str, trace: Trace) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"p"
        yield b"q"

    async with websockets.connect(url) as ws:
        await ws.send(["x", "y", "z"])
        await ws.send(parts())
        trace.received(await ws.recv())
    trace.closed(ws)


@scenario("fragmented sends from the server (sync and async iterables)", handler=handler, path="/fragments")
async def h_fragmented_server_sends(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        trace.add("fragments", [f async for f in ws.recv_streaming()])
        trace.received(await ws.recv())
    trace.closed(ws)


@scenario("client ping is answered with a pong", handler=handler, path="/echo")
async def h_client_ping(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        latency = await asyncio.wait_for(await ws.ping(b"abc"), 5)
        trace.add("pong", latency >= 0)
    trace.closed(ws)


@scenario("server ping is answered by the client", handler=handler, path="/ping")
async def h_server_ping(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        trace.received(await ws.recv())
    trace.closed(ws)


@scenario("keepalive with a short ping_interval on both sides", handler=handler, path="/echo", ping_interval=0.02)
async def h_keepalive(url: str, trace: Trace) -> None:
    async with websockets.connect(url, ping_interval=0.02, ping_timeout=5) as ws:
        while ws.latency == 0:
            await asyncio.sleep(0.01)
        await ws.send("still alive")
        trace.received(await ws.recv())
    trace.closed(ws)


for _code, _reason in [(1000, ""), (1001, "going away"), (1011, "oops"), (3000, "registered"), (4999, "last private")]:

    @scenario(f"server closes with {_code}", handler=handler, path=f"/close?code={_code}&reason={quote(_reason)}")
    async def h_server_close(url: str, trace: Trace) -> None:
        async with websockets.connect(url) as ws:
            await until_closed(ws, trace)

    SCENARIOS[-1].name = f"h_server_close_{_code}"


@scenario("server close reason with non-ASCII text", handler=handler, path="/close?code=4000&reason=%C3%BC%E2%9C%93")
async def h_server_close_unicode(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("server close reason of 123 bytes (the limit)", handler=handler, path="/close?code=4000&reason=" + "r" * 123)
async def h_server_close_long_reason(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("client closes with 1000; the handler observes it", handler=handler, path="/observe")
async def h_client_close_1000(url: str, trace: Trace) -> None:
    ws = await websockets.connect(url)
    await ws.send("one")
    await ws.close()
    trace.closed(ws)


@scenario("client closes with 4000 and a reason", handler=handler, path="/observe")
async def h_client_close_4000(url: str, trace: Trace) -> None:
    ws = await websockets.connect(url)
    await ws.close(4000, "client leaves")
    trace.closed(ws)
    try:
        await ws.recv()
    except websockets.exceptions.ConnectionClosed as exc:
        trace.raised(exc)


@scenario("client closes twice", handler=handler, path="/observe")
async def h_double_close(url: str, trace: Trace) -> None:
    ws = await websockets.connect(url)
    await ws.close(4001, "first")
    await ws.close(4002, "second")
    trace.closed(ws)


@scenario("exit of `async with` on an exception closes with 1011", handler=handler, path="/observe")
async def h_context_exit_on_error(url: str, trace: Trace) -> None:
    try:
        async with websockets.connect(url) as ws:
            await ws.send("then fail")
            raise KeyError("client bug")
    except KeyError:
        trace.add("client raised")
    trace.closed(ws)


@scenario("handler returns: close 1000", handler=handler, path="/return")
async def h_handler_returns(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("handler raises: close 1011", handler=handler, path="/raise")
async def h_handler_raises(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("server aborts the transport: 1006", handler=handler, path="/abort")
async def h_server_abort(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("server sends invalid UTF-8 in a text frame: 1007", handler=handler, path="/invalid_utf8")
async def h_invalid_utf8(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("messages sent right after the handshake, before the client reads", handler=handler, path="/burst?n=30")
async def h_burst_before_read(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await asyncio.sleep(0.05)
        await until_closed(ws, trace)


@scenario(
    "subprotocol negotiation: the server's preference wins",
    handler=handler,
    path="/subprotocol",
    subprotocols=["v2", "v1"],
)
async def h_subprotocol(url: str, trace: Trace) -> None:
    async with websockets.connect(url, subprotocols=["v1", "v2"]) as ws:
        trace.opened(ws)
        trace.received(await ws.recv())


@scenario("no common subprotocol: HTTP 400", handler=handler, path="/subprotocol", subprotocols=["v2"])
async def h_no_common_subprotocol(url: str, trace: Trace) -> None:
    await websockets.connect(url, subprotocols=["v9"])


@scenario(
    "client offers no subprotocol to a server that requires one: HTTP 400",
    handler=handler,
    path="/subprotocol",
    subprotocols=["v2"],
)
async def h_missing_subprotocol(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@scenario("process_request denies with 403", handler=handler, path="/deny403", process_request=deny)
async def h_deny_403(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@scenario(
    "process_request answers 404 with a body and a header", handler=handler, path="/deny404", process_request=deny
)
async def h_deny_404(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@scenario("request headers: custom, duplicated, Origin, User-Agent, Authorization", handler=handler, path="/headers")
async def h_request_headers(url: str, trace: Trace) -> None:
    headers = [("X-Custom", "one"), ("x-custom", "two"), ("Authorization", "Bearer t")]
    async with websockets.connect(
        url, additional_headers=headers, origin="https://app.example", user_agent_header="agent/1.0"
    ) as ws:
        trace.add("server saw", json.loads(await ws.recv()))


@scenario("query string and percent-encoded path", handler=handler, path="/path/a%20b/%C3%A9?x=1&y=%20")
async def h_query_and_path(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        trace.received(await ws.recv())


@scenario("permessage-deflate negotiated, large compressible message", handler=handler, path="/echo")
async def h_deflate_large(url: str, trace: Trace) -> None:
    await echo(url, trace, ["chat event " * 20000, b"\x00" * 100000])


@scenario("compression disabled by the client", handler=handler, path="/echo")
async def h_no_deflate_client(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"], compression=None)


@scenario("compression disabled by the server", handler=handler, path="/echo", compression=None)
async def h_no_deflate_server(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"])


@scenario("50 concurrent connections", handler=handler, path="/echo")
async def h_concurrent(url: str, trace: Trace) -> None:
    async def one(i: int) -> Any:
        async with websockets.connect(url) as ws:
            await ws.send(f"c{i}")
            return await ws.recv()

    trace.add("replies", await asyncio.gather(*[one(i) for i in range(50)]))


@scenario(
    "reconnect loop: 503 first, then accepted", handler=handler, path="/echo?reconnect", process_request=deny_503_once
)
async def h_reconnect_after_503(url: str, trace: Trace) -> None:
    from servers import _seen

    _seen.clear()
    async for ws in websockets.connect(url, reconnect_delays=_no_delay):
        await ws.send("back")
        trace.received(await ws.recv())
        break


@scenario(
    "open_timeout when the server never completes the handshake",
    handler=handler,
    path="/hang",
    process_request=deny,
    open_timeout=0.5,
)
async def h_open_timeout(url: str, trace: Trace) -> None:
    await websockets.connect(url, open_timeout=0.2)


@scenario("close while messages are queued both ways", handler=handler, path="/slow?delay=0.05")
async def h_close_with_queued_messages(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        for i in range(10):
            await ws.send(f"q{i}")
    trace.closed(ws)


@scenario(
    "a handler that does not read at first while the client sends more than the buffers hold",
    handler=handler,
    path="/count?n=256&delay=0.2",
)
async def h_backpressure(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        for i in range(256):  # 4 MiB: more than socket buffers and max_queue hold
            await ws.send(f"{i:05d}" + "b" * 16379)
        trace.add("all sent")
        trace.received(await ws.recv())
    trace.closed(ws)


@scenario("invalid UTF-8 from the client: 1007 with websockets' reason", handler=handler, path="/echo")
async def h_invalid_utf8_from_client(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        ws.transport.write(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))  # a masked text frame, invalid UTF-8
        await until_closed(ws, trace)


@scenario(
    "a request line that is not valid HTTP: websockets.serve closes without answering",
    handler=handler,
    path="/echo bad",
)
async def h_invalid_request_line(url: str, trace: Trace) -> None:
    await websockets.connect(url)


# ASGI targets (uvicorn with each WebSocket implementation)


@scenario("ASGI: a request line that is not valid HTTP: uvicorn answers 400", app=app, path="/echo bad")
async def a_invalid_request_line(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@scenario("ASGI: text and binary echo; disconnect seen by the app", app=app, path="/echo")
async def a_echo(url: str, trace: Trace) -> None:
    await echo(url, trace, ["hello", b"\x01\x02", "", b""])


@scenario("ASGI: close before accept is HTTP 403", app=app, path="/deny")
async def a_close_before_accept(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@scenario("ASGI: denial response 404 with body and headers", app=app, path="/http404")
async def a_denial_response(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@scenario("ASGI: exception before accept is HTTP 500", app=app, path="/raise_before")
async def a_exception_before_accept(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@scenario("ASGI: return before accept is HTTP 500", app=app, path="/return_before")
async def a_return_before_accept(url: str, trace: Trace) -> None:
    await websockets.connect(url)


@scenario("ASGI: exception after accept drops the connection (1006)", app=app, path="/raise_after")
async def a_exception_after_accept(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("ASGI: return after accept without close drops the connection (1006)", app=app, path="/return_after")
async def a_return_after_accept(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("ASGI: accept with a subprotocol and extra headers", app=app, path="/echo?subprotocol=v2&header=yes")
async def a_accept_subprotocol_headers(url: str, trace: Trace) -> None:
    async with websockets.connect(url, subprotocols=["v1", "v2"]) as ws:
        trace.opened(ws)


@scenario("ASGI: no common subprotocol, the app accepts without one", app=app, path="/echo?subprotocol=")
async def a_no_common_subprotocol(url: str, trace: Trace) -> None:
    async with websockets.connect(url, subprotocols=["v9"]) as ws:
        trace.opened(ws)


for _code, _reason in [(1000, ""), (1001, "bye"), (1011, "server error"), (3000, "registered"), (4999, "private")]:

    @scenario(f"ASGI: the app closes with {_code}", app=app, path=f"/close?code={_code}&reason={quote(_reason)}")
    async def a_app_close(url: str, trace: Trace) -> None:
        async with websockets.connect(url) as ws:
            await until_closed(ws, trace)

    SCENARIOS[-1].name = f"a_app_close_{_code}"


@scenario("ASGI: close reason with non-ASCII text", app=app, path="/close?code=4000&reason=%C3%BC%E2%9C%93")
async def a_close_reason_unicode(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("ASGI: close reason of 123 bytes", app=app, path="/close?code=4000&reason=" + "r" * 123)
async def a_close_reason_long(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await until_closed(ws, trace)


@scenario("ASGI: client closes with 4000 and a reason; the app sees it", app=app, path="/echo")
async def a_client_close_code(url: str, trace: Trace) -> None:
    ws = await websockets.connect(url)
    await ws.close(4000, "client leaves")
    trace.closed(ws)


@scenario(
    "ASGI: scope (path decoding, raw_path, query, headers, subprotocols)",
    app=app,
    path="/scope/r%C3%A9sum%C3%A9%20x?token=a%20b&x=1",
)
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


@scenario("ASGI: messages sent right after accept, before the client reads", app=app, path="/burst?n=30")
async def a_burst(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await asyncio.sleep(0.05)
        await until_closed(ws, trace)


@scenario("ASGI: server message over the client's max_size", app=app, path="/big?size=5000")
async def a_over_client_max_size(url: str, trace: Trace) -> None:
    async with websockets.connect(url, max_size=1000) as ws:
        await until_closed(ws, trace)


@scenario("ASGI: large compressible messages with permessage-deflate", app=app, path="/echo")
async def a_deflate_large(url: str, trace: Trace) -> None:
    await echo(url, trace, ["chat event " * 20000, b"\x00" * 100000])


@scenario("ASGI: compression disabled by the client", app=app, path="/echo")
async def a_no_deflate(url: str, trace: Trace) -> None:
    await echo(url, trace, ["plain"], compression=None)


@scenario("ASGI: client ping is answered", app=app, path="/echo")
async def a_client_ping(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        trace.add("pong", await asyncio.wait_for(await ws.ping(b"x"), 5) >= 0)
    trace.closed(ws)


@scenario("ASGI: invalid UTF-8 from the client: 1007", app=app, path="/echo")
async def a_invalid_utf8_from_client(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        ws.transport.write(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))  # a masked text frame, invalid UTF-8
        await until_closed(ws, trace)


@scenario("ASGI: send after the client disconnected raises an OSError", app=app, path="/send_after_disconnect")
async def a_send_after_disconnect(url: str, trace: Trace) -> None:
    async with websockets.connect(url) as ws:
        await ws.send("bye")
    trace.closed(ws)


@scenario("ASGI: 50 concurrent connections", app=app, path="/echo")
async def a_concurrent(url: str, trace: Trace) -> None:
    async def one(i: int) -> Any:
        async with websockets.connect(url) as ws:
            await ws.send(f"c{i}")
            return await ws.recv()

    trace.add("replies", await asyncio.gather(*[one(i) for i in range(50)]))


@scenario("ASGI: open_timeout when the app never accepts", app=app, path="/never_accept")
async def a_open_timeout(url: str, trace: Trace) -> None:
    await websockets.connect(url, open_timeout=0.2)


@scenario("ASGI: a slow app while the client sends more than the buffers hold", app=app, path="/count?n=256&delay=0.2")
async def a_backpressure(url: str, trace: Trace) -> None:
    async with websockets.connect(url, compression=None) as ws:
        for i in range(256):
            await ws.send(f"{i:05d}" + "b" * 16379)
        trace.add("all sent")
        trace.received(await ws.recv())
    trace.closed(ws)


@scenario("ASGI: keepalive with a short client ping_interval", app=app, path="/echo")
async def a_keepalive(url: str, trace: Trace) -> None:
    async with websockets.connect(url, ping_interval=0.02, ping_timeout=5) as ws:
        while ws.latency == 0:
            await asyncio.sleep(0.01)
        await ws.send("alive")
        trace.received(await ws.recv())
    trace.closed(ws)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(case: Any) -> None:
    outcome = await run(case)
    assert outcome.fake == outcome.reference, (
        f"wsfake differs from the real servers' majority in {case.name!r} ({case.description})\n"
        f"  real ({', '.join(outcome.real)}): {json.dumps(outcome.reference, default=str)}\n"
        f"  fake: {json.dumps(outcome.fake, default=str)}"
    )


def test_there_are_at_least_60_scenarios() -> None:
    assert len(SCENARIOS) >= 60, len(SCENARIOS)
