"""The network guard: while patched, nothing reaches a routed address over the real network unseen."""

from __future__ import annotations

import asyncio
import socket

import pytest

import wsfake


async def echo(ws: wsfake.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


# These tests create sockets on purpose: the guard must stop them before they connect.
pytestmark = pytest.mark.network


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_a_raw_socket_to_a_routed_address_is_blocked(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with (
        wsfake.patch_client({"ws://localhost:8000/*": echo}),
        socket.socket(family) as sock,
        pytest.raises(wsfake.RealNetworkBlocked) as info,
    ):
        sock.connect((host, 8000))
    message = str(info.value)
    assert "8000" in message and "ws://localhost:8000/*" in message and "pass_through" in message
    assert not isinstance(info.value, OSError)  # a reconnect loop must not retry it


def test_asyncio_open_connection_to_a_routed_address_is_blocked() -> None:
    async def main() -> None:
        await asyncio.open_connection("localhost", 8000)

    with wsfake.patch_client({"ws://localhost:8000/*": echo}), pytest.raises(wsfake.RealNetworkBlocked):
        asyncio.run(main())


def test_a_routed_hostname_is_blocked_before_its_name_is_looked_up() -> None:
    with wsfake.patch_client({"wss://api.example.com/feed": echo}), pytest.raises(wsfake.RealNetworkBlocked):
        socket.getaddrinfo("api.example.com", 443)


def test_other_addresses_and_a_named_pass_through_are_not_blocked() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with wsfake.patch_client({"ws://localhost:8000/*": echo}) as net:
            with socket.create_connection(("127.0.0.1", port)):
                pass  # not routed
            net.route(f"ws://127.0.0.1:{port}/ws", echo)
            with pytest.raises(wsfake.RealNetworkBlocked):
                socket.create_connection(("127.0.0.1", port))
            net.pass_through(f"ws://127.0.0.1:{port}/other")
            with socket.create_connection(("127.0.0.1", port)):
                pass  # the pass-through names the address: a client of it may connect


def test_wildcard_routes_do_not_block_other_traffic() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with wsfake.patch_client(echo), socket.create_connection(("127.0.0.1", port)):
            pass  # patch_client(target) serves every ws:// URL, but cannot tell a raw socket from HTTP


def test_nothing_is_blocked_once_the_patch_is_gone() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with wsfake.patch_client({f"ws://127.0.0.1:{port}/*": echo}):
            pass
        with socket.create_connection(("127.0.0.1", port)):
            pass
