"""A price-feed client (aiohttp) tested against the network's bad days: faults on a route, and the deadline.

The client under test subscribes to a feed, reads JSON ticks, and reconnects
when the connection is refused or cut. The server is a small handler; the
faults make the in-memory network refuse, cut, stall, delay and split the
bytes, each as the client library would see it on a real network.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

import wsfake

URL = "ws://feed.internal:9000/ticks"

# ---- the client code under test ----


async def read_ticks(session: aiohttp.ClientSession, url: str, wanted: int, *, attempts: int = 5) -> list[float]:
    """Collect ``wanted`` prices, reconnecting after refusals and cuts (at most ``attempts`` connections)."""
    prices: list[float] = []
    for _ in range(attempts):
        try:
            async with session.ws_connect(url) as ws:
                await ws.send_json({"subscribe": "EURUSD", "from": len(prices)})
                while (message := await ws.receive(timeout=2)).type is aiohttp.WSMsgType.TEXT:
                    prices.append(json.loads(message.data)["price"])
                    if len(prices) == wanted:
                        return prices
        except aiohttp.ClientConnectorError:
            pass  # refused: try again
        await asyncio.sleep(0)
    raise ConnectionError(f"gave up after {attempts} connections with {len(prices)} of {wanted} prices")


# ---- the server the client talks to (in memory) ----


async def feed(ws: wsfake.ServerConnection) -> None:
    request = json.loads(await ws.recv())
    for index in range(request["from"], 1000):
        await ws.send(json.dumps({"price": 1.0 + index / 1000}))
    await ws.wait_closed()


# ---- the tests ----


@pytest.mark.asyncio
async def test_refusals_and_a_cut_stream_are_survived() -> None:
    async with wsfake.patch_client() as net, aiohttp.ClientSession() as session:
        route = net.route(URL, feed)
        route.refuse(times=2)  # two closed-port attempts first
        route.drop_after(messages=3, direction="to_client")  # every connection is cut after 3 ticks
        prices = await read_ticks(session, URL, 7, attempts=6)
    assert prices == [1.0 + index / 1000 for index in range(7)]  # nothing lost, nothing twice
    assert route.call_count == 2 + 3  # two refusals, then three connections of 3 + 3 + 1 ticks


@pytest.mark.asyncio
async def test_a_frame_split_at_every_byte_still_parses() -> None:
    async with wsfake.patch_client() as net, aiohttp.ClientSession() as session:
        net.route(URL, feed).chunked(1, direction="to_client")  # one byte per read: the worst case for a parser
        assert await read_ticks(session, URL, 3) == [1.0, 1.001, 1.002]


@pytest.mark.asyncio
async def test_random_splits_are_reproducible_with_a_seed() -> None:
    async with wsfake.patch_client() as net, aiohttp.ClientSession() as session:
        net.route(URL, feed).chunked("random", seed=42)  # both directions, the same splits on every run
        assert await read_ticks(session, URL, 50) == [1.0 + index / 1000 for index in range(50)]


@pytest.mark.asyncio
async def test_a_handshake_that_never_completes_ends_at_the_clients_timeout() -> None:
    timeout = aiohttp.ClientTimeout(total=0.1)  # aiohttp bounds the upgrade request by the session's timeout
    async with wsfake.patch_client() as net, aiohttp.ClientSession(timeout=timeout) as session:
        net.route(URL, feed).stall_handshake()  # the upgrade request is read and never answered
        with pytest.raises(asyncio.TimeoutError):
            await session.ws_connect(URL)


@pytest.mark.asyncio
async def test_a_slow_link_trips_the_clients_receive_timeout() -> None:
    async with wsfake.patch_client() as net, aiohttp.ClientSession() as session:
        net.route(URL, feed).latency(0.2, direction="to_client")  # each write arrives 0.2 s late
        async with session.ws_connect(URL) as ws:
            await ws.send_json({"subscribe": "EURUSD", "from": 0})
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=0.05)


@pytest.mark.asyncio
async def test_a_message_that_never_comes_fails_at_the_deadline_instead_of_hanging() -> None:
    async def silent(ws: wsfake.ServerConnection) -> None:
        await ws.recv()  # the subscription
        await ws.wait_closed()  # and never a tick

    # With the pytest fixture this is the ini option `wsfake_deadline` (or the marker's `deadline=`).
    with pytest.raises(wsfake.DeadlineExceeded, match="nothing moved on any connection"):
        async with wsfake.patch_client({URL: silent}, deadline=0.3), aiohttp.ClientSession() as session:
            await read_ticks(session, URL, 1, attempts=1)
