"""First figures for wsfake: websockets client -> wsfake -> ASGI echo app.

W1: connect (full handshake) + one 16-byte echo + clean close, sequential -> connections/s.
W2: 2,000 sequential 64-byte echo round trips on one connection -> round trips/s.
Each figure is the median of 7 timed repetitions after a warm-up, with min-max shown.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import websockets

import wsfake


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": event.get("text"), "bytes": event.get("bytes")})


URL = "ws://localhost:8000/echo"


async def w1(n: int) -> float:
    message = "x" * 16
    start = time.perf_counter()
    for _ in range(n):
        async with websockets.connect(URL) as ws:
            await ws.send(message)
            assert await ws.recv() == message
    return n / (time.perf_counter() - start)


async def w2(n: int) -> float:
    message = b"y" * 64
    async with websockets.connect(URL) as ws:
        start = time.perf_counter()
        for _ in range(n):
            await ws.send(message)
            assert await ws.recv() == message
        return n / (time.perf_counter() - start)


async def measure(workload: Callable[[int], Awaitable[float]], n: int, repeat: int) -> list[float]:
    async with wsfake.patch_client(wsfake.ASGI(asgi_echo, lifespan=False)):
        await workload(max(1, n // 10))
        return [await workload(n) for _ in range(repeat)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    rows = [
        ("W1 connect+echo+close", "conn/s", w1, 50 if args.quick else 500),
        ("W2 64-byte echo round trips", "rt/s", w2, 200 if args.quick else 2000),
    ]
    print(
        f"# wsfake {wsfake.__version__}, websockets {websockets.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()}, {sys.platform}"
    )
    print("| workload | median | min-max |")
    print("|---|---|---|")
    for name, unit, workload, n in rows:
        samples = asyncio.run(measure(workload, n, repeat))
        print(f"| {name} | {statistics.median(samples):,.0f} {unit} | {min(samples):,.0f}-{max(samples):,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
