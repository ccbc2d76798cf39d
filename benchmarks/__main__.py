"""First figures for wsfake, with the alternative measured in the same run.

Scenarios: (a) websockets client -> wsfake -> ASGI echo app; (c) the same client and app
through uvicorn (websockets-sansio) over 127.0.0.1, if uvicorn is installed.
W1: connect (full handshake) + one 16-byte echo + clean close, sequential -> connections/s.
W2: 2,000 sequential 64-byte echo round trips on one connection -> round trips/s.
Each figure is the median of 7 timed repetitions after a warm-up, with min-max shown.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


async def w1(n: int, url: str) -> float:
    message = "x" * 16
    start = time.perf_counter()
    for _ in range(n):
        async with websockets.connect(url) as ws:
            await ws.send(message)
            assert await ws.recv() == message
    return n / (time.perf_counter() - start)


async def w2(n: int, url: str) -> float:
    message = b"y" * 64
    async with websockets.connect(url) as ws:
        start = time.perf_counter()
        for _ in range(n):
            await ws.send(message)
            assert await ws.recv() == message
        return n / (time.perf_counter() - start)


Workload = Callable[[int, str], Awaitable[float]]


async def run(workload: Workload, n: int, repeat: int, url: str) -> list[float]:
    await workload(max(1, n // 10), url)
    return [await workload(n, url) for _ in range(repeat)]


async def in_memory(workload: Workload, n: int, repeat: int) -> list[float]:
    async with wsfake.patch_client(wsfake.ASGI(asgi_echo, lifespan=False)):
        return await run(workload, n, repeat, "ws://localhost:8000/echo")


async def over_uvicorn(workload: Workload, n: int, repeat: int) -> list[float]:
    import uvicorn

    config = uvicorn.Config(asgi_echo, host="127.0.0.1", port=0, ws="websockets-sansio", log_level="critical")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        return await run(workload, n, repeat, f"ws://127.0.0.1:{port}/echo")
    finally:
        server.should_exit = True
        await task


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    rows = [
        ("W1 connect+echo+close", "conn/s", w1, 50 if args.quick else 500),
        ("W2 64-byte echo round trips", "rt/s", w2, 200 if args.quick else 2000),
    ]
    try:
        import uvicorn
    except ImportError:
        uvicorn = None
    print(
        f"wsfake {wsfake.__version__}, websockets {websockets.__version__}, "
        f"uvicorn {getattr(uvicorn, '__version__', 'not installed')}, "
        f"Python {platform.python_version()}, {platform.machine()}, {sys.platform}, {os.cpu_count()} CPUs"
    )
    print()
    print("| workload | (a) wsfake, median (min-max) | (c) uvicorn over 127.0.0.1 | (a)/(c) |")
    print("|---|---|---|---|")
    for name, unit, workload, n in rows:
        fake = asyncio.run(in_memory(workload, n, repeat))
        cells = [name, _cell(fake, unit)]
        if uvicorn is not None:
            real = asyncio.run(over_uvicorn(workload, n, repeat))
            cells += [_cell(real, unit), f"{statistics.median(fake) / statistics.median(real):.2f}x"]
        else:
            cells += ["-", "-"]
        print("| " + " | ".join(cells) + " |")
    return 0


def _cell(samples: list[float], unit: str) -> str:
    return f"{statistics.median(samples):,.0f} {unit} ({min(samples):,.0f}-{max(samples):,.0f})"


if __name__ == "__main__":
    raise SystemExit(main())
