"""A minimal wsproto client over a pipe's client stream, to drive servers on any backend.

Like a real client, it closes its end of the connection once the closing
handshake is over (a server waits for that before its close is complete).
"""

from __future__ import annotations

from typing import Any

import anyio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, Event, RejectConnection, RejectData, Request

import wsfake
from wsfake import URL, Network


class WsprotoClient:
    def __init__(self, stream: wsfake.PipeStream, *, close_when_done: bool = True) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._events: list[Event] = []
        #: False to leave the socket open after the closing handshake (as some real clients do).
        self.close_when_done = close_when_done

    @classmethod
    async def connect(
        cls, network: Network, url: str, *, close_when_done: bool = True, **request: Any
    ) -> tuple[WsprotoClient, Event]:
        parsed = URL.parse(url)
        found = network.resolve(parsed)
        assert isinstance(found, wsfake.Route), f"no route for {url}"
        pipe = await network.open(found, parsed)
        client = cls(pipe.client_stream(), close_when_done=close_when_done)
        await client.send(Request(host=parsed.authority, target=parsed.resource, **request))
        first = await client.next_event()
        return client, first

    async def send(self, event: Event) -> None:
        await self.stream.send(self.ws.send(event))
        self._close_when_done()

    def _close_when_done(self) -> None:
        if self.close_when_done and self.ws.state is ConnectionState.CLOSED and not self.stream.closed:
            self.stream.close()

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send(data)

    async def next_event(self) -> Event:
        with anyio.fail_after(5):
            while not self._events:
                try:
                    data: bytes | None = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    data = None
                self.ws.receive_data(data)
                self._events.extend(self.ws.events())
                self._close_when_done()
        return self._events.pop(0)

    async def rejection(self, first: Event) -> tuple[int, bytes]:
        assert isinstance(first, RejectConnection), first
        body = b""
        while True:
            event = await self.next_event()
            assert isinstance(event, RejectData)
            body += event.data
            if event.body_finished:
                return first.status_code, body


__all__ = ["AcceptConnection", "WsprotoClient"]
