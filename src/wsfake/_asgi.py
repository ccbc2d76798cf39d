"""ASGI targets: a FastAPI/Starlette app or any ASGI callable.

One connection is run the way uvicorn runs it (``websockets-sansio`` and
``wsproto`` implementations agree on everything below): the scope, the event
order, 403 for a close before accept, the ``websocket.http.response`` denial
extension, 500 for a failure before accept, and after accept a transport that
is dropped without a close frame when the app ends without closing.
"""

from __future__ import annotations

import random
import struct
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from wsproto.events import BytesMessage, CloseConnection, Message, Pong, TextMessage

from ._exceptions import ClientDisconnected
from ._records import Call
from ._runtime import EventLike, Spawned, event_factory, spawn
from ._session import ConnectionLost, ServerSession

Scope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[object]]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}


def build_scope(
    session: ServerSession,
    *,
    scheme: str,
    root_path: str,
    state: dict[str, Any],
    client: tuple[str, int],
    server: tuple[str, int],
) -> dict[str, Any]:
    """The ``websocket`` scope for the request the session has read."""
    request = session.request
    assert request is not None
    raw_path, _, query_string = request.target.partition("?")
    headers = [(name.lower(), value) for name, value in session.raw_headers]
    subprotocols: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            subprotocols.extend(token.strip() for token in value.decode("latin-1").split(",") if token.strip())
    return {
        "type": "websocket",
        "asgi": dict(ASGI_VERSION),
        "http_version": "1.1",
        "scheme": scheme,
        "server": server,
        "client": client,
        "root_path": root_path,
        "path": root_path + urllib.parse.unquote(raw_path),
        "raw_path": root_path.encode("ascii") + raw_path.encode("ascii"),
        "query_string": query_string.encode("ascii"),
        "headers": headers,
        "subprotocols": subprotocols,
        "state": state.copy(),
        "extensions": {"websocket.http.response": {}},
    }


class ASGIConnection:
    """The receive/send pair given to the app for one connection."""

    def __init__(self, session: ServerSession, call: Call, *, close_timeout: float = 10) -> None:
        self.session = session
        self.call = call
        self.close_timeout = close_timeout
        self._pong: tuple[bytes, EventLike] | None = None
        self._queue: deque[ASGIMessage] = deque([{"type": "websocket.connect"}])
        self._new_event = event_factory()
        self._app_waiting: EventLike | None = None
        self._reader_waiting: EventLike | None = None
        self._client_gone = self._new_event()
        self._accepted = self._new_event()
        self._disconnect: ASGIMessage | None = None
        self.handshake_complete = False
        self.close_sent = False
        self.disconnected = False
        self._initial_response: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None
        self._text_parts: list[str] = []
        self._bytes_parts: list[bytes] = []

    def _put(self, message: ASGIMessage) -> None:
        self._queue.append(message)
        if self._app_waiting is not None:
            self._app_waiting.set()

    def _resume_reader(self) -> None:
        if self._reader_waiting is not None:
            self._reader_waiting.set()

    def _put_disconnect(self, code: int, reason: str | None = None) -> None:
        message: ASGIMessage = {"type": "websocket.disconnect", "code": code}
        if reason is not None:
            message["reason"] = reason
        self._put(message)

    async def receive(self) -> ASGIMessage:
        """The next event; after ``websocket.disconnect`` it is repeated."""
        while not self._queue:
            if self._disconnect is not None:
                return dict(self._disconnect)
            self._app_waiting = waiting = self._new_event()
            try:
                await waiting.wait()
            finally:
                self._app_waiting = None
        message = self._queue.popleft()
        if message["type"] == "websocket.disconnect":
            self._disconnect = message
        if not self._queue:
            self._resume_reader()
        return message

    async def send(self, message: ASGIMessage) -> None:
        """Handle one message from the app, with uvicorn's rules and error messages."""
        if self.disconnected:
            raise ClientDisconnected("the client has disconnected")
        kind = message["type"]
        session = self.session
        if not self.handshake_complete and self._initial_response is None:
            if kind == "websocket.accept":
                subprotocol = message.get("subprotocol")
                offered = self.call.subprotocols_offered
                if subprotocol is not None and subprotocol not in offered:
                    raise RuntimeError(
                        f"the app accepted with subprotocol {subprotocol!r}, which the client did not offer "
                        f"(offered: {offered}); accept with one of those or with subprotocol=None"
                    )
                self.handshake_complete = True
                try:
                    await session.accept(subprotocol, list(message.get("headers") or []))
                except ConnectionLost:
                    raise ClientDisconnected("the client has disconnected") from None
                self._accepted.set()
            elif kind == "websocket.close":
                self._put_disconnect(1006)
                self.close_sent = self.handshake_complete = True
                await session.reject(403, [], b"")
            elif kind == "websocket.http.response.start":
                status = message["status"]
                if not 100 <= status < 600:
                    raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
                self._initial_response = (status, list(message.get("headers") or []), b"")
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' "
                    f"or 'websocket.http.response.start' but got '{kind}'."
                )
        elif self._initial_response is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'.")
            status, headers, body = self._initial_response
            self._initial_response = (status, headers, body + bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self._put_disconnect(1006)
                self.close_sent = self.handshake_complete = True
                await session.reject(*self._initial_response)
        elif not self.close_sent:
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is None:
                    data = message.get("text")
                if data is None:
                    return
                if not isinstance(data, (str, bytes, bytearray, memoryview)):
                    raise TypeError(
                        f"websocket.send needs 'text' as str or 'bytes' as bytes, not {type(data).__name__}"
                    )
                try:
                    await session.send_message(data if isinstance(data, str) else bytes(data))
                except ConnectionLost:
                    raise ClientDisconnected("the client has disconnected") from None
            elif kind == "websocket.close":
                code = message.get("code", 1000) or 1000
                reason = message.get("reason", "") or ""
                self._put_disconnect(code, reason)
                self.close_sent = True
                self._resume_reader()
                try:
                    await session.send_close(code, reason)
                except ConnectionLost:
                    raise ClientDisconnected("the client has disconnected") from None
            else:
                raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'.")
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")

    async def read_loop(self) -> None:
        """Turn client frames into receive events.

        Like uvicorn, it stops reading while a received message waits for the
        app, so a slow app pushes back on the client through the pipe. It holds
        at most one chunk it has read but not parsed, as a socket buffer would.
        """
        session = self.session
        try:
            while True:
                data = await session.read_chunk()
                while self._queue and not self.close_sent:
                    self._reader_waiting = waiting = self._new_event()
                    try:
                        await waiting.wait()
                    finally:
                        self._reader_waiting = None
                for event in await session.process(data):
                    if isinstance(event, Message):
                        self._on_message(event)
                    elif isinstance(event, Pong):
                        if self._pong is not None and bytes(event.payload) == self._pong[0]:
                            self._pong[1].set()
                    elif isinstance(event, CloseConnection):
                        if not self.close_sent:
                            self._put_disconnect(int(event.code), event.reason or "")
                        self.disconnected = True
                        session.finish()
                        return
        except ConnectionLost:
            if not self.disconnected:
                self.disconnected = True
                self._put_disconnect(1005 if self.handshake_complete else 1006)
        finally:
            self._client_gone.set()

    async def keepalive(self, interval: float, timeout: float | None) -> None:
        """Ping every ``interval`` seconds after accept; no pong within ``timeout`` fails with 1011, as uvicorn."""
        await self._accepted.wait()
        while not (self.close_sent or self.disconnected):
            await anyio.sleep(interval)
            if self.close_sent or self.disconnected:
                return
            payload = struct.pack("!I", random.getrandbits(32))
            answered = self._new_event()
            self._pong = (payload, answered)
            try:
                await self.session.send_ping(payload)
            except ConnectionLost:
                return
            if timeout is None:
                continue
            with anyio.move_on_after(timeout):
                await answered.wait()
            if not answered.is_set() and not (self.close_sent or self.disconnected):
                self.close_sent = True
                await self.session.fail(1011, "keepalive ping timeout")
                return

    def _on_message(self, event: Message[Any]) -> None:
        if isinstance(event, TextMessage):
            self._text_parts.append(event.data)
            if event.message_finished:
                text, self._text_parts = "".join(self._text_parts), []
                if not self.close_sent:
                    self._put({"type": "websocket.receive", "text": text})
        elif isinstance(event, BytesMessage):
            self._bytes_parts.append(bytes(event.data))
            if event.message_finished:
                data, self._bytes_parts = b"".join(self._bytes_parts), []
                if not self.close_sent:
                    self._put({"type": "websocket.receive", "bytes": data})

    async def finish(self) -> None:
        """End the connection after the app returned or raised, as uvicorn does."""
        session = self.session
        if not self.handshake_complete and self._initial_response is None:
            await session.reject(500, [], b"Internal Server Error")
            return
        if self.close_sent:
            with anyio.move_on_after(self.close_timeout):
                await self._client_gone.wait()
        session.abort()


async def serve_asgi(
    session: ServerSession,
    app: ASGIApp,
    call: Call,
    *,
    scheme: str,
    root_path: str,
    state: dict[str, Any],
    client: tuple[str, int],
    server: tuple[str, int],
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float = 10,
) -> None:
    """Run one connection for an ASGI target; the app's exception propagates."""
    request = await session.read_request()
    if request is None:
        session.finish()
        return
    scope = build_scope(session, scheme=scheme, root_path=root_path, state=state, client=client, server=server)
    connection = ASGIConnection(session, call, close_timeout=close_timeout)
    error: BaseException | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.read_loop)
        if ping_interval is not None:
            tg.start_soon(connection.keepalive, ping_interval, ping_timeout)
        try:
            result = await app(scope, connection.receive, connection.send)
        except ClientDisconnected:
            pass
        except Exception as exc:
            error = exc
            call._failed(exc)
        else:
            if not connection.handshake_complete and connection._initial_response is None:
                error = RuntimeError(
                    "ASGI callable returned without completing handshake: it must send "
                    "'websocket.accept', 'websocket.close' or a 'websocket.http.response'."
                )
            elif result is not None:
                error = RuntimeError(f"ASGI callable should return None, but returned {result!r}.")
            if error is not None:
                call._failed(error)
        await connection.finish()
        tg.cancel_scope.cancel()
    if error is not None:
        raise error


class Lifespan:
    """Runs an app's lifespan protocol in a background task, the way uvicorn's ``auto`` mode does.

    An app that raises before answering ``lifespan.startup`` does not support
    lifespan and is served without it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.started = False
        self.supported = True
        self.error: BaseException | None = None
        self._task: Spawned | None = None
        self._to_app: deque[ASGIMessage] = deque()
        self._to_app_event = anyio.Event()
        self._from_app: deque[ASGIMessage] = deque()
        self._from_app_event = anyio.Event()
        self._startup_lock: anyio.Lock | None = None
        self._app_done = False

    async def _receive(self) -> ASGIMessage:
        while not self._to_app:
            self._to_app_event = anyio.Event()
            await self._to_app_event.wait()
        return self._to_app.popleft()

    async def _send(self, message: ASGIMessage) -> None:
        self._from_app.append(message)
        self._from_app_event.set()

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": dict(ASGI_VERSION), "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self.started and not self._from_app:
                self.supported = False
            else:
                self.error = exc
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
        finally:
            self._app_done = True
            self._from_app_event.set()

    async def _expect(self, complete: str, failed: str) -> None:
        while not self._from_app and not self._app_done:
            self._from_app_event = anyio.Event()
            await self._from_app_event.wait()
        if not self._from_app:
            if self.error is not None:
                raise self.error
            # The app returned without answering: uvicorn treats that as no lifespan support.
            self.supported = False
            return
        message = self._from_app.popleft()
        if message["type"] == failed:
            raise RuntimeError(f"ASGI lifespan {failed}: {message.get('message', '')}")
        if message["type"] != complete:
            raise RuntimeError(f"ASGI lifespan: expected '{complete}' but got {message['type']!r}")

    async def startup(self) -> None:
        """Start the app once; later calls wait for the first one."""
        if self._startup_lock is None:
            self._startup_lock = anyio.Lock()
        async with self._startup_lock:
            if self._task is not None:
                if self.error is not None:
                    raise self.error
                return
            self._task = spawn(self._run, "wsfake lifespan")
            self._to_app.append({"type": "lifespan.startup"})
            self._to_app_event.set()
            try:
                await self._expect("lifespan.startup.complete", "lifespan.startup.failed")
            except BaseException as exc:
                self.error = exc
                raise
            self.started = True

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the app to answer."""
        if self._task is None or not self.started or not self.supported or self._app_done:
            return
        self._to_app.append({"type": "lifespan.shutdown"})
        self._to_app_event.set()
        await self._expect("lifespan.shutdown.complete", "lifespan.shutdown.failed")
        await self._task.wait()

    def cancel(self) -> None:
        """Stop the lifespan task without a shutdown (the sync context's exit)."""
        if self._task is not None:
            self._task.cancel()


__all__ = ["ASGIApp", "ASGIConnection", "Lifespan", "build_scope", "serve_asgi"]
