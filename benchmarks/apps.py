"""The servers' code: one ASGI app and one websockets-style handler with the same endpoints.

``/echo`` echoes every message. ``/stream?n=N&size=S`` waits for one message (so the
client can start its clock first), then sends N text messages of S characters and
closes with 1000. The ASGI app counts its lifespan startups and shutdowns, so the
per-test cycle (W0) can check that the lifespan really ran on both servers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Lifespans:
    """How many lifespan startups and shutdowns the ASGI app has seen."""

    started = 0
    stopped = 0


def stream_params(query: str) -> tuple[int, int]:
    """``n`` and ``size`` of a ``/stream`` query string."""
    params = {key: values[0] for key, values in parse_qs(query).items()}
    return int(params.get("n", "0")), int(params.get("size", "64"))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            Lifespans.started += 1
            await send({"type": "lifespan.startup.complete"})
        else:
            Lifespans.stopped += 1
            await send({"type": "lifespan.shutdown.complete"})
            return


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI echo/stream app served by wsfake and by uvicorn."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    if scope["path"] == "/stream":
        n, size = stream_params(scope["query_string"].decode())
        await receive()  # the client's "go"
        message = {"type": "websocket.send", "text": "t" * size}
        for _ in range(n):
            await send(message)
        await send({"type": "websocket.close", "code": 1000})
        return
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": event.get("text"), "bytes": event.get("bytes")})


async def echo_handler(ws: Any) -> None:
    """The websockets-style echo handler served by wsfake's Handler and by websockets.serve."""
    async for message in ws:
        await ws.send(message)
