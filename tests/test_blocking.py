"""The blocking socket threaded clients get behaves as a connected TCP socket does.

The server end is the pipe's anyio stream on a loop in a background thread (a
``PortalHost``, as threaded clients are served); the test thread uses the
``BlockingSocket`` as client code would.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from wsfake._blocking import BlockingSocket, Selector
from wsfake._host import PortalHost
from wsfake._pipe import Pipe, PipeStream


class Connection:
    """A BlockingSocket and the server end of its pipe, on a loop in another thread."""

    def __init__(self, host: PortalHost, buffer_size: int, server_address: tuple[Any, ...]) -> None:
        self.host = host

        async def make() -> tuple[BlockingSocket, PipeStream]:
            pipe = Pipe(
                host, buffer_size=buffer_size, client_address=("127.0.0.1", 50001), server_address=server_address
            )
            return BlockingSocket(pipe), pipe.server_stream()

        self.sock, self.server = host.run_blocking(make)

    def server_call(self, method: str, *args: Any) -> Any:
        async def call() -> Any:
            result = getattr(self.server, method)(*args)
            return await result if hasattr(result, "__await__") else result

        return self.host.run_blocking(call)

    def server_read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            data += self.server_call("receive")
        return data


@pytest.fixture
def host() -> Iterator[PortalHost]:
    host = PortalHost()
    yield host
    host.stop()


@pytest.fixture
def conn(host: PortalHost) -> Connection:
    return Connection(host, 64 * 1024, ("127.0.0.1", 8000))


def test_bytes_flow_both_ways_in_order(conn: Connection) -> None:
    conn.sock.sendall(b"hello ")
    conn.sock.sendall(b"server")
    assert conn.server_read(12) == b"hello server"
    conn.server_call("send", b"hi client")
    assert conn.sock.recv(4) == b"hi c"
    assert conn.sock.recv(100) == b"lient"


def test_the_peer_closing_is_eof_then_the_second_write_fails(conn: Connection) -> None:
    conn.server_call("send", b"last words")
    conn.server_call("aclose")
    assert conn.sock.recv(100) == b"last words"
    assert conn.sock.recv(100) == b"", "a normal close is EOF, not a reset"
    assert conn.sock.recv(100) == b""
    conn.sock.sendall(b"first write after the peer closed")  # goes out, as over TCP
    with pytest.raises(BrokenPipeError) as info:
        conn.sock.sendall(b"second")
    assert info.value.errno == errno.EPIPE


def test_a_reset_fails_reads_and_writes(conn: Connection) -> None:
    conn.server_call("abort")
    with pytest.raises(ConnectionResetError) as info:
        conn.sock.recv(10)
    assert info.value.errno == errno.ECONNRESET
    with pytest.raises(ConnectionResetError):
        conn.sock.sendall(b"x")


def test_timeouts_are_the_socket_modules(conn: Connection) -> None:
    conn.sock.settimeout(0.05)
    with pytest.raises(TimeoutError):
        conn.sock.recv(10)
    conn.sock.setblocking(False)
    with pytest.raises(BlockingIOError) as info:
        conn.sock.recv(10)
    assert info.value.errno == errno.EAGAIN


def test_sendall_blocks_while_the_peer_is_a_buffer_behind(host: PortalHost) -> None:
    conn = Connection(host, 1024, ("127.0.0.1", 8000))
    conn.sock.settimeout(0.2)
    conn.sock.sendall(b"x" * 1024)  # fits the buffer
    with pytest.raises(TimeoutError):
        conn.sock.sendall(b"y" * 2048)  # the server reads nothing: no room
    conn.sock.settimeout(None)
    done = threading.Event()

    def writer() -> None:
        conn.sock.sendall(b"z" * 4096)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    received = conn.server_read(1024 + 4096)
    thread.join(5)
    assert done.is_set() and received == b"x" * 1024 + b"z" * 4096


def test_sendall_of_more_than_a_buffer_waits_for_the_reader(host: PortalHost) -> None:
    conn = Connection(host, 1024, ("127.0.0.1", 8000))
    conn.sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        conn.sock.sendall(b"x" * 4096)  # nothing buffered before, but it does not fit: the reader reads nothing


def test_addresses_and_family_are_a_connected_sockets(host: PortalHost) -> None:
    v4 = Connection(host, 1024, ("127.0.0.1", 8000))
    assert v4.sock.family == socket.AF_INET and v4.sock.type == socket.SOCK_STREAM
    assert v4.sock.getpeername() == ("127.0.0.1", 8000)
    assert v4.sock.getsockname() == ("127.0.0.1", 50001)
    v6 = Connection(host, 1024, ("::1", 8000, 0, 0))
    assert v6.sock.family == socket.AF_INET6
    assert v6.sock.getpeername() == ("::1", 8000, 0, 0)


def test_a_closed_socket_refuses_use_with_ebadf(conn: Connection) -> None:
    conn.sock.close()
    for call in (lambda: conn.sock.recv(1), lambda: conn.sock.sendall(b"x"), conn.sock.getpeername):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF
    with pytest.raises(Exception) as eof:
        conn.server_call("receive")
    assert type(eof.value).__name__ == "EndOfStream"


def test_shutdown_write_half_closes(conn: Connection) -> None:
    conn.sock.sendall(b"request")
    conn.sock.shutdown(socket.SHUT_WR)
    assert conn.server_read(7) == b"request"
    with pytest.raises(Exception) as eof:
        conn.server_call("receive")
    assert type(eof.value).__name__ == "EndOfStream"
    conn.server_call("send", b"answer after the half-close")
    assert conn.sock.recv(100) == b"answer after the half-close"
    with pytest.raises(BrokenPipeError):
        conn.sock.sendall(b"after SHUT_WR")


def test_a_stopped_loop_wakes_a_blocked_reader_with_a_clear_error(host: PortalHost) -> None:
    conn = Connection(host, 1024, ("127.0.0.1", 8000))
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            conn.sock.recv(10)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    conn.sock.abandon()  # what the network does when the patch exits
    thread.join(5)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionResetError)
    assert "patch_client context that served this connection has exited" in str(errors[0])


def test_the_selector_waits_for_in_memory_sockets(conn: Connection) -> None:
    import selectors

    selector = Selector()
    selector.register(conn.sock, selectors.EVENT_READ, "data")
    assert selector.select(0) == []
    conn.server_call("send", b"ready")
    ready = selector.select(5)
    assert [(key.fileobj, key.data) for key, _ in ready] == [(conn.sock, "data")]
    selector.close()
