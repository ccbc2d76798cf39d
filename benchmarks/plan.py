"""What one round runs: the setups, the sizes of their workloads, and how they are compared.

A setup is one server with one client library and its workloads; a row of the
report compares one workload of a wsfake setup with the same workload of its
real (or in-memory) alternative, measured in the same rounds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial

from . import clients, servers
from . import workloads as w
from .apps import asgi_app
from .clients import AsyncConnect, AsyncDriver
from .runners import AsyncSteps, Results, Run, SyncSteps, on_asyncio, on_asyncio_alone, on_threads, on_trio


@dataclass(frozen=True)
class Sizes:
    """Workload sizes (operations per sample)."""

    w0_wsfake: int
    w0_real: int
    w1: int
    w2: int
    w3: int
    w4: tuple[int, int]
    heap: int
    w1_other: int
    w2_other: int

    def describe(self) -> str:
        c, r = self.w4
        return (
            f"W0 {self.w0_wsfake} cycles (wsfake) / {self.w0_real} (uvicorn); W1 {self.w1} connections; "
            f"W2 {self.w2} round trips; W3 {self.w3} messages; W4 {c} connections x {r} round trips; "
            f"heap {self.heap} open connections; other clients W1 {self.w1_other}, W2 {self.w2_other}"
        )


FULL = Sizes(w0_wsfake=200, w0_real=10, w1=300, w2=3000, w3=20000, w4=(200, 20), heap=200, w1_other=200, w2_other=2000)
QUICK = Sizes(w0_wsfake=50, w0_real=4, w1=100, w2=1000, w3=5000, w4=(200, 20), heap=100, w1_other=60, w2_other=600)
CHECK = Sizes(w0_wsfake=2, w0_real=1, w1=3, w2=5, w3=10, w4=(5, 2), heap=5, w1_other=2, w2_other=3)


@dataclass(frozen=True)
class Setup:
    key: str
    run: Run


@dataclass(frozen=True)
class Row:
    """One line of a report table: workload ``workload`` of setup ``wsfake`` against setup ``other``."""

    section: str
    label: str
    workload: str
    wsfake: str
    other: str


@dataclass(frozen=True)
class Target:
    section: str
    label: str
    workload: str
    goal: float
    lower_is_better: bool = False

    def met(self, ratio: float) -> bool:
        return ratio <= self.goal if self.lower_is_better else ratio >= self.goal

    def describe(self) -> str:
        return f"{'<=' if self.lower_is_better else '>='} {self.goal:g}x"


S1 = "websockets asyncio client, ASGI echo app: wsfake vs uvicorn (websockets-sansio) on 127.0.0.1"
S2 = "Handler target: wsfake Handler vs websockets.asyncio.server.serve on 127.0.0.1"
S3 = "Every other client: wsfake ASGI vs uvicorn on 127.0.0.1, same client code"
S4 = "In-memory alternatives (informational): wsfake with the nearest client vs the alternative"
SECTIONS = (S1, S2, S3, S4)

WORKLOAD_NAMES = {
    "W0": "W0 per-test cycle (start, connect, echo, close, stop)",
    "W1": "W1 connect + 16-byte echo + close",
    "W2": "W2 64-byte echo round trips",
    "W3": "W3 server streams 64-byte messages",
    "W4": "W4 200 concurrent connections x 20 round trips",
    "heap": "heap per open connection (lower is better)",
}


def _echo_steps(w1: int, w2: int) -> AsyncSteps:
    return {"W1": partial(w.w1, n=w1), "W2": partial(w.w2, n=w2)}


def _sync_steps(sizes: Sizes) -> SyncSteps:
    return {"W1": partial(w.w1_sync, n=sizes.w1_other), "W2": partial(w.w2_sync, n=sizes.w2_other)}


async def _w1_after_extensions_check(connect: AsyncConnect, n: int, expected: list[str]) -> w.Sample:
    """W1, after checking the extensions one connection negotiated (permessage-deflate or none)."""
    async with connect("/echo") as ws:
        found = clients.negotiated_extensions(ws)
    w.check(found == expected, f"negotiated extensions {found}, expected {expected}")
    return await w.w1(connect, n)


def _websockets_steps(sizes: Sizes, compression: str | None) -> AsyncSteps:
    connections, round_trips = sizes.w4
    return {
        "W1": partial(_w1_after_extensions_check, n=sizes.w1, expected=["permessage-deflate"] if compression else []),
        "W2": partial(w.w2, n=sizes.w2),
        "W3": partial(w.w3, n=sizes.w3),
        "W4": partial(w.w4, connections=connections, round_trips=round_trips),
        "heap": partial(w.heap_per_connection, connections=sizes.heap),
    }


def _w0(server: Callable[[], AbstractAsyncContextManager[str]], n: int) -> Run:
    driver = clients.websockets_asyncio(None)

    async def cycles() -> Results:
        return {"W0": await w.w0(server, driver, n)}

    return on_asyncio_alone(cycles)


def _threaded_uvicorn() -> AbstractAsyncContextManager[str]:
    return servers.entered_async(servers.uvicorn_in_thread())


@asynccontextmanager
async def _no_server(base: str) -> AsyncIterator[str]:
    yield base


@contextmanager
def _no_server_sync() -> Iterator[str]:
    yield ""


def _pair(driver: AsyncDriver, sizes: Sizes, key: str) -> list[Setup]:
    """wsfake and uvicorn for one async client library (W1, W2)."""
    steps = _echo_steps(sizes.w1_other, sizes.w2_other)
    if driver.backend == "trio":
        return [
            Setup(f"{key}/wsfake", on_trio(servers.wsfake_asgi, driver, steps)),
            Setup(f"{key}/uvicorn", on_trio(_threaded_uvicorn, driver, steps)),
        ]
    return [
        Setup(f"{key}/wsfake", on_asyncio(servers.wsfake_asgi, driver, steps)),
        Setup(f"{key}/uvicorn", on_asyncio(servers.uvicorn_in_loop, driver, steps)),
    ]


def setups(sizes: Sizes) -> list[Setup]:
    """Every setup of a round, each next to the one it is compared with."""
    found: list[Setup] = []
    for compression, name in ((None, "none"), ("deflate", "deflate")):
        driver = clients.websockets_asyncio(compression)
        steps = _websockets_steps(sizes, compression)
        found += [
            Setup(f"ws-{name}/wsfake", on_asyncio(servers.wsfake_asgi, driver, steps)),
            Setup(f"ws-{name}/uvicorn", on_asyncio(servers.uvicorn_in_loop, driver, steps)),
        ]
    found += [
        Setup("w0/wsfake", _w0(servers.wsfake_asgi, sizes.w0_wsfake)),
        Setup("w0/uvicorn", _w0(servers.uvicorn_in_loop, sizes.w0_real)),
    ]
    handler_driver = clients.websockets_asyncio(None)
    found += [
        Setup("handler/wsfake", on_asyncio(servers.wsfake_handler, handler_driver, _echo_steps(sizes.w1, sizes.w2))),
        Setup(
            "handler/websockets",
            on_asyncio(servers.websockets_in_loop, handler_driver, _echo_steps(sizes.w1, sizes.w2)),
        ),
    ]
    for key, make_driver in OTHER_ASYNC.items():
        found += _pair(make_driver(), sizes, key)
    for key, sync_driver in OTHER_SYNC.items():
        found += [
            Setup(f"{key}/wsfake", on_threads(servers.wsfake_asgi_sync, sync_driver(), _sync_steps(sizes))),
            Setup(f"{key}/uvicorn", on_threads(servers.uvicorn_in_thread, sync_driver(), _sync_steps(sizes))),
        ]
    found += [
        Setup(
            "testclient",
            on_threads(_no_server_sync, clients.starlette_testclient(asgi_app), _sync_steps(sizes)),
        ),
        Setup(
            "httpx-ws-transport",
            on_asyncio(
                partial(_no_server, "ws://test"),
                clients.httpx_ws_asgi_transport(asgi_app),
                _echo_steps(sizes.w1_other, sizes.w2_other),
            ),
        ),
    ]
    return found


OTHER_ASYNC: dict[str, Callable[[], AsyncDriver]] = {
    "legacy": clients.websockets_legacy,
    "trio": clients.websockets_trio,
    "aiohttp": clients.aiohttp_driver,
    "httpx-ws": clients.httpx_ws,
    "trio-websocket": clients.trio_websocket,
}
OTHER_SYNC: dict[str, Callable[[], clients.SyncDriver]] = {
    "sync": clients.websockets_sync,
    "websocket-client": clients.websocket_client,
}
OTHER_LABELS = {
    "legacy": "websockets legacy (asyncio)",
    "sync": "websockets sync (thread)",
    "trio": "websockets trio",
    "aiohttp": "aiohttp",
    "websocket-client": "websocket-client (thread)",
    "httpx-ws": "httpx-ws (asyncio)",
    "trio-websocket": "trio-websocket",
}
OTHER_ORDER = ("legacy", "sync", "trio", "aiohttp", "websocket-client", "httpx-ws", "trio-websocket")


def rows() -> list[Row]:
    """The report's rows, section by section."""
    found: list[Row] = [Row(S1, "websockets asyncio", "W0", "w0/wsfake", "w0/uvicorn")]
    for name, label in (("none", "compression=None"), ("deflate", "permessage-deflate")):
        for workload in ("W1", "W2", "W3", "W4", "heap"):
            found.append(Row(S1, label, workload, f"ws-{name}/wsfake", f"ws-{name}/uvicorn"))
    for workload in ("W1", "W2"):
        found.append(Row(S2, "websockets asyncio", workload, "handler/wsfake", "handler/websockets"))
    for key in OTHER_ORDER:
        for workload in ("W1", "W2"):
            found.append(Row(S3, OTHER_LABELS[key], workload, f"{key}/wsfake", f"{key}/uvicorn"))
    for workload in ("W1", "W2"):
        found.append(Row(S4, "Starlette TestClient vs wsfake + websockets sync", workload, "sync/wsfake", "testclient"))
    for workload in ("W1", "W2"):
        found.append(
            Row(
                S4,
                "httpx-ws ASGIWebSocketTransport vs wsfake + httpx-ws",
                workload,
                "httpx-ws/wsfake",
                "httpx-ws-transport",
            )
        )
    return found


def targets() -> list[Target]:
    """The goals of the performance issue, as ratios of the rows above."""
    found = [Target(S1, "websockets asyncio", "W0", 100.0)]
    goals = {
        "compression=None": {"W1": 3.0, "W2": 2.5, "W3": 1.5, "W4": 2.0},
        "permessage-deflate": {"W1": 2.5, "W2": 1.5, "W3": 1.0, "W4": 1.5},
    }
    for label, per_workload in goals.items():
        found += [Target(S1, label, workload, goal) for workload, goal in per_workload.items()]
        found.append(Target(S1, label, "heap", 1.0, lower_is_better=True))
    found += [Target(S2, "websockets asyncio", "W1", 3.0), Target(S2, "websockets asyncio", "W2", 2.0)]
    for key in OTHER_ORDER:
        found += [Target(S3, OTHER_LABELS[key], "W1", 2.0), Target(S3, OTHER_LABELS[key], "W2", 1.5)]
    return found
