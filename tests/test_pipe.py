"""The in-memory pipe behaves like a socket."""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from anyio.abc import SocketAttribute

from wsfake import Pipe
from wsfake._asyncio_transport import AsyncioTransport
from wsfake._host import new_host_for_current_loop

pytestmark = pytest.mark.anyio


def make_pipe(buffer_size: int = 64 * 1024) -> Pipe:
    return Pipe(
        new_host_for_current_loop(),
        buffer_size=buffer_size,
        client_address=("127.0.0.1", 50123),
        server_address=("localhost", 8000),
    )


async def test_bytes_arrive_in_a_later_iteration_in_order() -> None:
    pipe = make_pipe()
    client, server = pipe.client_stream(), pipe.server_stream()
    await client.send(b"ab")
    assert pipe.to_server.visible_size == 0, "delivery must not happen inside send()"
    await client.send(b"cd")
    received = await server.receive()
    if received == b"ab":  # "cd" may still be on its way, as on a socket
        received += await server.receive()
    assert received == b"abcd"


async def test_receive_respects_max_bytes() -> None:
    pipe = make_pipe()
    client, server = pipe.client_stream(), pipe.server_stream()
    await client.send(b"0123456789")
    assert await server.receive(4) == b"0123"
    assert await server.receive(4) == b"4567"
    assert await server.receive() == b"89"


async def test_send_blocks_while_the_peer_buffer_is_full() -> None:
    pipe = make_pipe(buffer_size=8)
    client, server = pipe.client_stream(), pipe.server_stream()
    finished = anyio.Event()

    async def writer() -> None:
        await server.send(b"x" * 20)
        finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        await wait_all_tasks_blocked()
        assert not finished.is_set(), "send() past the buffer size must block"
        received = b""
        while len(received) < 20:
            received += await client.receive()
        with anyio.fail_after(5):
            await finished.wait()
    assert received == b"x" * 20


async def test_half_close_keeps_the_other_direction_open() -> None:
    pipe = make_pipe()
    client, server = pipe.client_stream(), pipe.server_stream()
    await client.send(b"last")
    await client.send_eof()
    assert await server.receive() == b"last"
    with pytest.raises(anyio.EndOfStream):
        await server.receive()
    await server.send(b"reply")
    assert await client.receive() == b"reply"


async def test_close_delivers_buffered_bytes_then_eof() -> None:
    pipe = make_pipe()
    client, server = pipe.client_stream(), pipe.server_stream()
    await server.send(b"bye")
    await server.aclose()
    assert await client.receive() == b"bye"
    with pytest.raises(anyio.EndOfStream):
        await client.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await server.send(b"more")
    await client.send(b"to a closed peer")  # as over TCP, the first write after the peer closed goes out
    with pytest.raises(anyio.BrokenResourceError):
        await client.send(b"and fails after the peer's reset")


async def test_abort_resets_the_connection() -> None:
    pipe = make_pipe()
    client, server = pipe.client_stream(), pipe.server_stream()
    await server.send(b"dropped")
    server.abort()
    with pytest.raises(anyio.BrokenResourceError):
        await client.receive()


async def test_socket_attributes() -> None:
    pipe = make_pipe()
    server = pipe.server_stream()
    assert server.extra(SocketAttribute.remote_address) == ("127.0.0.1", 50123)
    assert server.extra(SocketAttribute.local_port) == 8000


@pytest.mark.parametrize("end", ["eof", "reset", "closed", "data"])
async def test_every_receive_and_send_yields_to_the_loop_as_a_socket_does(end: str) -> None:
    """A client looping on reads at EOF (or on a busy stream) must let other tasks run."""
    pipe = make_pipe()
    client, server = pipe.client_stream(), pipe.server_stream()
    await server.send(b"x" * 1000 if end == "data" else b"")
    if end == "eof":
        await server.aclose()
    elif end == "reset":
        server.abort()
    elif end == "closed":
        await client.aclose()
    await wait_all_tasks_blocked()

    async def receive() -> None:
        await client.receive(1)

    async def send() -> None:
        await server.send(b"y")

    for operation in (receive, send):
        # asyncio runs the other task in the first call's iteration; trio, in the next batch at the latest.
        assert await calls_until_another_task_ran(operation) <= 2, operation.__name__


async def calls_until_another_task_ran(operation: Callable[[], Awaitable[None]]) -> int:
    other_task_ran = anyio.Event()

    async def other_task() -> None:
        other_task_ran.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other_task)
        for calls in range(1, 100):
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await operation()
            if other_task_ran.is_set():
                return calls
    raise AssertionError("99 calls never let another task run")


class RecordingProtocol(asyncio.Protocol):
    def __init__(self, keep_open: bool = False) -> None:
        self.events: list[tuple[str, Any]] = []
        self.keep_open = keep_open
        self.lost = asyncio.Event()
        self.resumed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append(("made", None))

    def data_received(self, data: bytes) -> None:
        self.events.append(("data", data))

    def eof_received(self) -> bool:
        self.events.append(("eof", None))
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))
        self.lost.set()

    def pause_writing(self) -> None:
        self.events.append(("pause", None))

    def resume_writing(self) -> None:
        self.events.append(("resume", None))
        self.resumed.set()


def transport_pair(
    buffer_size: int = 64 * 1024, keep_open: bool = False
) -> tuple[Pipe, AsyncioTransport, RecordingProtocol]:
    pipe = make_pipe(buffer_size)
    protocol = RecordingProtocol(keep_open)
    transport = AsyncioTransport(pipe, protocol, asyncio.get_running_loop())
    protocol.connection_made(transport)
    return pipe, transport, protocol


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_transport_delivery_is_never_reentrant() -> None:
    pipe, transport, protocol = transport_pair()
    server = pipe.server_stream()
    await server.send(b"hello")
    assert protocol.events == [("made", None)], "data_received must not run inside the server's send()"
    await asyncio.sleep(0)
    assert protocol.events[-1] == ("data", b"hello")
    assert transport.get_extra_info("peername") == ("localhost", 8000)
    assert transport.get_extra_info("sockname") == ("127.0.0.1", 50123)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_transport_eof_closes_unless_protocol_keeps_it_open() -> None:
    pipe, transport, protocol = transport_pair()
    server = pipe.server_stream()
    await server.send(b"x")
    await server.send_eof()
    with anyio.fail_after(5):
        await protocol.lost.wait()
    assert [name for name, _ in protocol.events] == ["made", "data", "eof", "lost"]
    assert protocol.events[-1] == ("lost", None)

    pipe, transport, protocol = transport_pair(keep_open=True)
    await pipe.server_stream().send_eof()
    await wait_all_tasks_blocked()
    await asyncio.sleep(0)
    assert ("eof", None) in protocol.events and not transport.is_closing()
    transport.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_transport_sees_a_reset_as_connection_reset_error() -> None:
    pipe, _transport, protocol = transport_pair()
    pipe.server_stream().abort()
    with anyio.fail_after(5):
        await protocol.lost.wait()
    exc = protocol.events[-1][1]
    assert isinstance(exc, ConnectionResetError) and exc.errno == errno.ECONNRESET


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_transport_flow_control_pauses_and_resumes_writing() -> None:
    pipe, transport, protocol = transport_pair(buffer_size=1024)
    transport.set_write_buffer_limits(high=2048, low=512)
    transport.write(b"x" * 4000)
    assert ("pause", None) in protocol.events
    assert transport.get_write_buffer_size() == 4000 - 1024
    server = pipe.server_stream()
    received = 0
    while received < 4000:
        received += len(await server.receive(1000))
    with anyio.fail_after(5):
        await protocol.resumed.wait()
    assert transport.get_write_buffer_size() == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_transport_pause_reading_holds_data_back() -> None:
    pipe, transport, protocol = transport_pair()
    transport.pause_reading()
    await pipe.server_stream().send(b"held")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert ("data", b"held") not in protocol.events
    transport.resume_reading()
    await asyncio.sleep(0)
    assert ("data", b"held") in protocol.events
    transport.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_transport_write_after_write_eof_is_an_error() -> None:
    pipe, transport, protocol = transport_pair()
    transport.write(b"a")
    transport.write_eof()
    with pytest.raises(RuntimeError, match="write_eof"):
        transport.write(b"b")
    server = pipe.server_stream()
    assert await server.receive() == b"a"
    with pytest.raises(anyio.EndOfStream):
        await server.receive()
    transport.close()
    with anyio.fail_after(5):
        await protocol.lost.wait()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_transport_reports_eof_in_a_later_iteration_than_data() -> None:
    pipe, _transport, protocol = transport_pair()
    server = pipe.server_stream()
    await server.send(b"last words")
    server.close()
    await asyncio.sleep(0)
    assert protocol.events[-1] == ("data", b"last words"), "EOF must not arrive with the data"
    await asyncio.sleep(0)
    assert ("eof", None) in protocol.events


async def test_a_parked_reader_is_woken_but_never_runs_inside_send() -> None:
    pipe = make_pipe()
    client, server = pipe.client_stream(), pipe.server_stream()
    received: list[bytes] = []

    async def reader() -> None:
        received.append(await server.receive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await wait_all_tasks_blocked()  # the reader is parked on the stream
        await client.send(b"wake")
        assert received == [], "the reader must not run inside the writer's send()"
    assert received == [b"wake"]
