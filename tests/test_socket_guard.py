"""The socket guard itself: it must catch internet sockets and nothing else."""

import asyncio
import socket

import pytest


def test_guard_blocks_inet_sockets() -> None:
    with pytest.raises(AssertionError, match="AF_INET/AF_INET6 socket"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(AssertionError, match="AF_INET/AF_INET6 socket"):
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM)


def test_guard_blocks_asyncio_connections() -> None:
    async def main() -> None:
        await asyncio.open_connection("127.0.0.1", 9)

    with pytest.raises(AssertionError, match="AF_INET/AF_INET6 socket"):
        asyncio.run(main())


def test_guard_allows_event_loops() -> None:
    asyncio.run(asyncio.sleep(0))


@pytest.mark.network
def test_network_marker_lifts_the_guard() -> None:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
