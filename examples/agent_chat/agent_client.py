"""The client side of the agent chat, written with plain ``websockets``.

Nothing here knows about wsfake: the same code talks to a real server.
"""

from __future__ import annotations

import json
import os
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

URL = os.environ.get("AGENT_CHAT_URL", "ws://localhost:8000/ws/ada")


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _answer(ws: Any, question: str) -> list[dict[str, Any]]:
    await ws.send(question)
    events = []
    while True:
        event = json.loads(await ws.recv())
        events.append(event)
        if event["event"] == "agent_completed":
            return events


async def ask(question: str, *, token: str = "ada-token", url: str = URL) -> list[dict[str, Any]]:
    """Send one question and return the agent's events up to ``agent_completed``."""
    async with websockets.connect(url, additional_headers=_headers(token)) as ws:
        return await _answer(ws, question)


async def ask_all(questions: list[str], *, token: str = "ada-token", url: str = URL) -> list[list[dict[str, Any]]]:
    """Ask several questions on one connection, reconnecting when the server goes away."""
    answers: list[list[dict[str, Any]]] = []
    async for ws in websockets.connect(url, additional_headers=_headers(token)):
        try:
            while len(answers) < len(questions):
                answers.append(await _answer(ws, questions[len(answers)]))
            # Returning from inside `async for` would leave the connection open until the
            # generator is finalized: close it now.
            await ws.close()
            return answers
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code not in (1001, 1012):
                raise
            continue  # the server went away: reconnect and ask again
    raise AssertionError("unreachable")
