"""What routes record: complete messages, close frames, and a timed transcript."""

from __future__ import annotations

import pytest
import websockets
from websockets.exceptions import ConnectionClosedError

import wsfake
from wsfake import ServerConnection

pytestmark = pytest.mark.asyncio


async def handler(ws: ServerConnection) -> None:
    await ws.send(await ws.recv())
    await ws.send(["frag", "mented"])
    await ws.send("x" * 500)
    await ws.recv()
    raise ValueError("handler bug")


async def test_calls_record_messages_closes_and_a_transcript() -> None:
    async with wsfake.patch_client(raise_server_errors=False) as net:
        route = net.route("ws://localhost:8000/chat", handler, subprotocols=["v1"])
        async with websockets.connect("ws://localhost:8000/chat", subprotocols=["v1"]) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            assert await ws.recv() == "fragmented"
            await ws.recv()
            await ws.send(b"\x00\x01")
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
    call = route.calls[0]
    assert call.target == "Handler(handler)"
    assert call.received == ["hello", b"\x00\x01"] and call.sent == ["hello", "fragmented", "x" * 500]
    assert call.close_sent == (1011, "") and call.close_received == (1011, "")
    kinds = [(entry.direction, entry.kind) for entry in call.transcript]
    assert kinds == [
        (">", "request"),
        ("<", "response"),
        (">", "message"),
        ("<", "message"),
        ("<", "message"),
        ("<", "message"),
        (">", "message"),
        ("!", "error"),
        ("<", "close"),
        (">", "close"),
    ]
    offsets = [entry.offset for entry in call.transcript]
    assert offsets == sorted(offsets) and offsets[0] >= 0
    text = call.format_transcript()
    assert text.startswith("ws://localhost:8000/chat -> Handler(handler): HTTP 101, subprotocol 'v1'")
    assert "... (500 chars)" in text and "server exception: ValueError: handler bug" in text
    assert "< close 1011 ''" in text and "> 'hello'" in text


async def test_records_are_bounded_and_the_count_stays_exact() -> None:
    # Only the most recent calls keep their full records (keep_calls, 100 by default): once that
    # many connections have been served, more connections no longer grow memory.
    import gc
    import tracemalloc

    import websockets

    async def echo(ws: wsfake.ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def one(i: int) -> None:
        async with websockets.connect(f"ws://localhost:8000/{i}", compression=None) as ws:
            await ws.send(f"m{i}")
            await ws.recv()

    tracemalloc.start()
    try:
        async with wsfake.patch_client(echo) as net:
            for i in range(150):  # fills the kept window, then turns it over: all of it is traced
                await one(i)
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for i in range(150, 750):
                await one(i)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    route = net.routes[0]
    assert route.call_count == 750 and len(route.calls) == 100 and route.calls.dropped == 650
    last = route.calls.last
    assert last.url == "ws://localhost:8000/749" and last.received == ["m749"] and last.sent == ["m749"]
    assert last.close_received == (1000, "") and len(last.transcript) >= 5
    assert grown < 256 * 1024, f"memory grew by {grown} bytes over 600 connections past the bound"


async def test_keep_calls_is_configurable() -> None:
    async def handler(ws: ServerConnection) -> None:
        pass

    assert wsfake.Network(keep_calls=5).route("ws://x/*", handler).calls.limit == 5
    assert wsfake.Network(keep_calls=None).route("ws://x/*", handler).calls.limit is None
    with pytest.raises(ValueError, match="keep_calls"):
        wsfake.Network(keep_calls=0)
