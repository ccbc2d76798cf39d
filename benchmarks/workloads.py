"""The workloads. Each checks its results (counts and payloads) and returns one :class:`Sample`.

Async workloads take ``connect(path)`` from a driver's session; W1 and W2 are
backend-neutral (asyncio and trio), W4 and the heap measurement use asyncio.
``*_sync`` variants drive threaded clients. W0 opens and closes the server itself.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from .apps import Lifespans
from .clients import AsyncConn, AsyncConnect, AsyncDriver, SyncConnect

ECHO = "0123456789abcdef"  # W0, W1: 16 bytes of text
ROUND_TRIP = b"x" * 64  # W2, W4: 64 bytes of binary
STREAMED = "t" * 64  # W3: what /stream sends


class CheckFailed(AssertionError):
    """A workload's result was wrong (a count or a payload): its figure would be meaningless."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


@dataclass(frozen=True)
class Sample:
    """One measurement: ``value`` in ``unit``; ``cpu_us`` is process CPU time per operation."""

    unit: str
    value: float
    cpu_us: float | None = None
    raw: dict[str, float] = field(default_factory=dict)


class _Clock:
    """Wall clock (what a test suite waits for) and process CPU time, started together."""

    def __init__(self) -> None:
        gc.collect()
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def sample(self, unit: str, ops: int) -> Sample:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return Sample(unit, ops / wall, cpu / ops * 1e6, {"ops": ops, "wall_s": wall, "cpu_s": cpu})


async def w0(server: Callable[[], AbstractAsyncContextManager[str]], driver: AsyncDriver, n: int) -> Sample:
    """Per-test cycle: start the server (lifespan on), connect, one echo, close, stop the server."""
    started, stopped = Lifespans.started, Lifespans.stopped
    clock = _Clock()
    for _ in range(n):
        async with server() as base, driver.session(base) as connect, connect("/echo") as ws:
            await ws.send(ECHO)
            check(await ws.recv() == ECHO, "W0 echo")
    sample = clock.sample("cycles/s", n)
    check(Lifespans.started - started == n, "W0 lifespan startups")
    check(Lifespans.stopped - stopped == n, "W0 lifespan shutdowns")
    return sample


async def w1(connect: AsyncConnect, n: int) -> Sample:
    """Connect (full handshake) + one 16-byte echo + clean close, n times in sequence."""
    clock = _Clock()
    for _ in range(n):
        async with connect("/echo") as ws:
            await ws.send(ECHO)
            check(await ws.recv() == ECHO, "W1 echo")
    return clock.sample("conn/s", n)


async def w2(connect: AsyncConnect, n: int) -> Sample:
    """n sequential 64-byte echo round trips on one connection."""
    async with connect("/echo") as ws:
        clock = _Clock()
        for _ in range(n):
            await ws.send(ROUND_TRIP)
            check(await ws.recv() == ROUND_TRIP, "W2 echo")
        return clock.sample("rt/s", n)


async def w3(connect: AsyncConnect, n: int) -> Sample:
    """The server streams n 64-byte messages; the client reads them all."""
    async with connect(f"/stream?n={n}&size={len(STREAMED)}") as ws:
        clock = _Clock()
        await ws.send("go")  # the server starts streaming only now
        for _ in range(n):
            check(await ws.recv() == STREAMED, "W3 payload")
        return clock.sample("msg/s", n)


async def _hold_open(
    connect: AsyncConnect, connections: int, work: Callable[[AsyncConn], Awaitable[None]], at_peak: Callable[[], int]
) -> tuple[_Clock, int]:
    """Open ``connections`` connections, each in its own task for its whole life.

    Once all are open, ``work(ws)`` runs on every one at once. Returns the clock
    started when the work started (read when the last one finished, closing
    excluded) and what ``at_peak()`` returned then, every connection still open.
    """
    opened, finished, go, leave = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()
    counts = [0, 0]
    result: list[tuple[_Clock, int]] = []

    async def one(i: int) -> None:
        async with connect(f"/echo?c={i}") as ws:
            counts[0] += 1
            if counts[0] == connections:
                opened.set()
            await go.wait()
            await work(ws)
            counts[1] += 1
            if counts[1] == connections:
                finished.set()
            await leave.wait()

    tasks = [asyncio.create_task(one(i)) for i in range(connections)]
    try:
        await opened.wait()
        clock = _Clock()
        go.set()
        await finished.wait()
        result.append((clock, at_peak()))
    finally:
        leave.set()
        await asyncio.gather(*tasks)
    return result[0]


async def w4(connect: AsyncConnect, connections: int, round_trips: int) -> Sample:
    """``connections`` concurrent connections x ``round_trips`` 64-byte echo round trips each."""

    async def round_trips_on(ws: AsyncConn) -> None:
        for _ in range(round_trips):
            await ws.send(ROUND_TRIP)
            check(await ws.recv() == ROUND_TRIP, "W4 echo")

    ops = connections * round_trips
    clock, _ = await _hold_open(connect, connections, round_trips_on, lambda: 0)
    return clock.sample("rt/s", ops)


async def heap_per_connection(connect: AsyncConnect, connections: int) -> Sample:
    """Python heap per open connection (tracemalloc), client and server side together."""

    async def one_round_trip(ws: AsyncConn) -> None:  # every connection fully set up, buffers used once
        await ws.send(ROUND_TRIP)
        check(await ws.recv() == ROUND_TRIP, "heap echo")

    def traced() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    async with connect("/echo") as ws:  # first-use allocations (caches, imports) before the baseline
        await one_round_trip(ws)
    gc.collect()
    tracemalloc.start()
    try:
        before = traced()
        _, during = await _hold_open(connect, connections, one_round_trip, traced)
    finally:
        tracemalloc.stop()
    per_connection = (during - before) / connections / 1024
    return Sample("KiB/conn", per_connection, None, {"connections": connections, "bytes": during - before})


def w1_sync(connect: SyncConnect, n: int) -> Sample:
    """W1 for threaded clients."""
    clock = _Clock()
    for _ in range(n):
        with connect("/echo") as ws:
            ws.send(ECHO)
            check(ws.recv() == ECHO, "W1 echo")
    return clock.sample("conn/s", n)


def w2_sync(connect: SyncConnect, n: int) -> Sample:
    """W2 for threaded clients."""
    with connect("/echo") as ws:
        clock = _Clock()
        for _ in range(n):
            ws.send(ROUND_TRIP)
            check(ws.recv() == ROUND_TRIP, "W2 echo")
        return clock.sample("rt/s", n)
