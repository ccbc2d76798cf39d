"""The servers every scenario runs: one ASGI app and one handler with the same two endpoints.

``/echo`` echoes every message; ``/stream?n=N&size=S&binary=0|1`` waits for one message
(so the client can start its clock first), then sends N messages of S bytes (or
characters) and closes with 1000.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs


def _stream_params(query: str) -> tuple[int, int, bool]:
    params = {k: v[0] for k, v in parse_qs(query).items()}
    return int(params.get("n", "0")), int(params.get("size", "64")), params.get("binary") == "1"


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await receive()
    await send({"type": "websocket.accept"})
    if scope["path"] == "/stream":
        n, size, binary = _stream_params(scope["query_string"].decode())
        await receive()  # the client's "go"
        message: dict[str, Any] = {"type": "websocket.send"}
        message["bytes" if binary else "text"] = b"b" * size if binary else "t" * size
        for _ in range(n):
            await send(message)
        await send({"type": "websocket.close", "code": 1000})
        return
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": event.get("text"), "bytes": event.get("bytes")})


async def handler(ws: Any) -> None:
    path, _, query = ws.request.path.partition("?")
    if path == "/stream":
        n, size, binary = _stream_params(query)
        await ws.recv()  # the client's "go"
        payload: str | bytes = b"b" * size if binary else "t" * size
        for _ in range(n):
            await ws.send(payload)
        await ws.close()
        return
    async for message in ws:
        await ws.send(message)
