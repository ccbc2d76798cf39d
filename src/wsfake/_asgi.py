"""ASGI targets: a FastAPI/Starlette app or any ASGI callable, run as uvicorn runs it.

The model is uvicorn's default implementation (``websockets-sansio``): the scope,
the event order, backpressure (reading stops while a received message waits for
the app), 403 for a close before accept, the ``websocket.http.response`` denial
extension, 500 for a failure before accept, a dropped connection when the app
ends after accepting without closing, the disconnect codes (the client's close
code, then 1005 when the transport goes, 1006 before the handshake completed),
keepalive pings, and at shutdown 1012 to open connections and 500 to handshaking
ones. The app is the connection's only task.
"""

from __future__ import annotations

import contextlib
import random
import struct
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from ._exceptions import ClientDisconnected
from ._handshake import Refusal, check_request, failed
from ._host import EventLike, Host, Spawned, Timer, Waiter
from ._session import ConnectionLost, ServerSession, Sink

Scope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
#: Any ``app(scope, receive, send)``: parameters are left open so that apps annotated
#: with ``dict[str, Any]``, Starlette's ``Scope`` or nothing all type-check.
ASGIApp = Callable[[Any, Any, Any], Awaitable[Any]]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
#: Close codes of a normal departure: a client that closed with these left on purpose.
NORMAL_DEPARTURE = frozenset({1000, 1001, 1005})


def build_scope(session: ServerSession, *, root_path: str, state: dict[str, Any]) -> dict[str, Any]:
    """The ``websocket`` scope for the request the session has read, as uvicorn builds it."""
    raw_path, _, query_string = session.target.partition("?")
    headers = [(name.lower(), value) for name, value in session.raw_headers]
    subprotocols: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            subprotocols.extend(token.strip() for token in value.decode("latin-1").split(","))
    return {
        "type": "websocket",
        "asgi": dict(ASGI_VERSION),
        "http_version": "1.1",
        "scheme": session.scheme,
        "server": session.server_address[:2],  # uvicorn reports (host, port), also for IPv6
        "client": session.client_address[:2],
        "root_path": root_path,
        "path": root_path + urllib.parse.unquote(raw_path),
        "raw_path": root_path.encode("ascii") + raw_path.encode("ascii"),
        "query_string": query_string.encode("ascii"),
        "headers": headers,
        "subprotocols": subprotocols,
        "state": state.copy(),
        "extensions": {"websocket.http.response": {}},
    }


class ASGIConnection(Sink):
    """The receive/send pair given to the app for one connection, with uvicorn's rules."""

    def __init__(
        self,
        session: ServerSession,
        app: ASGIApp,
        *,
        root_path: str,
        state: dict[str, Any],
        ping_interval: float | None,
        ping_timeout: float | None,
        on_task: Callable[[Spawned], object],
    ) -> None:
        self.session = session
        self.host: Host = session.host
        self.app = app
        self.root_path = root_path
        self.state = state
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._on_task = on_task
        self.call = session.call
        self._queue: deque[ASGIMessage] = deque()
        self._app_waiting: Waiter | None = None
        self.handshake_complete = False
        self.close_sent = False
        self.disconnected = False
        self._initial_response: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None
        self._frames: list[str | bytes] = []
        self._ping_timer: Timer | None = None
        self._pong_timer: Timer | None = None
        self._ping_payload: bytes | None = None
        self._ping_sent_at = 0.0
        self._last_rtt = 0.0
        #: Disconnect codes that mirror a normal departure (the client's clean close, or the server stopping).
        self.departure_codes: set[int] = set()
        #: The app is blocked in receive() after its last disconnect: nothing will ever come (uvicorn hangs).
        self.waiting_after_disconnect = False
        self.task: Spawned | None = None

    # Events from the session

    def on_request(self) -> None:
        session = self.session
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in session.raw_headers]
        refusal = check_request(session.method, session.http_version, headers)
        if refusal is None and session.request is None:
            refusal = Refusal(400, failed(session.handshake_error or "invalid request"))
        if refusal is not None:
            # uvicorn's websockets protocol answers a broken upgrade itself; the app never runs.
            self.handshake_complete = self.close_sent = True
            extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in refusal.headers]
            session.reject(refusal.status, [], refusal.body.encode(), trailing=extra)
            return
        scope = build_scope(self.session, root_path=self.root_path, state=self.state)
        self._queue.append({"type": "websocket.connect"})
        self.task = self.host.spawn(lambda: self._run(scope), f"wsfake ASGI {self.call.url}")
        self._on_task(self.task)

    @property
    def paused(self) -> bool:  # type: ignore[override]
        return bool(self._queue)

    def on_frame(self, data: str | bytes, fin: bool) -> None:
        self._frames.append(data)
        if not fin:
            return
        frames, self._frames = self._frames, []
        if self.close_sent:
            return  # past websocket.close: discarded, reading goes on until the client's close
        if isinstance(data, str):
            self._put({"type": "websocket.receive", "text": "".join(frames)})  # type: ignore[arg-type]
        else:
            self._put({"type": "websocket.receive", "bytes": b"".join(frames)})  # type: ignore[arg-type]
        self.session.pause_reading()

    def on_pong(self, payload: bytes) -> None:
        if self._ping_payload is None or payload != self._ping_payload:
            return
        self._last_rtt = self.host.time() - self._ping_sent_at
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._schedule_ping()

    def on_close(self, code: int, reason: str) -> None:
        if not self.close_sent:
            if code in NORMAL_DEPARTURE:
                self.departure_codes.add(code)
            self._put({"type": "websocket.disconnect", "code": code, "reason": reason})

    def on_failed(self, code: int, reason: str) -> None:
        self.close_sent = True
        self._put({"type": "websocket.disconnect", "code": code, "reason": reason})

    def on_closed(self) -> None:
        self._stop_keepalive()
        code = 1005 if self.handshake_complete else 1006
        self._put({"type": "websocket.disconnect", "code": code})
        self.handshake_complete = True
        self.disconnected = True
        self.session.resume_reading()

    def waiting(self) -> str | None:
        if not self.handshake_complete and self._initial_response is None:
            return "the app has not accepted or rejected the handshake"
        if self._app_waiting is not None:
            return "the app waits in receive() for the client"
        return None

    def shutdown(self) -> None:
        """The server is stopping: 1012 to an open connection (the app hears it at once), 500 to a handshake."""
        self._stop_keepalive()
        session = self.session
        if session.finished:
            return
        if self.close_sent:
            session.close_transport()
            return
        if self.handshake_complete:
            code, reason = session.conventions.shutdown_close
            self.departure_codes.add(code)
            self._put({"type": "websocket.disconnect", "code": code})
            self.close_sent = True
            with contextlib.suppress(ConnectionLost):
                session.send_close(code, reason)
        elif self._initial_response is None:
            status, body = session.conventions.shutdown_reject
            session.reject(status, [], body)
        session.close_transport()

    # The app's receive and send

    def _put(self, message: ASGIMessage) -> None:
        self._queue.append(message)
        if self._app_waiting is not None:
            self._app_waiting.set()

    async def receive(self) -> ASGIMessage:
        """The next event (after the last disconnect it waits forever, as under uvicorn)."""
        while not self._queue:
            if self.disconnected:
                self.waiting_after_disconnect = True
            self._app_waiting = waiting = self.host.waiter()
            try:
                await waiting.wait()
            finally:
                self._app_waiting = None
                self.waiting_after_disconnect = False
        message = self._queue.popleft()
        if not self._queue:
            self.session.resume_reading()
        return message

    async def send(self, message: ASGIMessage) -> None:
        """Handle one message from the app, with uvicorn's rules and error messages."""
        session = self.session
        if session.must_drain:
            with contextlib.suppress(ConnectionLost):
                await session.drain()
        if self.disconnected:
            raise ClientDisconnected("the client has disconnected")
        kind = message["type"]
        open_ = self.handshake_complete and not self.close_sent and self._initial_response is None
        if kind == "websocket.send" and open_:  # the common case first: a message on an open connection
            self._send_data(message)
            return
        if not self.handshake_complete and self._initial_response is None:
            if kind == "websocket.accept":
                headers = [(bytes(name).lower(), bytes(value)) for name, value in message.get("headers") or ()]
                if not session.finished:
                    self.handshake_complete = True
                    session.accept(message.get("subprotocol") or None, headers)
                    self._start_keepalive()
            elif kind == "websocket.close":
                self._put({"type": "websocket.disconnect", "code": 1006})
                self.close_sent = self.handshake_complete = True
                session.reject(403, [], b"")
            elif kind == "websocket.http.response.start":
                status = message["status"]
                if not 100 <= status < 600:
                    raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
                self._initial_response = (status, [(bytes(n), bytes(v)) for n, v in message.get("headers") or ()], b"")
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' "
                    f"or 'websocket.http.response.start' but got '{kind}'."
                )
        elif not self.close_sent and self._initial_response is None:
            try:
                if kind == "websocket.close":
                    if not session.finished:
                        code = message.get("code", 1000)
                        code = 1000 if code is None else int(code)
                        reason = message.get("reason", "") or ""
                        self._put({"type": "websocket.disconnect", "code": code, "reason": reason})
                        session.send_close(code, reason)
                        self.close_sent = True
                        session.resume_reading()
                else:
                    raise RuntimeError(
                        f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'."
                    )
            except ConnectionLost:
                raise ClientDisconnected("the client has disconnected") from None
        elif self._initial_response is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'.")
            status, headers, body = self._initial_response
            body += bytes(message.get("body", b""))
            self._initial_response = (status, headers, body)
            if not message.get("more_body", False):
                self._put({"type": "websocket.disconnect", "code": 1006})
                self.close_sent = True
                session.reject(status, headers, body)
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")

    def _send_data(self, message: ASGIMessage) -> None:
        """``websocket.send`` on an open connection (uvicorn sends ``bytes`` if present, else ``text``)."""
        data = message.get("bytes")
        if data is None:
            data = message.get("text")
            if data is None:
                return
        if type(data) is not bytes and not isinstance(data, str):
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"websocket.send needs 'text' as str or 'bytes' as bytes, not {type(data).__name__}")
            data = bytes(data)
        try:
            self.session.send_message(data)
        except ConnectionLost:
            raise ClientDisconnected("the client has disconnected") from None

    # The app's task

    async def _run(self, scope: dict[str, Any]) -> None:
        call = self.call
        try:
            result = await self.app(scope, self.receive, self.send)
        except ClientDisconnected:
            pass  # uvicorn lets an app end this way without a word
        except anyio.get_cancelled_exc_class():
            self._send_500()
            self.session.close_transport()
            raise
        except Exception as exc:
            self._send_500()
            if self._mirrors_departure(exc):
                call._departed(exc)
            else:
                call._failed(exc)
        else:
            error: Exception | None = None
            if not self.handshake_complete:
                error = RuntimeError(
                    "ASGI callable returned without completing handshake: it must send "
                    "'websocket.accept', 'websocket.close' or a 'websocket.http.response'."
                )
                self._send_500()
            elif result is not None:
                error = RuntimeError(f"ASGI callable should return None, but returned {result!r}.")
            if error is not None:
                call._failed(error)
        if not (self.close_sent and not self.session.finished and self.session.close_sent is not None):
            self.session.close_transport()

    def _mirrors_departure(self, exc: BaseException) -> bool:
        """True for an exception like Starlette's ``WebSocketDisconnect(1000)``: the app only learnt the client left."""
        code = getattr(exc, "code", None)
        return isinstance(code, int) and code in self.departure_codes

    def _send_500(self) -> None:
        if self._initial_response is not None or self.handshake_complete or self.session.finished:
            return
        self.handshake_complete = True
        self.session.reject(500, [], b"Internal Server Error")

    # Keepalive, as uvicorn: a ping every interval (less the last round trip), 1011 without a pong

    def _start_keepalive(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self._schedule_ping()

    def _stop_keepalive(self) -> None:
        for timer in (self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = None
        self._ping_payload = None

    def _schedule_ping(self) -> None:
        assert self.ping_interval is not None
        self._ping_timer = self.host.call_later(max(0.0, self.ping_interval - self._last_rtt), self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self.close_sent or self.session.finished:
            return
        self._ping_payload = struct.pack("!I", random.getrandbits(32))
        self._ping_sent_at = self.host.time()
        try:
            self.session.send_ping(self._ping_payload)
        except ConnectionLost:
            return
        if self.ping_timeout is not None:
            self._pong_timer = self.host.call_later(self.ping_timeout, self._keepalive_timeout)
        else:
            self._schedule_ping()

    def _keepalive_timeout(self) -> None:
        self._pong_timer = None
        self._ping_payload = None
        if self.close_sent or self.session.finished:
            return
        self.close_sent = True
        self.session.fail(1011, "keepalive ping timeout")


class Lifespan:
    """Runs an app's lifespan protocol in a task on one host, as uvicorn's ``auto`` mode does.

    An app that raises or returns before answering ``lifespan.startup`` does not
    support lifespan and is served without it. If the task is cancelled (its
    event loop is ending, or a synchronous exit stops it), the app is sent
    ``lifespan.shutdown`` and given the chance to finish, as a server stopping on
    a signal would: the app never sees the cancellation itself.
    """

    def __init__(self, app: ASGIApp, host: Host, *, shutdown_timeout: float = 5.0) -> None:
        self.app = app
        self.host = host
        self.shutdown_timeout = shutdown_timeout
        self.state: dict[str, Any] = {}
        self.started = False
        self.supported = True
        self.error: BaseException | None = None
        self.shut_down = False
        self._task: Spawned | None = None
        self._to_app: deque[ASGIMessage] = deque()
        self._to_app_event: EventLike | None = None
        self._from_app: deque[ASGIMessage] = deque()
        self._from_app_event: EventLike = host.event()
        self._startup_done: EventLike = host.event()
        self._app_done = False
        self._shutdown_sent = False

    async def _receive(self) -> ASGIMessage:
        while not self._to_app:
            self._to_app_event = event = self.host.event()
            try:
                await event.wait()
            except anyio.get_cancelled_exc_class():
                if self._shutdown_sent:
                    raise
                # The loop is ending or the server is stopping without a chance to await us: shut down now.
                self._shutdown_sent = True
                self._uncancel()
                return {"type": "lifespan.shutdown"}
            finally:
                self._to_app_event = None
        return self._to_app.popleft()

    def _uncancel(self) -> None:
        if self.host.backend == "asyncio":
            import asyncio

            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()

    async def _send(self, message: ASGIMessage) -> None:
        self._from_app.append(message)
        self._from_app_event.set()

    def _push(self, message: ASGIMessage) -> None:
        self._to_app.append(message)
        if self._to_app_event is not None:
            self._to_app_event.set()

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": dict(ASGI_VERSION), "state": self.state}
        try:
            await self._run_app(scope)
        finally:
            self._app_done = True
            self._from_app_event.set()

    async def _run_app(self, scope: dict[str, Any]) -> None:
        if self.host.backend == "trio":
            # trio delivers a cancellation at every later checkpoint: shield the app so
            # that its shutdown can run, bounded by shutdown_timeout.
            import trio

            with trio.CancelScope(shield=True) as shield:
                watcher = trio.CancelScope()

                async def watch() -> None:
                    with watcher:
                        await trio.sleep_forever()
                    if not self._shutdown_sent:
                        self._shutdown_sent = True
                        self._push({"type": "lifespan.shutdown"})
                        shield.deadline = trio.current_time() + self.shutdown_timeout

                watching = self.host.spawn(watch, "wsfake lifespan watch")
                try:
                    await self._call_app(scope)
                finally:
                    watcher.cancel()
                    await watching.wait()  # it ends at its next turn: before the lifespan is over, not after
            return
        await self._call_app(scope)

    async def _call_app(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self.started and not self._from_app:
                self.supported = False
            else:
                self.error = exc
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise

    async def _expect(self, complete: str, failed: str) -> None:
        while not self._from_app and not self._app_done:
            self._from_app_event = self.host.event()
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
        """Start the app (the first call); later calls wait for the first one to finish."""
        if self._task is not None:
            await self._startup_done.wait()
            if self.error is not None:
                raise self.error
            return
        self._task = self.host.spawn(self._run, "wsfake lifespan")
        self._push({"type": "lifespan.startup"})
        try:
            await self._expect("lifespan.startup.complete", "lifespan.startup.failed")
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._startup_done.set()
        self.started = True

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the app to answer."""
        if self.shut_down:
            return
        self.shut_down = True
        if self._task is None or not self.started or not self.supported or self._app_done:
            return
        if not self._shutdown_sent:
            self._shutdown_sent = True
            self._push({"type": "lifespan.shutdown"})
        with anyio.move_on_after(self.shutdown_timeout):
            await self._expect("lifespan.shutdown.complete", "lifespan.shutdown.failed")
            await self._task.wait()
            return
        self._task.cancel()
        raise TimeoutError(f"ASGI lifespan shutdown did not complete within {self.shutdown_timeout} s")

    def stop(self) -> None:
        """Stop without awaiting: the task is cancelled, which makes it send the app ``lifespan.shutdown``."""
        self.shut_down = True
        if self._task is not None and not self._task.done:
            self._task.cancel()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done


__all__ = ["ASGIApp", "ASGIConnection", "Lifespan", "build_scope"]
