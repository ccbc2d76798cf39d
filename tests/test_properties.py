"""Properties that hold for every client kind wsfake serves, checked on inputs hypothesis draws.

1. Delivery: any sequence of messages (text with non-ASCII, binary, empty, fragmented where the client's API can
   send fragments, up to the server's ``max_size``), delivered in random chunks and late in either direction, reaches
   an echo (a handler, an ASGI app, a MockServer the test drives) and comes back exactly once, in order.
2. Faults: any schedule of refusals, rejections, stalled handshakes, cuts, chunks and latency ends each connection
   attempt of a scripted client in the outcome the schedule implies, raised as the client library's own documented
   exception (or success); never a hang, never a wsfake task or thread left behind.

Every example runs on a fresh event loop (or fresh threads), is bounded by ``HANG`` seconds (which fails it), and
must leave no wsfake task, thread or hook behind. The examples are derandomized, so CI runs the same ones each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import itertools
import ssl
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import anyio
import httpx
import httpx_ws
import pytest
import trio
import trio.testing
import websocket
import websockets
import websockets.exceptions
import websockets.sync.client
import wsproto.events
import wsproto.utilities
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus

import wsfake

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

HAS_WEBSOCKETS_TRIO = importlib.util.find_spec("websockets.trio") is not None
#: A connection lost during the opening handshake: newer websockets releases wrap the EOFError in InvalidMessage;
#: 14.0 lets it out as it is (and importing InvalidMessage there gets the deprecated legacy class).
LOST_IN_HANDSHAKE: tuple[type[BaseException], ...] = (
    (EOFError, vars(websockets.exceptions)["InvalidMessage"])
    if "InvalidMessage" in vars(websockets.exceptions)
    else (EOFError,)
)

#: The servers' max_size: messages are drawn up to exactly this many bytes.
MAX_SIZE = 1024
#: Seconds an example may take before it counts as a hang (a failure).
HANG = 15.0
#: The client's own timeouts (open, receive) where nothing should make it wait: a wait this long is a wrong outcome.
PATIENCE = 5.0
#: The client's open timeout for an attempt the schedule says is stalled.
STALL_TIMEOUT = 0.02
WS_URL = "ws://svc.test/echo"
HTTP_URL = "http://svc.test/echo"
#: The last message of every sequence: a message delivered twice shows up before it.
MARKER = "end of sequence"
#: One TLS context for every httpx client (building one loads the CA bundle: tens of milliseconds each time).
TLS = ssl.create_default_context()

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Targets


async def echo(ws: wsfake.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def tolerant_echo(ws: wsfake.ServerConnection) -> None:
    """An echo that takes a lost connection in its stride, as a production handler does.

    It calls recv() rather than iterating: a send that fails inside ``async for`` leaves the iterator (an async
    generator) unfinished, and trio warns when it is collected after the run.
    """
    with contextlib.suppress(wsfake.ConnectionClosed):
        while True:
            await ws.send(await ws.recv())


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


TargetKind = Literal["handler", "asgi", "mock"]


def serve(net: wsfake.Network, kind: TargetKind, max_size: int | None) -> tuple[wsfake.Route, wsfake.MockServer | None]:
    """Route ``WS_URL`` to an echo of this kind."""
    if kind == "handler":
        return net.route(WS_URL, echo, max_size=max_size), None
    if kind == "asgi":
        return net.route(WS_URL, asgi_echo, max_size=max_size), None
    server = net.mock(WS_URL, max_size=max_size)
    return server.route, server


# Messages


@dataclass(frozen=True)
class Message:
    """A message, and the fragments the client sends it in (None: one frame)."""

    payload: str | bytes
    fragments: tuple[str | bytes, ...] | None = None

    def __repr__(self) -> str:
        shown = self.payload[:12]
        more = "..." if len(self.payload) > 12 else ""
        cut = "" if self.fragments is None else f" in fragments of {[len(part) for part in self.fragments]}"
        return f"Message({shown!r}{more} ({self.size} bytes){cut})"

    @property
    def size(self) -> int:
        return len(self.payload.encode() if isinstance(self.payload, str) else self.payload)


def _filled(unit: str | bytes, size: int) -> str | bytes:
    """``unit`` repeated, padded with ASCII to exactly ``size`` bytes (UTF-8 for text)."""
    if isinstance(unit, str):
        width = len(unit.encode())
        return unit * (size // width) + "a" * (size % width)
    return (unit * (size // len(unit) + 1))[:size]


def _at_most(payload: str | bytes, size: int) -> str | bytes:
    if isinstance(payload, str):
        return payload.encode()[:size].decode(errors="ignore")
    return payload[:size]


SIZES = st.one_of(st.integers(0, 16), st.integers(0, MAX_SIZE), st.just(MAX_SIZE))
TEXTS = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=16),
    st.builds(_filled, st.text(st.characters(codec="utf-8"), min_size=1, max_size=3), SIZES),
)
BINARIES = st.one_of(st.binary(max_size=16), st.builds(_filled, st.binary(min_size=1, max_size=3), SIZES))
#: With permessage-deflate, websockets counts each compressed fragment's size on the wire against what is left of
#: max_size (the last, empty fragment takes a byte), so a real ``websockets.serve`` refuses a fragmented message
#: right at the limit too (1009). Compressed fragmented messages keep this much room.
DEFLATE_ROOM = 16


@st.composite
def messages(draw: st.DrawFn, *, fragments: bool, compressed: bool = False) -> Message:
    payload: str | bytes = draw(st.one_of(TEXTS, BINARIES))
    if not fragments or not draw(st.booleans()):
        return Message(payload)
    if compressed:
        payload = _at_most(payload, MAX_SIZE - DEFLATE_ROOM)
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
    bounds = [0, *cuts, len(payload)]
    return Message(payload, tuple(payload[start:end] for start, end in itertools.pairwise(bounds)))


def sequences(*, fragments: bool, compressed: bool = False) -> st.SearchStrategy[list[Message]]:
    return st.lists(messages(fragments=fragments, compressed=compressed), max_size=6)


# Faults


Side = Literal["to_client", "to_server"]
SIDES: tuple[Side, ...] = ("to_client", "to_server")


@dataclass(frozen=True)
class Fault:
    """One call of a Route fault method, shown as the code that makes it."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def apply(self, route: wsfake.Route) -> None:
        getattr(route, self.method)(*self.args, **dict(self.kwargs))

    @property
    def direction(self) -> str:
        return str(dict(self.kwargs).get("direction", "both"))

    @property
    def limit(self) -> int | None:
        """A cut's limit (messages or bytes)."""
        options = dict(self.kwargs)
        return options.get("messages", options.get("bytes"))

    def reaches(self, side: Side) -> bool:
        return self.direction in (side, "both")

    def __repr__(self) -> str:
        arguments = [repr(arg) for arg in self.args] + [f"{name}={value!r}" for name, value in self.kwargs]
        return f"route.{self.method}({', '.join(arguments)})"


DIRECTIONS = st.sampled_from(["to_client", "to_server", "both"])


@st.composite
def chunks(draw: st.DrawFn) -> Fault:
    size = draw(st.one_of(st.integers(1, 8), st.integers(1, 200), st.just("random")))
    return Fault("chunked", (size,), (("seed", draw(st.integers(0, 2**16))), ("direction", draw(DIRECTIONS))))


@st.composite
def latencies(draw: st.DrawFn) -> Fault:
    return Fault("latency", (draw(st.sampled_from([0.0, 0.001, 0.003])),), (("direction", draw(DIRECTIONS)),))


#: Faults that change timing and boundaries, never content: chunks in either direction, optional latency.
DELIVERIES = st.lists(st.one_of(chunks(), latencies()), max_size=3)


# Client kinds: each one's API for connecting, sending a Message, receiving one, and its documented exceptions


class PeerClosed(Exception):
    """The client library reported the end of the connection as a value (aiohttp's CLOSE/CLOSED/ERROR messages,
    websocket-client's close frame) rather than raising: counted with its connection-closed errors."""


Outcome = Any  # "ok", "refused", ("rejected", status), "timeout" or "closed"


RunsOn = Literal["asyncio", "trio", "thread"]


class ClientKind:
    name: str
    runs_on: RunsOn
    url: str = WS_URL
    #: True if the client's API can send one message as several frames.
    fragments: bool = False
    #: The permessage-deflate settings the client can be opened with (drawn per example).
    compressions: tuple[str | None, ...] = (None,)
    #: True if the library opens a second connection when the first is lost before the server answers.
    retries_lost_connections: bool = False

    def classify(self, exc: BaseException) -> Outcome | None:
        """The outcome ``exc`` stands for, or None if it is none of the library's documented exceptions for it."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class AsyncClient(ClientKind):
    def connect(
        self, url: str, open_timeout: float, compression: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def send(self, ws: Any, message: Message) -> None:
        raise NotImplementedError

    async def recv(self, ws: Any) -> str | bytes:
        raise NotImplementedError


class SyncClient(ClientKind):
    runs_on = "thread"

    def connect(
        self, url: str, open_timeout: float, compression: str | None = None
    ) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def send(self, ws: Any, message: Message) -> None:
        raise NotImplementedError

    def recv(self, ws: Any) -> str | bytes:
        raise NotImplementedError


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """True if ``exc`` is a ``kind``, or was raised from one (through exception groups too)."""
    if exc is None:
        return False
    if isinstance(exc, kind):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_caused_by(member, kind) for member in exc.exceptions)
    return _caused_by(exc.__cause__, kind)


def _websockets_outcome(exc: BaseException) -> Outcome | None:
    # On trio, a closed port is trio's OSError("all attempts to connect to ... failed") from the refusals.
    if isinstance(exc, OSError) and _caused_by(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, InvalidStatus):
        return ("rejected", exc.response.status_code)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):  # two classes before Python 3.11
        return "timeout"
    if isinstance(exc, (ConnectionClosed, *LOST_IN_HANDSHAKE)):
        return "closed"
    return None


class WebsocketsAsyncio(AsyncClient):
    name = "websockets"
    runs_on: RunsOn = "asyncio"
    fragments = True
    compressions = ("deflate", None)

    def connect(
        self, url: str, open_timeout: float, compression: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        return websockets.connect(
            url, open_timeout=open_timeout, compression=compression, ping_interval=None, close_timeout=PATIENCE
        )

    async def send(self, ws: Any, message: Message) -> None:
        await ws.send(message.payload if message.fragments is None else list(message.fragments))

    async def recv(self, ws: Any) -> str | bytes:
        with anyio.fail_after(PATIENCE):
            data: str | bytes = await ws.recv()
        return data

    def classify(self, exc: BaseException) -> Outcome | None:
        return _websockets_outcome(exc)


class WebsocketsTrio(WebsocketsAsyncio):
    name = "websockets.trio"
    runs_on = "trio"

    def connect(
        self, url: str, open_timeout: float, compression: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        from websockets.trio.client import connect

        return connect(
            url, open_timeout=open_timeout, compression=compression, ping_interval=None, close_timeout=PATIENCE
        )


class WebsocketsSync(SyncClient):
    name = "websockets.sync"
    fragments = True
    compressions = ("deflate", None)

    def connect(
        self, url: str, open_timeout: float, compression: str | None = None
    ) -> contextlib.AbstractContextManager[Any]:
        return websockets.sync.client.connect(
            url, open_timeout=open_timeout, compression=compression, close_timeout=PATIENCE
        )

    def send(self, ws: Any, message: Message) -> None:
        ws.send(message.payload if message.fragments is None else list(message.fragments))

    def recv(self, ws: Any) -> str | bytes:
        data: str | bytes = ws.recv(timeout=PATIENCE)
        return data

    def classify(self, exc: BaseException) -> Outcome | None:
        return _websockets_outcome(exc)


class Aiohttp(AsyncClient):
    name = "aiohttp"
    runs_on = "asyncio"
    retries_lost_connections = True

    @contextlib.asynccontextmanager
    async def connect(self, url: str, open_timeout: float, compression: str | None = None) -> AsyncIterator[Any]:
        timeout = aiohttp.ClientTimeout(total=open_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.ws_connect(url) as ws:
            yield ws

    async def send(self, ws: Any, message: Message) -> None:
        if isinstance(message.payload, str):
            await ws.send_str(message.payload)
        else:
            await ws.send_bytes(message.payload)

    async def recv(self, ws: Any) -> str | bytes:
        msg = await ws.receive(timeout=PATIENCE)
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            data: str | bytes = msg.data
            return data
        raise PeerClosed(msg)

    def classify(self, exc: BaseException) -> Outcome | None:
        if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ConnectionRefusedError):
            return "refused"
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            return ("rejected", exc.status)
        if isinstance(exc, asyncio.TimeoutError):
            return "timeout"
        # aiohttp >= 3.10 raises ClientConnectionResetError, a ConnectionResetError subclass; 3.8/3.9 raise the
        # plain ConnectionResetError ("Cannot write to closing transport").
        if isinstance(exc, (PeerClosed, ConnectionResetError, aiohttp.ServerDisconnectedError)):
            return "closed"
        if isinstance(exc, aiohttp.ClientOSError) and exc.errno == errno.ECONNRESET:
            return "closed"
        return None


class WebsocketClient(SyncClient):
    name = "websocket-client"
    fragments = True

    @contextlib.contextmanager
    def connect(self, url: str, open_timeout: float, compression: str | None = None) -> Iterator[Any]:
        ws: Any = websocket.create_connection(url, timeout=open_timeout)
        try:
            ws.settimeout(PATIENCE)
            yield ws
        finally:
            # close() returns at once if the server closed first, leaving the socket open: close it as well.
            ws.close()
            ws.shutdown()

    def send(self, ws: Any, message: Message) -> None:
        text = isinstance(message.payload, str)
        if message.fragments is None:
            ws.send(message.payload) if text else ws.send_binary(message.payload)
            return
        opcode = websocket.ABNF.OPCODE_TEXT if text else websocket.ABNF.OPCODE_BINARY
        last = len(message.fragments) - 1
        for index, fragment in enumerate(message.fragments):
            data = fragment.encode() if isinstance(fragment, str) else fragment
            ws.send_frame(websocket.ABNF.create_frame(data, opcode, fin=int(index == last)))
            opcode = websocket.ABNF.OPCODE_CONT

    def recv(self, ws: Any) -> str | bytes:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_TEXT:
            text: str = data.decode()
            return text
        if opcode == websocket.ABNF.OPCODE_BINARY:
            binary: bytes = data
            return binary
        raise PeerClosed(opcode, data)

    def classify(self, exc: BaseException) -> Outcome | None:
        if isinstance(exc, ConnectionRefusedError):
            return "refused"
        if isinstance(exc, websocket.WebSocketBadStatusException):
            return ("rejected", exc.status_code)
        if isinstance(exc, websocket.WebSocketTimeoutException):
            return "timeout"
        if isinstance(exc, (PeerClosed, websocket.WebSocketConnectionClosedException, ConnectionResetError)):
            return "closed"
        return None


def _httpx_ws_outcome(exc: BaseException) -> Outcome | None:
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _httpx_ws_outcome(exc.exceptions[0])
    if isinstance(exc, httpx.ConnectError) and _caused_by(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, httpx_ws.WebSocketUpgradeError):
        return ("rejected", exc.response.status_code)
    if isinstance(exc, (httpx.TimeoutException, TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    closed = (httpx_ws.WebSocketDisconnect, httpx_ws.WebSocketNetworkError, httpx.ReadError, httpx.RemoteProtocolError)
    if isinstance(exc, closed):
        return "closed"
    if isinstance(exc, wsproto.utilities.LocalProtocolError):
        # httpx-ws's own race: its reader closed the session on a lost connection, and send() lets wsproto's
        # refusal to send on a closing connection through (as over a real network).
        return "closed"
    return None


def _events(message: Message) -> list[wsproto.events.Event]:
    kind = wsproto.events.TextMessage if isinstance(message.payload, str) else wsproto.events.BytesMessage
    pieces = [message.payload] if message.fragments is None else list(message.fragments)
    last = len(pieces) - 1
    return [kind(data=piece, message_finished=index == last) for index, piece in enumerate(pieces)]  # type: ignore[arg-type]


def _data(event: wsproto.events.Event) -> str | bytes:
    assert isinstance(event, (wsproto.events.TextMessage, wsproto.events.BytesMessage)), event
    return event.data if isinstance(event.data, str) else bytes(event.data)


class HttpxWs(AsyncClient):
    name = "httpx-ws"
    runs_on: RunsOn = "asyncio"
    url = HTTP_URL
    fragments = True

    @contextlib.asynccontextmanager
    async def connect(self, url: str, open_timeout: float, compression: str | None = None) -> AsyncIterator[Any]:
        async with httpx.AsyncClient(timeout=open_timeout, verify=TLS) as client:
            session: contextlib.AbstractAsyncContextManager[Any]
            session = httpx_ws.aconnect_ws(url, client, keepalive_ping_interval_seconds=None)
            async with session as ws:
                yield ws

    async def send(self, ws: Any, message: Message) -> None:
        for frame in _events(message):
            await ws.send(frame)

    async def recv(self, ws: Any) -> str | bytes:
        return _data(await ws.receive(timeout=PATIENCE))

    def classify(self, exc: BaseException) -> Outcome | None:
        return _httpx_ws_outcome(exc)


class HttpxWsTrio(HttpxWs):
    name = "httpx-ws.trio"
    runs_on = "trio"


class HttpxWsSync(SyncClient):
    name = "httpx-ws.sync"
    url = HTTP_URL
    fragments = True

    @contextlib.contextmanager
    def connect(self, url: str, open_timeout: float, compression: str | None = None) -> Iterator[Any]:
        with httpx.Client(timeout=open_timeout, verify=TLS) as client:
            session: contextlib.AbstractContextManager[Any]
            session = httpx_ws.connect_ws(url, client, keepalive_ping_interval_seconds=None)
            with session as ws:
                yield ws

    def send(self, ws: Any, message: Message) -> None:
        for frame in _events(message):
            ws.send(frame)

    def recv(self, ws: Any) -> str | bytes:
        return _data(ws.receive(timeout=PATIENCE))

    def classify(self, exc: BaseException) -> Outcome | None:
        return _httpx_ws_outcome(exc)


NEEDS_WEBSOCKETS_TRIO = pytest.mark.skipif(not HAS_WEBSOCKETS_TRIO, reason="websockets.trio is new in websockets 17")
CLIENTS = [
    pytest.param(WebsocketsAsyncio(), id="websockets"),
    pytest.param(WebsocketsSync(), id="websockets.sync"),
    pytest.param(WebsocketsTrio(), id="websockets.trio", marks=NEEDS_WEBSOCKETS_TRIO),
    pytest.param(Aiohttp(), id="aiohttp"),
    pytest.param(WebsocketClient(), id="websocket-client"),
    pytest.param(HttpxWs(), id="httpx-ws"),
    pytest.param(HttpxWsTrio(), id="httpx-ws.trio"),
    pytest.param(HttpxWsSync(), id="httpx-ws.sync"),
]


# Running one example: bounded, on a fresh loop or thread, with nothing of wsfake left behind


def run_bounded(client: ClientKind, body: Callable[[], Any]) -> None:
    """Run one example's body where its client runs; fail if it takes ``HANG`` seconds or leaves wsfake behind."""
    threads = set(threading.enumerate())
    if client.runs_on == "thread":
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                body()
            except BaseException as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

        thread = threading.Thread(target=run, name="property example")
        thread.start()
        thread.join(HANG)
        if thread.is_alive():
            pytest.fail(f"the example hung for {HANG} s (its thread is left running)")
        if outcome[0] is not None:
            raise outcome[0]
    elif client.runs_on == "asyncio":

        async def main() -> None:
            with anyio.move_on_after(HANG) as scope:
                await body()
            if scope.cancelled_caught:
                pytest.fail(f"the example hung for {HANG} s")
            left = [task.get_name() for task in asyncio.all_tasks() if task.get_name().startswith("wsfake")]
            assert not left, f"wsfake tasks left behind: {left}"

        asyncio.run(main())
    else:

        async def main() -> None:
            with trio.move_on_after(HANG) as scope:
                await body()
            if scope.cancelled_caught:
                pytest.fail(f"the example hung for {HANG} s")
            # A task cancelled at the exit ends at its next turn; one still there once every task waits stays.
            await trio.testing.wait_all_tasks_blocked()
            left = [task.name for task in _trio_tasks() if task.name.startswith("wsfake")]
            assert not left, f"wsfake tasks left behind: {left}"

        trio.run(main)
    assert not wsfake.is_patched(), "the patch is still active after its context exited"
    new = [thread for thread in threading.enumerate() if thread not in threads]
    for thread in new:
        thread.join(PATIENCE)  # a client's reader thread ends on its own once its connection is closed
    assert not [thread.name for thread in new if thread.is_alive()], "threads left behind"


def _trio_tasks() -> list[trio.lowlevel.Task]:
    """Every task of this trio run, the system tasks (where wsfake serves) included."""
    found: list[trio.lowlevel.Task] = []
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        assert task is not None
        found.append(task)
        pending.extend(child for nursery in task.child_nurseries for child in nursery.child_tasks)
    return found


def no_server_loop_thread() -> None:
    """The background loop that served threaded clients is gone once the patch exited."""
    left = [thread.name for thread in threading.enumerate() if thread.name == "wsfake server loop"]
    assert not left, "the wsfake server loop thread outlived its patch_client context"


class Helper:
    """A thread running part of a sync example; its exception is raised where the example joins it."""

    def __init__(self, name: str, target: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self.target = target
        self.thread = threading.Thread(target=self._run, name=name)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.target()
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join(HANG)
        assert not self.thread.is_alive(), f"{self.thread.name} hung"
        if self.error is not None:
            raise self.error


# Property 1: delivery


@dataclass
class Delivery:
    client: ClientKind
    target: TargetKind
    sent: list[Message]
    faults: list[Fault]
    compression: str | None

    @property
    def max_size(self) -> int:
        return MAX_SIZE

    def describe(self) -> None:
        """What this example covers, for ``--hypothesis-show-statistics``."""
        event(f"{len(self.sent) - 1} messages")
        event("a message at max_size" if any(m.size == MAX_SIZE for m in self.sent) else "no message at max_size")
        event("fragmented" if any(m.fragments for m in self.sent) else "not fragmented")
        non_ascii = any(isinstance(m.payload, str) and not m.payload.isascii() for m in self.sent)
        event("non-ASCII text" if non_ascii else "ASCII only")
        event("empty message" if any(m.size == 0 for m in self.sent) else "no empty message")
        for side in SIDES:
            chunked = [f.args[0] for f in self.faults if f.method == "chunked" and f.reaches(side)]
            event(f"chunked {side}: {'random' if 'random' in chunked[-1:] else 'fixed' if chunked else 'no'}")
        event("latency" if any(f.method == "latency" and f.args[0] for f in self.faults) else "no latency")

    def check(self, route: wsfake.Route, received: list[str | bytes]) -> None:
        payloads = [message.payload for message in self.sent]
        assert received == payloads, "the client did not get every message back exactly once, in order"
        call = route.calls.last
        assert call.received == payloads, "the server did not get every message exactly once, in order"
        assert call.sent == payloads, "the server did not send every message exactly once, in order"


async def deliver_async(example: Delivery) -> None:
    client = example.client
    assert isinstance(client, AsyncClient)
    received: list[str | bytes] = []
    async with wsfake.patch_client() as net:
        route, server = serve(net, example.target, example.max_size)
        for fault in example.faults:
            fault.apply(route)
        async with client.connect(client.url, PATIENCE, example.compression) as ws, anyio.create_task_group() as tasks:

            async def send_all() -> None:
                for message in example.sent:
                    await client.send(ws, message)

            tasks.start_soon(send_all)
            if server is not None:
                tasks.start_soon(mock_echo, server, len(example.sent))
            for _ in example.sent:
                received.append(await client.recv(ws))
    example.check(route, received)


async def mock_echo(server: wsfake.MockServer, count: int) -> None:
    conn = await server.connected(timeout=PATIENCE)
    for _ in range(count):
        await conn.send(await conn.receive(timeout=PATIENCE))


def deliver_sync(example: Delivery) -> None:
    client = example.client
    assert isinstance(client, SyncClient)
    received: list[str | bytes] = []
    with wsfake.patch_client() as net:
        route, server = serve(net, example.target, example.max_size)
        for fault in example.faults:
            fault.apply(route)
        with client.connect(client.url, PATIENCE, example.compression) as ws:

            def send_all() -> None:
                for message in example.sent:
                    client.send(ws, message)

            helpers = [Helper("sender", send_all)]
            if server is not None:
                helpers.append(Helper("mock server", lambda: blocking_mock_echo(server, len(example.sent))))
            try:
                for _ in example.sent:
                    received.append(client.recv(ws))
            finally:
                for helper in helpers:
                    helper.join()
    no_server_loop_thread()
    example.check(route, received)


def blocking_mock_echo(server: wsfake.MockServer, count: int) -> None:
    conn = server.connected(timeout=PATIENCE)
    for _ in range(count):
        conn.send(conn.receive(timeout=PATIENCE))


@pytest.mark.parametrize("target", ["handler", "asgi", "mock"])
@pytest.mark.parametrize("client", CLIENTS)
@settings(SETTINGS, max_examples=20)
@given(data=st.data())
def test_every_message_arrives_once_in_order_both_ways(client: ClientKind, target: TargetKind, data: Any) -> None:
    compression = data.draw(st.sampled_from(client.compressions), label="compression")
    sequence = sequences(fragments=client.fragments, compressed=compression is not None)
    sent = [*data.draw(sequence, label="messages"), Message(MARKER)]
    faults = data.draw(DELIVERIES, label="delivery faults")
    example = Delivery(client, target, sent, faults, compression)
    example.describe()
    run = deliver_async if isinstance(client, AsyncClient) else deliver_sync
    run_bounded(client, lambda: run(example))


# Property 2: fault schedules


#: The messages of a scripted exchange: short text and binary, and ASCII text long enough for a 16-bit length.
SMALL = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=8),
    st.binary(max_size=8),
    st.integers(0, 200).map(lambda n: "x" * n),
)
HTTP_ERRORS = st.sampled_from([400, 401, 403, 404, 429, 500, 502, 503])


def _frame_size(payload_size: int, *, masked: bool) -> int:
    length = 0 if payload_size < 126 else 2 if payload_size < 2**16 else 8
    return 2 + length + (4 if masked else 0) + payload_size


#: Bytes the closing handshake adds in each direction at most (a client's close frame with code 1000, masked, is 8).
CLOSING_BYTES = 32


@dataclass
class Schedule:
    """A scripted exchange (send one message, read its echo, for each) and the faults on the route it connects to."""

    exchange: list[Message]
    refuse: int
    rejections: list[int]
    stall: bool
    cut: Fault | None
    delivery: list[Fault]

    @property
    def faults(self) -> list[Fault]:
        return ([self.cut] if self.cut else []) + self.delivery

    def apply(self, route: wsfake.Route) -> None:
        if self.refuse:
            route.refuse(self.refuse)
        for status in self.rejections:
            route.reject(status)
        if self.stall:
            route.stall_handshake(times=1)
        for fault in self.faults:
            fault.apply(route)

    def _cut_at_once(self, side: Side) -> bool:
        """True if the cut comes right after the HTTP head going ``side`` (the request, or the server's answer)."""
        return self.cut is not None and self.cut.reaches(side) and self.cut.limit == 0

    def _exchange_ends(self) -> set[Outcome]:
        """How the exchange on a connection the server accepts can end: "ok", "closed", or either.

        Every message must get through both ways: a cut before the last one surely ends it lost; a cut right at
        the last one, or within the closing handshake (close frames count as bytes), may; a later one never comes.
        """
        cut = self.cut
        if cut is None or cut.limit is None:
            return {"ok"}
        verdicts = set()
        for side in SIDES:
            if not cut.reaches(side):
                continue
            if "messages" in dict(cut.kwargs):
                needed, slack = len(self.exchange), 1
            else:
                needed = sum(_frame_size(message.size, masked=side == "to_server") for message in self.exchange)
                slack = CLOSING_BYTES
            verdicts.add("closed" if cut.limit < needed else "either" if cut.limit < needed + slack else "ok")
        if "closed" in verdicts:
            return {"closed"}
        return {"ok", "closed"} if "either" in verdicts else {"ok"}

    @property
    def handshake_faults(self) -> int:
        """How many connections the schedule refuses, rejects or stalls before serving one."""
        return self.refuse + len(self.rejections) + self.stall

    def allowed(self, connection: int) -> set[Outcome]:
        """What an attempt may end in when its (last) connection is number ``connection`` (from 0) on the route."""
        # A cut right after the request (the answer may be written before the reset, or not), or right after the
        # answer's head (a client that had not read it yet sees the reset first, as with a real RST) may end any
        # attempt the server answered as lost; a stalled handshake has no answer, only the request to cut after.
        lost = {"closed"} if self._cut_at_once("to_server") or self._cut_at_once("to_client") else set()
        if connection < self.refuse:
            return {"refused"}
        connection -= self.refuse
        if connection < len(self.rejections):
            return {("rejected", self.rejections[connection])} | lost
        if self.stall and connection == len(self.rejections):
            return {"closed"} if self._cut_at_once("to_server") else {"timeout"}
        return self._exchange_ends() | lost


@st.composite
def cuts(draw: st.DrawFn, exchange: list[Message]) -> Fault:
    """A cut, often right around the end of the exchange (where a cut off by one changes the outcome)."""
    direction = draw(DIRECTIONS)
    if draw(st.booleans()):
        return Fault(
            "drop_after", (), (("messages", draw(st.integers(0, len(exchange) + 1))), ("direction", direction))
        )
    side = "to_client" if direction == "to_client" else "to_server"
    needed = sum(_frame_size(message.size, masked=side == "to_server") for message in exchange)
    near = st.integers(max(0, needed - 2), needed + 2) | st.integers(needed + CLOSING_BYTES - 2, needed + CLOSING_BYTES)
    limit = draw(st.integers(0, 8) | near | st.integers(0, needed + 2 * CLOSING_BYTES))
    return Fault("drop_after", (), (("bytes", limit), ("direction", direction)))


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    exchange = [Message(payload) for payload in draw(st.lists(SMALL, min_size=1, max_size=3), label="exchange")]
    return Schedule(
        exchange=exchange,
        refuse=draw(st.integers(0, 2), label="refuse"),
        rejections=draw(st.lists(HTTP_ERRORS, max_size=2), label="rejections"),
        stall=draw(st.booleans(), label="stall"),
        cut=draw(st.none() | cuts(exchange), label="cut"),
        delivery=draw(DELIVERIES, label="delivery faults"),
    )


async def attempt_async(client: AsyncClient, open_timeout: float, exchange: list[Message]) -> Outcome:
    try:
        async with client.connect(client.url, open_timeout) as ws:
            for message in exchange:
                await client.send(ws, message)
                assert await client.recv(ws) == message.payload, "the echo differs from the message"
    except AssertionError:
        raise
    except Exception as exc:
        outcome = client.classify(exc)
        if outcome is None:
            raise
        return outcome
    return "ok"


def attempt_sync(client: SyncClient, open_timeout: float, exchange: list[Message]) -> Outcome:
    try:
        with client.connect(client.url, open_timeout) as ws:
            for message in exchange:
                client.send(ws, message)
                assert client.recv(ws) == message.payload, "the echo differs from the message"
    except AssertionError:
        raise
    except Exception as exc:
        outcome = client.classify(exc)
        if outcome is None:
            raise
        return outcome
    return "ok"


Attempt = tuple[int, int, Outcome]  # the route's connection count before and after, and how the attempt ended


def check_attempts(client: ClientKind, schedule: Schedule, attempts: list[Attempt]) -> None:
    for number, (before, after, outcome) in enumerate(attempts, 1):
        made = after - before
        # aiohttp retries a request once when the connection is lost before the answer (RFC 9112 9.3.1.1).
        retried = client.retries_lost_connections and made == 2 and "closed" in schedule.allowed(before)
        assert made == 1 or retried, f"attempt {number} made {made} connections"
        allowed = schedule.allowed(after - 1)
        assert outcome in allowed, f"attempt {number} ended {outcome!r}, expected one of {allowed!r}"


def open_timeout(schedule: Schedule, route: wsfake.Route) -> float:
    """Short for an attempt the schedule stalls, long enough never to fire otherwise."""
    return STALL_TIMEOUT if "timeout" in schedule.allowed(route.call_count) else PATIENCE


async def run_schedule_async(client: AsyncClient, schedule: Schedule, attempts: list[Attempt]) -> None:
    async with wsfake.patch_client() as net:
        route = net.route(WS_URL, tolerant_echo, compression=None)
        schedule.apply(route)
        while route.call_count <= schedule.handshake_faults:
            before = route.call_count
            outcome = await attempt_async(client, open_timeout(schedule, route), schedule.exchange)
            assert route.call_count > before, "the attempt made no connection"
            attempts.append((before, route.call_count, outcome))
    check_attempts(client, schedule, attempts)


def run_schedule_sync(client: SyncClient, schedule: Schedule, attempts: list[Attempt]) -> None:
    with wsfake.patch_client() as net:
        route = net.route(WS_URL, tolerant_echo, compression=None)
        schedule.apply(route)
        while route.call_count <= schedule.handshake_faults:
            before = route.call_count
            outcome = attempt_sync(client, open_timeout(schedule, route), schedule.exchange)
            assert route.call_count > before, "the attempt made no connection"
            attempts.append((before, route.call_count, outcome))
    no_server_loop_thread()
    check_attempts(client, schedule, attempts)


def _cut(kind: str, limit: int, direction: str) -> Fault:
    return Fault("drop_after", (), ((kind, limit), ("direction", direction)))


def _plain(exchange: list[str | bytes], **faults: Any) -> Schedule:
    options: dict[str, Any] = {"refuse": 0, "rejections": [], "stall": False, "cut": None, "delivery": []}
    return Schedule([Message(payload) for payload in exchange], **(options | faults))


@pytest.mark.parametrize("client", CLIENTS)
@settings(SETTINGS, max_examples=30)
@given(schedule=schedules())
# The boundaries, every run: every handshake fault in turn; a cut one message or one byte short of the exchange
# (lost), right at its end (either way), after a rejection's head; a frame with a 16-bit length.
@example(schedule=_plain(["a"], refuse=2, rejections=[503, 404], stall=True))
@example(schedule=_plain(["a", b"b"], cut=_cut("messages", 1, "to_client")))
@example(schedule=_plain(["a", b"b"], cut=_cut("messages", 2, "to_server")))
@example(schedule=_plain(["x" * 130], cut=_cut("bytes", _frame_size(130, masked=True) - 1, "to_server")))
@example(schedule=_plain(["x" * 130], cut=_cut("bytes", _frame_size(130, masked=False), "to_client")))
@example(schedule=_plain(["a"], rejections=[403], cut=_cut("messages", 0, "to_client")))
def test_every_fault_schedule_ends_in_the_outcome_it_implies(client: ClientKind, schedule: Schedule) -> None:
    attempts: list[Attempt] = []
    if isinstance(client, AsyncClient):
        run_bounded(client, lambda: run_schedule_async(client, schedule, attempts))
    else:
        assert isinstance(client, SyncClient)
        run_bounded(client, lambda: run_schedule_sync(client, schedule, attempts))
    for _, _, outcome in attempts:
        event(f"an attempt ended {outcome}")


# The bugs these properties found, each pinned by a test of its own


def test_a_fragmented_message_under_max_size_survives_chunked_delivery() -> None:
    async def main() -> None:
        async with wsfake.patch_client() as net:
            net.route(WS_URL, echo, max_size=1024).chunked(1, direction="to_server")
            async with websockets.connect(WS_URL, compression=None) as ws:
                await ws.send(["a" * 200, "b" * 200])  # 400 bytes, in two fragments
                assert await ws.recv() == "a" * 200 + "b" * 200

    asyncio.run(main())


def test_no_latency_timer_outlives_the_patch() -> None:
    pytest.importorskip("websockets.trio.client", reason="websockets.trio is new in websockets 17")
    from websockets.trio.client import connect

    async def main() -> None:
        async with wsfake.patch_client() as net:
            net.route(WS_URL, asgi_echo).latency(0.2, direction="to_server")
            async with connect(WS_URL, ping_interval=None) as ws:
                await ws.aclose()  # the app finishes on the close frame; the client's EOF is still on its way
        await trio.testing.wait_all_tasks_blocked()
        assert [task.name for task in _trio_tasks() if task.name.startswith("wsfake")] == []

    trio.run(main)


def test_aiohttp_sees_a_refused_route_as_a_closed_port() -> None:
    async def main() -> None:
        async with wsfake.patch_client() as net, aiohttp.ClientSession() as session:
            net.route(WS_URL, echo).refuse()
            with pytest.raises(aiohttp.ClientConnectorError) as info:
                await session.ws_connect(WS_URL)
            assert isinstance(info.value.os_error, ConnectionRefusedError)

    asyncio.run(main())
