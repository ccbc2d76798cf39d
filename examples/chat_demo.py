"""wsfake demo: a FastAPI chat backend streams events to a `websockets` client, in memory.

The client code is ordinary `websockets` code pointed at ws://localhost:8000 —
where nothing listens. wsfake routes it to the FastAPI app through an in-memory
pipe carrying real WebSocket frames. An audit hook counts every internet socket
the process creates, so the last line is a measurement, not a promise.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import websockets
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

import wsfake

internet_sockets: list[tuple[int, int]] = []


def count_sockets(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.__new__" and args[1] in (socket.AF_INET, socket.AF_INET6):
        internet_sockets.append((int(args[1]), int(args[2])))  # type: ignore[call-overload]


app = FastAPI()


@app.websocket("/ws/{user}")
async def chat(websocket: WebSocket, user: str) -> None:
    await websocket.accept(subprotocol="chat.v1")
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"event": "agent_started", "user": user})
            await websocket.send_json({"event": "agent_thinking", "about": text})
            await websocket.send_json({"event": "tool_executing", "tool": "search"})
            await websocket.send_json({"event": "tool_completed", "tool": "search", "results": 3})
            await websocket.send_json({"event": "agent_completed", "answer": f"3 results for {text!r}"})
    except WebSocketDisconnect as exc:
        print(f"  server: {user} disconnected with code {exc.code}")


async def client() -> None:
    """Unmodified client code: it would run the same against a real server."""
    async with websockets.connect("ws://localhost:8000/ws/ada", subprotocols=["chat.v1"]) as ws:
        print(f"  client: connected, subprotocol={ws.subprotocol}, peer={ws.remote_address}")
        for question in ["weather in Lisbon", "flights to Porto"]:
            await ws.send(question)
            while True:
                event = json.loads(await ws.recv())
                print(f"  client: {event}")
                if event["event"] == "agent_completed":
                    break


async def main() -> int:
    sys.addaudithook(count_sockets)
    async with wsfake.patch_client({"ws://localhost:8000/*": app}) as network:
        await client()
    call = network.routes[0].calls.last
    print(f"wsfake: {network.routes[0].call_count} connection served in memory by FastAPI app {app.title!r}")
    print(
        f"wsfake: {len(call.received)} messages client->server, {len(call.sent)} server->client, "
        f"close {call.close_received} / {call.close_sent}"
    )
    print(f"network sockets opened: {len(internet_sockets)} (AF_INET/AF_INET6, counted by an audit hook)")
    return 0 if not internet_sockets else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
