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
