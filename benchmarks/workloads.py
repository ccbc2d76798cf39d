"""The workloads. Each checks its results (counts and contents) as it runs.

Async workloads take ``connect(path)``; the TestClient variants take the sync client.
Each returns the measured figures, the first being the one the tables compare.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from typing import Any

from .scenarios import Connect

MIB = 2**20


class CheckFailed(AssertionError):
    """A workload's result was wrong (a count or a payload): the figure would be meaningless."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


async def w1(connect: Connect, n: int) -> dict[str, float]:
    """Connect (full handshake) + one 16-byte echo + clean close, sequential."""
    message = "0123456789abcdef"
    start = time.perf_counter()
    for _ in range(n):
        async with connect("/echo") as ws:
            await ws.send(message)
            check(await ws.recv() == message, "W1 echo")
    return {"conn/s": n / (time.perf_counter() - start)}


async def w2(connect: Connect, n: int, framed: bool = True) -> dict[str, float]:
    """n sequential 64-byte echo round trips on one connection."""
    message = b"x" * 64
    async with connect("/echo") as ws:
        start = time.perf_counter()
        for _ in range(n):
            await ws.send(message)
            reply = await ws.recv()
            while not framed and len(reply) < 64:
                reply += await ws.recv()
            check(reply == message, "W2 echo")
        elapsed = time.perf_counter() - start
    return {"rt/s": n / elapsed}


async def w3(connect: Connect, n: int, size: int = 64, binary: bool = False, framed: bool = True) -> dict[str, float]:
    """The server streams n messages of ``size``; the client reads them all."""
    expected: str | bytes = b"b" * size if binary or not framed else "t" * size
    async with connect(f"/stream?n={n}&size={size}&binary={int(binary)}") as ws:
        start = time.perf_counter()
        await ws.send(b"go")  # the server starts streaming only now
        if framed:
            for _ in range(n):
                check(await ws.recv() == expected, "W3 payload")
        else:
            total = 0
            while total < n * size:
                total += len(await ws.recv())
            check(total == n * size, "W3 byte count")
        elapsed = time.perf_counter() - start
    if binary:
        return {"MiB/s": n * size / MIB / elapsed}
    return {"msg/s": n / elapsed}


async def _hold_open(connect: Connect, connections: int, work: Any, at_peak: Any = None) -> tuple[float, Any]:
    """Open ``connections`` connections, each in its own task for its whole life.

    Once all are open, ``work(ws)`` runs on every one at once. Returns the seconds from
    the start of the work to its end on the last connection (closing excluded), and what
    ``at_peak()`` returned when all the work was done and every connection still open.
    """
    opened, finished = asyncio.Event(), asyncio.Event()
    go, leave = asyncio.Event(), asyncio.Event()
    counts = [0, 0]

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
        start = time.perf_counter()
        go.set()
        await finished.wait()
        elapsed = time.perf_counter() - start
        return elapsed, at_peak() if at_peak is not None else None
    finally:
        leave.set()
        await asyncio.gather(*tasks)


async def w4(connect: Connect, connections: int, round_trips: int) -> dict[str, float]:
    """``connections`` concurrent connections x ``round_trips`` echo round trips each."""
    message = b"y" * 64

    async def round_trips_on(ws: Any) -> None:
        for _ in range(round_trips):
            await ws.send(message)
            check(await ws.recv() == message, "W4 echo")

    elapsed, _ = await _hold_open(connect, connections, round_trips_on)
    return {"rt/s": connections * round_trips / elapsed}


async def heap_per_connection(connect: Connect, connections: int) -> dict[str, float]:
    """Python heap per open connection (tracemalloc), measured apart from the timings."""

    async def one_round_trip(ws: Any) -> None:  # so that every connection is fully set up
        await ws.send(b"z")
        check(await ws.recv() == b"z", "heap echo")

    def traced() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    gc.collect()
    tracemalloc.start()
    try:
        before = traced()
        _, during = await _hold_open(connect, connections, one_round_trip, traced)
    finally:
        tracemalloc.stop()
    return {"KiB/conn": (during - before) / connections / 1024}


async def w5(connect: Connect, n: int) -> dict[str, float]:
    """n sequential connect/close cycles: time, Python heap growth, tasks left over."""
    for _ in range(10):  # warm caches so growth measures leaks, not first use
        async with connect("/echo"):
            pass
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        for _ in range(n):
            async with connect("/echo"):
                pass
        elapsed = time.perf_counter() - start
        for _ in range(10):
            await asyncio.sleep(0)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # The ASGI lifespan task lives as long as the patch context, by design; anything else is left over.
    current = asyncio.current_task()
    tasks = len([t for t in asyncio.all_tasks() if t is not current and t.get_name() != "wsfake lifespan"])
    return {"s": elapsed, "heap growth MiB": growth / MIB, "tasks left": float(tasks)}


def w1_sync(client: Any, n: int) -> dict[str, float]:
    message = "0123456789abcdef"
    start = time.perf_counter()
    for _ in range(n):
        with client.websocket_connect("/echo") as ws:
            ws.send_text(message)
            check(ws.receive_text() == message, "W1 echo")
    return {"conn/s": n / (time.perf_counter() - start)}


def w2_sync(client: Any, n: int) -> dict[str, float]:
    message = b"x" * 64
    with client.websocket_connect("/echo") as ws:
        start = time.perf_counter()
        for _ in range(n):
            ws.send_bytes(message)
            check(ws.receive_bytes() == message, "W2 echo")
        elapsed = time.perf_counter() - start
    return {"rt/s": n / elapsed}


def w3_sync(client: Any, n: int) -> dict[str, float]:
    expected = "t" * 64
    with client.websocket_connect(f"/stream?n={n}&size=64") as ws:
        start = time.perf_counter()
        ws.send_bytes(b"go")
        for _ in range(n):
            check(ws.receive_text() == expected, "W3 payload")
        elapsed = time.perf_counter() - start
    return {"msg/s": n / elapsed}
