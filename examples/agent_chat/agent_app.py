"""An agent-chat backend: FastAPI, bearer-token auth, agent events streamed per message.

``/ws/{user}`` accepts a connection only with ``Authorization: Bearer <token>`` for that
user (else HTTP 403). Each chat message yields ``agent_started``, ``agent_thinking``,
``tool_executing``, ``tool_completed`` and ``agent_completed``. A failing tool is caught
and reported with close 1011 and a reason; an unexpected crash is not caught, so the
server drops the connection (uvicorn's behaviour). Setting ``app.state.going_away``
makes the server close the next connection with 1001, as during a deploy.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

TOKENS = {"ada-token": "ada", "bob-token": "bob"}

app = FastAPI(title="agent-chat")
app.state.going_away = False


class ToolError(Exception):
    """A tool the agent called failed."""


async def search(query: str) -> list[str]:
    await asyncio.sleep(0)
    if "unavailable" in query:
        raise ToolError("search backend unavailable")
    return [f"result {i} for {query}" for i in range(3)]


@app.websocket("/ws/{user}")
async def chat(websocket: WebSocket, user: str) -> None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or TOKENS.get(token) != user:
        await websocket.close(code=1008)  # before accept: the client gets HTTP 403
        return
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            if app.state.going_away:
                app.state.going_away = False
                await websocket.close(1001, "server going away")
                return
            await websocket.send_json({"event": "agent_started", "user": user})
            await websocket.send_json({"event": "agent_thinking", "about": text})
            if "crash" in text:
                raise RuntimeError("agent crashed")  # unhandled: the connection is dropped
            await websocket.send_json({"event": "tool_executing", "tool": "search"})
            try:
                results = await search(text)
            except ToolError as exc:
                await websocket.close(1011, f"agent failed: {exc}")
                return
            await websocket.send_json({"event": "tool_completed", "tool": "search", "results": len(results)})
            await websocket.send_json({"event": "agent_completed", "answer": results[0]})
    except WebSocketDisconnect:
        return
