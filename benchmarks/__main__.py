"""First figures for wsfake, with the alternative measured in the same run.

Scenarios: (a) websockets client -> wsfake -> ASGI echo app; (c) the same client and app
through uvicorn (websockets-sansio) over 127.0.0.1, if uvicorn is installed.
W1: connect (full handshake) + one 16-byte echo + clean close, sequential -> connections/s.
W2: 2,000 sequential 64-byte echo round trips on one connection -> round trips/s.
Each figure is the median of 7 timed repetitions after a warm-up, with min-max shown;
the two scenarios' repetitions alternate.
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


async def compare(workload: Workload, n: int, repeat: int, with_uvicorn: bool) -> tuple[list[float], list[float]]:
    """Alternate (a) and (c) repetition by repetition, so machine drift hits both alike.

    uvicorn is reached through ``pass_through``, the in-memory app through a route,
    both inside one ``patch_client`` context and one event loop.
    """
    fake: list[float] = []
    real: list[float] = []
    server = None
    task = None
    if with_uvicorn:
        import uvicorn

        config = uvicorn.Config(asgi_echo, host="127.0.0.1", port=0, ws="websockets-sansio", log_level="critical")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        real_url = f"ws://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/echo"
    try:
        async with wsfake.patch_client() as net:
            net.route("ws://localhost:8000/*", wsfake.ASGI(asgi_echo, lifespan=False))
            net.pass_through("ws://127.0.0.1:*/*")
            fake_url = "ws://localhost:8000/echo"
            await workload(max(1, n // 10), fake_url)
            if server is not None:
                await workload(max(1, n // 10), real_url)
            for _ in range(repeat):
                fake.append(await workload(n, fake_url))
                if server is not None:
                    real.append(await workload(n, real_url))
    finally:
        if server is not None and task is not None:
            server.should_exit = True
            await task
    return fake, real


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
        fake, real = asyncio.run(compare(workload, n, repeat, uvicorn is not None))
        cells = [name, _cell(fake, unit)]
        if real:
            cells += [_cell(real, unit), f"{statistics.median(fake) / statistics.median(real):.2f}x"]
        else:
            cells += ["-", "-"]
        print("| " + " | ".join(cells) + " |")
    return 0


def _cell(samples: list[float], unit: str) -> str:
    return f"{statistics.median(samples):,.0f} {unit} ({min(samples):,.0f}-{max(samples):,.0f})"


if __name__ == "__main__":
    raise SystemExit(main())
