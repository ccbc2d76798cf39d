"""Handler targets (`async def handler(ws)`), driven by the real websockets client."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import websockets
from websockets.exceptions import ConcurrencyError, ConnectionClosedError, ConnectionClosedOK, InvalidStatus

import wsfake
from wsfake import ServerConnection

pytestmark = pytest.mark.asyncio


@asynccontextmanager
async def asyncio_timeout(seconds: float) -> AsyncIterator[None]:
    """``asyncio.timeout`` (3.11+), or anyio's ``fail_after`` on 3.10."""
    with anyio.fail_after(seconds):
        yield


URL = "ws://localhost:8000/ws"


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def test_text_binary_and_empty_echo() -> None:
    async with wsfake.patch_client(echo), websockets.connect(URL) as ws:
        for message in ["hello", b"\x00\xff", "", b"", "ünïcødé ✓"]:
            await ws.send(message)
            assert await ws.recv() == message


async def test_recv_decode_options() -> None:
    seen: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(await ws.recv(decode=False))
        seen.append(await ws.recv(decode=True))
        seen.append(await ws.recv())

    async with wsfake.patch_client(handler), websockets.connect(URL) as ws:
        await ws.send("text")
        await ws.send(b"bytes")
        await ws.send(b"raw")
        await ws.wait_closed()
    assert seen == [b"text", "bytes", b"raw"]


async def test_fragmented_sends_and_recv_streaming() -> None:
    received: list[list[Any]] = []

    async def handler(ws: ServerConnection) -> None:
        for _ in range(2):
            received.append([fragment async for fragment in ws.recv_streaming()])
        await ws.send(["a", "b", "c"])

        async def parts() -> AsyncIterator[bytes]:
            yield b"1"
            yield b"2"

        await ws.send(parts())

    async with wsfake.patch_client(handler), websockets.connect(URL) as ws:
        await ws.send(["x", "y"])
        await ws.send([b"p", b"q", b"r"])
        assert [f async for f in ws.recv_streaming()] == ["a", "b", "c", ""]
        assert await ws.recv() == b"12"
    # websockets ends a fragmented message with an empty final frame, and so does wsfake.
    assert received == [["x", "y", ""], [b"p", b"q", b"r", b""]]


async def test_mixed_fragment_types_raise_typeerror_and_close_1011() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(["text", b"bytes"])

    async with wsfake.patch_client(handler, raise_server_errors=False) as net, websockets.connect(URL) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    assert isinstance(net.errors[0], TypeError)


@pytest.mark.parametrize("bad", [{"a": 1}, 42, None])
async def test_sending_a_non_message_raises_a_clear_typeerror(bad: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(bad)

    async with wsfake.patch_client(handler, raise_server_errors=False) as net, websockets.connect(URL) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    assert [type(e) for e in net.errors] == [TypeError]
    assert re.search(r"dict-like|must be str, bytes", str(net.errors[0]))


async def test_handler_return_closes_1000_and_raise_closes_1011() -> None:
    async def done(ws: ServerConnection) -> None:
        return

    async def fails(ws: ServerConnection) -> None:
        raise ValueError("handler bug")

    async with wsfake.patch_client(done), websockets.connect(URL) as ws:
        with pytest.raises(ConnectionClosedOK) as ok:
            await ws.recv()
    assert ok.value.rcvd is not None and ok.value.rcvd.code == 1000

    async with wsfake.patch_client(fails, raise_server_errors=False) as net, websockets.connect(URL) as ws:
        with pytest.raises(ConnectionClosedError) as err:
            await ws.recv()
    assert err.value.rcvd is not None and err.value.rcvd.code == 1011
    assert [str(e) for e in net.errors] == ["handler bug"] and isinstance(net.errors[0], ValueError)


@pytest.mark.parametrize(
    ("code", "reason", "exc_type"),
    [
        (1000, "", ConnectionClosedOK),
        (1001, "going away", ConnectionClosedOK),
        (1011, "oops", ConnectionClosedError),
        (3000, "registered", ConnectionClosedError),
        (4999, "ünïcødé", ConnectionClosedError),
        (4000, "x" * 123, ConnectionClosedError),
    ],
)
async def test_server_close_codes_and_reasons(code: int, reason: str, exc_type: type[Exception]) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.close(code, reason)

    async with wsfake.patch_client(handler) as net, websockets.connect(URL) as ws:
        with pytest.raises(exc_type) as info:
            await ws.recv()
        assert ws.protocol.close_code == code and ws.protocol.close_reason == reason
        assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (code, reason)
    call = net.routes[0].calls.last
    assert call.close_sent == (code, reason) and call.close_received == (code, reason)


async def test_client_close_is_seen_by_the_handler() -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            seen["exc"] = exc
        await ws.wait_closed()
        seen["code"], seen["reason"], seen["state"] = ws.close_code, ws.close_reason, ws.state

    async with wsfake.patch_client(handler):
        ws = await websockets.connect(URL)
        await ws.close(4001, "client leaves")
        await ws.close(4002, "second close is a no-op")
        assert ws.protocol.close_code == 4001
    assert seen["code"] == 4001 and seen["reason"] == "client leaves"
    assert seen["state"] is websockets.protocol.State.CLOSED
    assert seen["exc"].rcvd.code == 4001


async def test_connection_attributes() -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: ServerConnection) -> None:
        seen.update(
            path=ws.request.path,
            ua=ws.request.headers["User-Agent"],
            custom=ws.request.headers.get_all("X-Dup"),
            remote=ws.remote_address,
            local=ws.local_address,
            state=ws.state,
            id=ws.id,
            close_code=ws.close_code,
        )
        await ws.send("ok")

    async with (
        wsfake.patch_client(handler),
        websockets.connect(
            "ws://localhost:8000/ws/a%20b?x=1&y=2", additional_headers=[("X-Dup", "1"), ("X-Dup", "2")]
        ) as ws,
    ):
        assert await ws.recv() == "ok"
        assert ws.remote_address == ("127.0.0.1", 8000)  # as the connected socket reports it
    assert seen["path"] == "/ws/a%20b?x=1&y=2"
    assert seen["ua"].startswith("Python/") and "websockets/" in seen["ua"]
    assert seen["custom"] == ["1", "2"]
    assert seen["remote"][0] == "127.0.0.1" and seen["local"] == ("127.0.0.1", 8000)
    assert seen["state"] is websockets.protocol.State.OPEN
    assert seen["close_code"] is None and seen["id"].version == 4


async def test_ping_returns_latency_and_client_pings_are_answered() -> None:
    latencies: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        waiter = await ws.ping()
        latencies.append(await waiter)
        latencies.append(ws.latency)
        await ws.pong(b"unsolicited")
        await ws.send("done")
        await ws.wait_closed()

    async with wsfake.patch_client(handler), websockets.connect(URL) as ws:
        pong = await ws.ping(b"abc")
        assert await asyncio.wait_for(pong, 5) >= 0
        assert await ws.recv() == "done"
    assert latencies[0] >= 0 and latencies[1] == latencies[0]


async def test_duplicate_ping_payload_is_a_concurrency_error() -> None:
    errors: list[Exception] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.ping(b"same")
        try:
            await ws.ping(b"same")
        except ConcurrencyError as exc:
            errors.append(exc)

    async with wsfake.patch_client(handler), websockets.connect(URL) as ws:
        await ws.wait_closed()
    assert len(errors) == 1


async def test_concurrent_recv_is_a_concurrency_error() -> None:
    errors: list[Exception] = []

    async def handler(ws: ServerConnection) -> None:
        # gather starts both in order: the first is waiting when the second calls recv().
        first, second = await asyncio.gather(ws.recv(), ws.recv(), return_exceptions=True)
        assert first == "go"
        assert isinstance(second, ConcurrencyError)
        errors.append(second)

    async with wsfake.patch_client(handler), websockets.connect(URL) as ws:
        await ws.send("go")
        await ws.wait_closed()
    assert len(errors) == 1


async def test_subprotocol_selection_follows_websockets_serve() -> None:
    async with wsfake.patch_client() as net:
        net.route(URL, echo, subprotocols=["v2", "v1"])
        async with websockets.connect(URL, subprotocols=["v1", "v2"]) as ws:
            assert ws.subprotocol == "v2"  # the server's preference wins
        with pytest.raises(InvalidStatus) as missing:
            await websockets.connect(URL)
        assert missing.value.response.status_code == 400
        assert b"missing subprotocol" in missing.value.response.body
        with pytest.raises(InvalidStatus) as invalid:
            await websockets.connect(URL, subprotocols=["v3"])
        assert b"invalid subprotocol; expected one of v2, v1" in invalid.value.response.body
        assert net.routes[0].calls[0].subprotocol == "v2"


async def test_process_request_can_deny_with_an_http_response() -> None:
    def check_token(connection: ServerConnection, request: Any) -> Any:
        if request.headers.get("Authorization") != "Bearer good":
            return connection.respond(403, "Forbidden\n")
        return None

    async def check_async(connection: ServerConnection, request: Any) -> Any:
        if "deny" in request.path:
            return 404, {"X-Reason": "nope"}, b"not here"
        return None

    async with wsfake.patch_client() as net:
        net.route("ws://localhost:8000/ws", echo, process_request=check_token)
        net.route("ws://localhost:8000/*", echo, process_request=check_async)
        with pytest.raises(InvalidStatus) as denied:
            await websockets.connect(URL)
        assert denied.value.response.status_code == 403 and denied.value.response.body == b"Forbidden\n"
        async with websockets.connect(URL, additional_headers={"Authorization": "Bearer good"}) as ws:
            await ws.send("in")
            assert await ws.recv() == "in"
        with pytest.raises(InvalidStatus) as missing:
            await websockets.connect("ws://localhost:8000/deny")
        response = missing.value.response
        assert (response.status_code, response.headers["X-Reason"], response.body) == (404, "nope", b"not here")
        assert net.routes[0].calls[0].status == 403 and net.routes[1].calls[0].response_body == b"not here"


@pytest.mark.parametrize(
    ("compression", "reason"),
    [
        (None, "frame with 1001 bytes exceeds limit of 1000 bytes"),
        # Compressed, only the decompressed size counts, and websockets words it without a size.
        ("deflate", "frame exceeds limit of 1000 bytes"),
    ],
)
async def test_client_message_over_server_max_size_gets_1009(compression: str | None, reason: str) -> None:
    # As under websockets.serve, the handler's `async for` ends with ConnectionClosedError.
    async with wsfake.patch_client(raise_server_errors=False) as net:
        net.route(URL, echo, max_size=1000)
        async with websockets.connect(URL, compression=compression) as ws:
            await ws.send("x" * 1000)
            assert await ws.recv() == "x" * 1000
            await ws.send("x" * 1001)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        assert info.value.rcvd.reason == reason
    assert isinstance(net.errors[0], ConnectionClosedError) and net.errors[0].sent.code == 1009


async def test_server_message_over_client_max_size_gets_1009() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"x" * 2000)
        await ws.wait_closed()

    async with wsfake.patch_client(handler) as net, websockets.connect(URL, max_size=1000) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent is not None and info.value.sent.code == 1009
    assert net.routes[0].calls.last.close_received is not None
    assert net.routes[0].calls.last.close_received[0] == 1009


class FrameLog(logging.Handler):
    """Sets an event when websockets' debug log shows a frame of the given kind (``< PING``, ``< PONG``)."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__(logging.DEBUG)
        self.seen = {prefix: asyncio.Event() for prefix in prefixes}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for prefix, event in self.seen.items():
            if message.startswith(prefix):
                event.set()


async def test_server_keepalive_and_client_keepalive() -> None:
    # The server pings the client (keepalive) and answers the client's keepalive pings.
    frames = FrameLog("< PING", "< PONG")
    logger = logging.getLogger("test.keepalive")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(frames)
    try:
        async with wsfake.patch_client() as net:
            net.route(URL, echo, ping_interval=0.02, ping_timeout=5)
            async with websockets.connect(URL, ping_interval=0.02, ping_timeout=5, logger=logger) as ws:
                async with asyncio_timeout(5):
                    await frames.seen["< PING"].wait()  # the server's keepalive ping arrived
                    await frames.seen["< PONG"].wait()  # the server answered the client's
                assert ws.latency > 0
    finally:
        logger.removeHandler(frames)


async def test_messages_are_delivered_in_order_before_a_clean_close() -> None:
    async def handler(ws: ServerConnection) -> None:
        for i in range(500):
            await ws.send(str(i))
        await ws.close(1000, "done")

    async with wsfake.patch_client(handler), websockets.connect(URL) as ws:
        assert [await ws.recv() for _ in range(500)] == [str(i) for i in range(500)]
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


async def test_a_handler_that_never_reads_pushes_back_on_the_client() -> None:
    release = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await release.wait()
        count = 0
        async for _ in ws:
            count += 1
            if count == 200:
                await ws.send(str(count))

    async with wsfake.patch_client(handler, buffer_size=16 * 1024), websockets.connect(URL, compression=None) as ws:
        sender = asyncio.gather(*[ws.send("x" * 4096) for _ in range(200)])
        await anyio.wait_all_tasks_blocked()  # everything that can move has moved
        assert not sender.done(), "the client must be held back while the server does not read"
        release.set()
        await asyncio.wait_for(sender, 5)
        assert await asyncio.wait_for(ws.recv(), 5) == "200"


async def test_a_client_that_does_not_read_pushes_back_on_the_handler() -> None:
    sent = 0
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        nonlocal sent
        for index in range(200):
            await ws.send(f"{index:04}" + "x" * 4092)
            sent += 1
        done.set()
        await ws.wait_closed()

    async with wsfake.patch_client(handler, buffer_size=16 * 1024), websockets.connect(URL, compression=None) as ws:
        await anyio.wait_all_tasks_blocked()  # everything that can move has moved
        assert not done.is_set() and sent < 100, f"the handler must be held back ({sent} sent)"
        for index in range(200):
            assert (await asyncio.wait_for(ws.recv(), 5))[:4] == f"{index:04}"
        await asyncio.wait_for(done.wait(), 5)


async def test_close_timeout_when_the_server_stops_reading() -> None:
    # Like websockets.serve, the server stops reading once more than max_queue frames wait
    # unread, so the client's close frame, queued behind the rest, is never read: the client
    # gives up after its close_timeout and drops the connection (1006).
    async def never_reads(ws: ServerConnection) -> None:
        await asyncio.Event().wait()

    async with wsfake.patch_client(shutdown_timeout=0.05) as net:
        net.route(URL, never_reads, max_queue=2)
        ws = await websockets.connect(URL, close_timeout=0.1, compression=None)
        for _ in range(50):
            await ws.send("x" * 1000)
        await asyncio.wait_for(ws.close(), 5)
        assert ws.protocol.close_code == 1006
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
    assert len(net.routes[0].calls.last.received) == 3  # high-water mark 2: reading stops after the third frame


async def test_text_true_sends_bytes_unchecked_and_the_client_fails_with_1007() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"valid", text=True)
        await ws.send("as binary", text=False)
        await ws.send(b"\xc3\x28", text=True)  # invalid UTF-8, as websockets would send it
        await ws.wait_closed()

    async with wsfake.patch_client(handler), websockets.connect(URL) as ws:
        assert await ws.recv() == "valid"
        assert await ws.recv() == b"as binary"
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent is not None and info.value.sent.code == 1007


async def test_transport_abort_drops_the_connection_without_a_close_frame() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("last words")
        assert ws.transport.get_extra_info("peername") == ws.remote_address
        ws.transport.abort()
        assert ws.transport.is_closing()

    async with wsfake.patch_client(handler), websockets.connect(URL) as ws:
        assert await ws.recv() == "last words"
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.rcvd is None and ws.protocol.close_code == 1006


async def test_recv_returns_a_message_while_the_next_one_is_still_arriving() -> None:
    """A complete message is returned even when a fragment of the next one arrived with it."""
    from wsproto.events import AcceptConnection, CloseConnection, TextMessage

    from wsproto_client import WsprotoClient

    async def answer_twice(ws: ServerConnection) -> None:
        await ws.send(f"got {await ws.recv()}")
        await ws.send(f"got {await ws.recv()}")

    network = wsfake.Network()
    network.route(URL, answer_twice)
    client, accepted = await WsprotoClient.connect(network, URL)
    assert isinstance(accepted, AcceptConnection)
    # One write: a whole message, then the first fragment of the next (the handler sees both at once).
    whole, fragment = client.ws.send(TextMessage("one")), client.ws.send(TextMessage("two-", message_finished=False))
    await client.send_raw(whole + fragment)
    assert await client.next_event() == TextMessage("got one")
    await client.send(TextMessage("end"))
    assert await client.next_event() == TextMessage("got two-end")
    await client.send(CloseConnection(1000))
    assert isinstance(await client.next_event(), CloseConnection)
    await network.aclose()
