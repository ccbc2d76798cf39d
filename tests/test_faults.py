"""Faults on a route: refused, rejected and stalled handshakes; cut, late, slow and chunked delivery."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

import wsfake

URL = "ws://localhost:8000/ws"


async def echo(ws: wsfake.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def three_events(ws: wsfake.ServerConnection) -> None:
    for i in range(3):
        await ws.send(f"event {i}")
    await ws.wait_closed()


def notes(route: wsfake.Route, index: int = -1) -> list[Any]:
    return [entry.data for entry in route.calls[index].transcript if entry.kind == "note"]


async def reconnecting_client(url: str, wanted: int) -> list[str]:
    """The client code under test: reconnect on a refused port or a lost connection until ``wanted`` events."""
    events: list[str] = []
    while len(events) < wanted:
        try:
            async with websockets.connect(url) as ws:
                async for message in ws:
                    events.append(str(message))
                    if len(events) == wanted:
                        return events
        except (OSError, ConnectionClosed):
            continue
    return events


@pytest.mark.asyncio
async def test_a_reconnect_loop_survives_refusals_and_a_cut() -> None:
    if websockets.version.version == "14.0":
        pytest.skip("websockets 14.0 loses the messages it received just before an abnormal close (fixed in 14.1)")
    async with wsfake.patch_client() as net:
        route = net.route(URL, three_events)
        route.refuse(times=2).drop_after(messages=2)
        events = await asyncio.wait_for(reconnecting_client(URL, 4), 5)
    # Two refused attempts, a connection cut after two events, then a normal one (the cut applies to every
    # connection until cleared, so the client reconnects once more and reads two more).
    assert events == ["event 0", "event 1", "event 0", "event 1"]
    assert [notes(route, i) for i in range(2)] == [["fault: connection refused"], ["fault: connection refused"]]
    assert "fault: cut after 2 messages to the client" in notes(route, 2)


@pytest.mark.asyncio
async def test_refused_as_a_closed_port_is() -> None:
    async with wsfake.patch_client() as net:
        net.route(URL, echo).refuse()
        with pytest.raises(ConnectionRefusedError) as info:
            await websockets.connect(URL)
        assert info.value.errno == 111
        async with websockets.connect(URL) as ws:  # then served normally
            await ws.send("back")
            assert await ws.recv() == "back"


@pytest.mark.asyncio
async def test_a_rejected_handshake_is_an_http_answer() -> None:
    async with wsfake.patch_client() as net:
        route = net.route(URL, echo).reject(404, {"X-Env": "staging"}, "no such endpoint", times=1)
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(URL)
        response = info.value.response
        assert (response.status_code, response.headers["X-Env"], response.body) == (404, "staging", b"no such endpoint")
        async with websockets.connect(URL):
            pass
    assert notes(route, 0) == ["fault: handshake rejected with HTTP 404"]


@pytest.mark.asyncio
async def test_a_stalled_handshake_is_bounded_by_the_clients_open_timeout() -> None:
    async with wsfake.patch_client() as net:
        route = net.route(URL, echo).stall_handshake()
        with pytest.raises(asyncio.TimeoutError):
            await websockets.connect(URL, open_timeout=0.1)
    assert notes(route) == ["fault: handshake read, never answered"]
    assert route.calls.last.status is None


@pytest.mark.asyncio
async def test_a_cut_after_some_bytes_is_abrupt() -> None:
    async with wsfake.patch_client() as net:
        net.route(URL, three_events).drop_after(bytes=0)  # cut right after the handshake
        async with websockets.connect(URL) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd is None and ws.protocol.close_code == 1006


@pytest.mark.parametrize("size", [1, 3, "random"])
@pytest.mark.asyncio
async def test_chunked_delivery_keeps_every_message_intact(size: Any) -> None:
    messages = ["é" * 300, b"\x00\xff" * 700, "", "last"]
    async with wsfake.patch_client() as net:
        route = net.route(URL, echo).chunked(size, seed=7)
        async with websockets.connect(URL) as ws:
            for message in messages:
                await ws.send(message)
                assert await ws.recv() == message
    assert f"fault: delivery in chunks of {size}" in " ".join(notes(route))


@pytest.mark.asyncio
async def test_latency_and_bandwidth_use_the_loops_clock() -> None:
    loop = asyncio.get_running_loop()
    async with wsfake.patch_client() as net:
        net.route(URL, echo).latency(0.05, direction="to_client")
        async with websockets.connect(URL, compression=None) as ws:
            started = loop.time()
            await ws.send("ping")
            assert await ws.recv() == "ping"
            assert loop.time() - started >= 0.05
        net.routes[0].clear_faults().bandwidth(20_000, direction="to_client")
        async with websockets.connect(URL, compression=None) as ws:
            started = loop.time()
            await ws.send("x" * 2000)
            assert await ws.recv() == "x" * 2000
            assert loop.time() - started >= 0.1  # 2 kB at 20 kB/s


def test_faults_move_with_a_fake_clock_not_the_real_one() -> None:
    import trio
    import trio.testing

    trio_client = pytest.importorskip("websockets.trio.client", reason="websockets.trio needs websockets 17")

    async def main() -> float:
        async with wsfake.patch_client() as net:
            net.route(URL, echo, open_timeout=None, ping_interval=None).latency(3)
            async with trio_client.connect(URL, open_timeout=None, ping_interval=None) as ws:
                await ws.send("slow")
                assert await ws.recv() == "slow"
        return trio.current_time()

    started = time.monotonic()
    fake_seconds = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert fake_seconds >= 3 * 6  # three exchanges (handshake, message, close), 3 s each way
    assert time.monotonic() - started < fake_seconds / 3


@pytest.mark.parametrize(
    ("apply", "message"),
    [
        (lambda r: r.latency(-1), "latency must be zero or more seconds"),
        (lambda r: r.refuse(times=0), "times must be a positive number"),
        (lambda r: r.bandwidth(0), "bandwidth must be a positive number"),
        (lambda r: r.chunked(0), "chunk size must be a positive number of bytes or 'random'"),
        (lambda r: r.drop_after(), "exactly one of messages=N or bytes=N"),
        (lambda r: r.drop_after(messages=1, bytes=1), "exactly one of messages=N or bytes=N"),
        (lambda r: r.latency(1, direction="sideways"), "direction must be one of to_client, to_server, both"),
        (lambda r: r.reject(101), "status must be an HTTP status other than 101"),
    ],
)
def test_nonsense_fault_arguments_are_refused(apply: Any, message: str) -> None:
    route = wsfake.Network().route(URL, echo)
    with pytest.raises(ValueError, match=message):
        apply(route)
