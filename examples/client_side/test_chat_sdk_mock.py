"""A tiny chat SDK (asyncio ``websockets``) tested against a scripted ``MockServer``.

The server you would need is someone else's service; a mock that answers
canned replies checks nothing. Here the test plays the server step by step:
it accepts the connection, checks what the SDK sends, answers, pings, closes
or cuts the connection, and the SDK's real ``websockets`` code handles each.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

import wsfake

# ---- the client code under test (in a real project: its own module) ----


class ChatError(Exception):
    """Something the chat service did that the SDK reports to the app."""


class AuthRejected(ChatError):
    """The service refused the token."""


class RoomClosed(ChatError):
    """The service closed the room (close code 4000)."""


class ConnectionLost(ChatError):
    """The connection broke without a closing handshake."""


class ChatClient:
    """Joins a room and exchanges messages; speaks protocol v2, or v1 with older servers."""

    def __init__(self, ws: Any, room: str) -> None:
        self._ws = ws
        self.room = room
        self.protocol = ws.subprotocol
        self._next_id = 0

    @classmethod
    async def connect(cls, url: str, *, token: str, room: str) -> ChatClient:
        try:
            ws = await websockets.connect(
                url, additional_headers={"Authorization": f"Bearer {token}"}, subprotocols=["chat.v2", "chat.v1"]
            )
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise AuthRejected(exc.response.body.decode()) from exc
            raise
        await ws.send(json.dumps({"op": "join", "room": room}))
        return cls(ws, room)

    async def say(self, text: str) -> None:
        if self.protocol == "chat.v1":
            message: dict[str, Any] = {"op": "msg", "body": text}
        else:
            self._next_id += 1
            message = {"op": "say", "id": self._next_id, "text": text}
        await self._ws.send(json.dumps(message))

    async def next_event(self) -> dict[str, Any]:
        """The room's next event; raises RoomClosed or ConnectionLost when the connection ends."""
        try:
            return dict(json.loads(await self._ws.recv()))
        except ConnectionClosedOK as exc:
            raise ChatError("the chat service closed the connection") from exc
        except ConnectionClosedError as exc:
            if exc.rcvd is None:
                raise ConnectionLost("the chat service went away") from exc
            if exc.rcvd.code == 4000:
                raise RoomClosed(exc.rcvd.reason) from exc
            raise

    async def close(self) -> None:
        await self._ws.close()


# ---- the tests ----

URL = "wss://chat.example.com/v2/socket"


@pytest.mark.asyncio
async def test_join_talk_and_get_closed_by_the_server() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL, json=True, subprotocols=["chat.v2", "chat.v1"])
        chat = await ChatClient.connect(URL, token="ada-token", room="lobby")

        conn = await server.connected()  # the connection the SDK just opened
        assert conn.headers["Authorization"] == "Bearer ada-token"
        assert (conn.subprotocols, conn.subprotocol, chat.protocol) == (["chat.v2", "chat.v1"], "chat.v2", "chat.v2")
        await conn.expect({"op": "join", "room": "lobby"})

        await conn.send({"event": "joined", "members": ["bob"]})
        await conn.send({"event": "message", "from": "bob", "text": "hi ada"})
        assert await chat.next_event() == {"event": "joined", "members": ["bob"]}
        assert await chat.next_event() == {"event": "message", "from": "bob", "text": "hi ada"}

        await chat.say("hello")
        await chat.say("anyone?")
        assert await conn.receive() == {"op": "say", "id": 1, "text": "hello"}
        await conn.expect(lambda message: message["id"] == 2)  # a predicate instead of a value
        conn.assert_nothing_received()

        assert await conn.ping() >= 0  # the SDK's library answers pings by itself
        assert await conn.close(4000, "room archived") == (4000, "room archived")  # the client's answer
        with pytest.raises(RoomClosed, match="room archived"):
            await chat.next_event()

    # Everything the SDK sent, in order, stays available after the fact.
    assert conn.messages == [
        {"op": "join", "room": "lobby"},
        {"op": "say", "id": 1, "text": "hello"},
        {"op": "say", "id": 2, "text": "anyone?"},
    ]


@pytest.mark.asyncio
async def test_a_broadcast_reaches_every_member() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL, json=True, subprotocols=["chat.v2"])
        ada = await ChatClient.connect(URL, token="ada-token", room="lobby")
        bob = await ChatClient.connect(URL, token="bob-token", room="lobby")
        first, second = await server.connected(), await server.connected()  # in the order they connected
        assert first.headers["Authorization"] == "Bearer ada-token"

        await server.send({"event": "announcement", "text": "maintenance at 18:00"})  # to every open connection
        for chat in (ada, bob):
            assert await chat.next_event() == {"event": "announcement", "text": "maintenance at 18:00"}

        await bob.close()
        assert await second.wait_closed() == (1000, "")
        await ada.close()
    assert server.messages == [{"op": "join", "room": "lobby"}] * 2  # every client's messages, in arrival order


@pytest.mark.asyncio
async def test_a_dropped_connection_is_reported_as_lost() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL, json=True, subprotocols=["chat.v2"])
        chat = await ChatClient.connect(URL, token="ada-token", room="lobby")
        conn = await server.connected()
        conn.drop()  # no close frame, as when a load balancer or the network dies
        with pytest.raises(ConnectionLost):
            await chat.next_event()
        assert await conn.wait_closed() == (1006, "")


@pytest.mark.asyncio
async def test_a_refused_token_raises_auth_rejected() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL, json=True, subprotocols=["chat.v2"])
        server.reject_next(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, "token expired")
        with pytest.raises(AuthRejected, match="token expired"):
            await ChatClient.connect(URL, token="old-token", room="lobby")
        assert server.route.calls.last.status == 401

        chat = await ChatClient.connect(URL, token="new-token", room="lobby")  # only the next one was rejected
        conn = await server.connected()
        assert conn.headers["Authorization"] == "Bearer new-token"
        await chat.close()


@pytest.mark.asyncio
async def test_an_older_server_gets_protocol_v1() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL, json=True, subprotocols=["chat.v1"])  # chosen as websockets.serve chooses
        chat = await ChatClient.connect(URL, token="ada-token", room="lobby")
        conn = await server.connected()
        assert conn.subprotocol == chat.protocol == "chat.v1"
        await chat.say("hello")
        await conn.expect({"op": "join", "room": "lobby"})
        await conn.expect({"op": "msg", "body": "hello"})
        await chat.close()


@pytest.mark.asyncio
async def test_a_request_that_waits_for_an_answer_runs_as_a_task() -> None:
    """The SDK waits for the server here, so the test plays the server while the SDK call runs."""
    async with wsfake.patch_client() as net:
        server = net.mock(URL, json=True, subprotocols=["chat.v2"])
        chat = await ChatClient.connect(URL, token="ada-token", room="lobby")
        conn = await server.connected()

        async def say_and_wait_for_ack() -> dict[str, Any]:
            await chat.say("important")
            return await chat.next_event()

        pending = asyncio.ensure_future(say_and_wait_for_ack())
        await conn.expect({"op": "join", "room": "lobby"})
        said = await conn.expect(lambda message: message.get("op") == "say")
        await conn.send({"event": "ack", "id": said["id"]})
        assert await pending == {"event": "ack", "id": 1}
        await chat.close()
        assert await conn.wait_closed() == (1000, "")
