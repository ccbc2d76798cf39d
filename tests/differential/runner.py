"""Differential runner: one scenario, run against real servers on 127.0.0.1 and against wsfake.

A scenario is a driver ``async def drive(url, trace)`` plus the server it talks to (a
handler or an ASGI app). The runner executes the driver against:

* handlers: ``websockets.asyncio.server.serve`` on 127.0.0.1:0;
* ASGI apps: uvicorn in-process on 127.0.0.1:0 with each of its WebSocket
  implementations (``websockets-sansio``, ``wsproto`` and ``websockets``);
* wsfake: the same target under ``wsfake.patch_client``.

Each run yields a trace: what the client observed (messages with their type, exceptions
as qualified class names with their close frames / status / body / headers, the
negotiated subprotocol and extensions, close code and reason, in order) and, separately,
what the server code observed. wsfake's trace must equal the real servers' majority
trace. The only normalisations are listed in ``NORMALISATIONS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import websockets
from websockets.asyncio.server import serve

import wsfake

#: Every difference the runner removes before comparing, and why it is legitimate.
NORMALISATIONS = {
    "ports": "real servers listen on an ephemeral port, wsfake on the URL's; traces never contain ports",
    "Date and Server headers": "the time of day and the server's product name differ by nature",
    "Sec-WebSocket-Accept": "derived from the client's random key, so it differs on every connection",
    "latency figures": "timings differ; traces keep only whether a latency was measured",
    "ASGI ClientDisconnected class": "the ASGI spec asks for a server-specific OSError subclass",
}

UVICORN_IMPLS = ("websockets-sansio", "wsproto", "websockets")
DEFAULT_UVICORN_IMPL = "websockets-sansio"
HEADERS_COMPARED = (
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-type",
    "content-length",
    "connection",
)
RESULTS_FILE = Path(os.environ.get("WSFAKE_DIFFERENTIAL_RESULTS", "build/differential-results.json"))


class Trace:
    """What one run observed, in order."""

    def __init__(self) -> None:
        self.client: list[Any] = []

    def add(self, *event: Any) -> None:
        self.client.append(list(event))

    def received(self, message: str | bytes) -> None:
        self.add("recv", type(message).__name__, message if isinstance(message, str) else message.hex())

    def opened(self, ws: Any) -> None:
        response = ws.response
        self.add("open", response.status_code, ws.subprotocol, _headers(response.headers))

    def closed(self, ws: Any) -> None:
        self.add("closed", ws.protocol.close_code, ws.protocol.close_reason)

    def raised(self, exc: BaseException) -> None:
        self.add("raised", *describe(exc))


class ServerLog:
    """What the server code (handler or app) observed; the same code runs for real and fake."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def note(self, *event: Any) -> None:
        self.events.append(list(event))


SERVER = ServerLog()


def describe(exc: BaseException) -> list[Any]:
    """An exception as its qualified class name and the attributes a user can observe."""
    cls = type(exc)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(exc, wsfake.ClientDisconnected) or cls.__name__ == "ClientDisconnected":
        return ["<ASGI ClientDisconnected: OSError subclass>"]
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        frames = [None if f is None else [f.code, f.reason] for f in (exc.rcvd, exc.sent)]
        return [name, *frames, exc.rcvd_then_sent]
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        response = exc.response
        return [name, response.status_code, bytes(response.body or b"").decode("latin-1"), _headers(response.headers)]
    if isinstance(exc, OSError):
        return [name, exc.errno]
    return [name, str(exc)]


def _headers(headers: Any) -> dict[str, list[str]]:
    picked: dict[str, list[str]] = {}
    for key, value in headers.raw_items():
        lowered = key.lower()
        if lowered in HEADERS_COMPARED or lowered.startswith("x-"):
            picked.setdefault(lowered, []).append(value)
    return picked


Driver = Callable[[str, Trace], Awaitable[None]]


@dataclass
class Scenario:
    """One behaviour to compare: a client driver and the server it talks to."""

    name: str
    description: str
    drive: Driver
    handler: Any = None
    app: Any = None
    path: str = "/ws"
    options: dict[str, Any] = field(default_factory=dict)
    timeout: float = 15.0

    @property
    def kind(self) -> str:
        return "handler" if self.handler is not None else "asgi"


SCENARIOS: list[Scenario] = []


def scenario(
    description: str, *, handler: Any = None, app: Any = None, path: str = "/ws", **options: Any
) -> Callable[[Driver], Driver]:
    """Register the decorated driver as a scenario against ``handler`` or ``app``."""

    def register(drive: Driver) -> Driver:
        SCENARIOS.append(Scenario(drive.__name__, description, drive, handler, app, path, options))
        return drive

    return register


async def _drive(s: Scenario, url: str, server: str) -> Trace:
    SERVER.events.clear()
    trace = Trace()

    async def drive() -> None:
        try:
            await s.drive(url, trace)
        except Exception as exc:  # the client's own exceptions are part of the outcome
            trace.raised(exc)

    try:
        await asyncio.wait_for(drive(), s.timeout)
    except asyncio.TimeoutError:
        # A hang is never an outcome to compare: it would make two hung runs look equal.
        raise AssertionError(f"scenario {s.name!r} hung for {s.timeout}s against {server}") from None
    return trace


def _outcome(trace: Trace) -> dict[str, Any]:
    """The run's trace; called once the server has shut down, so its log is complete."""
    return {"client": trace.client, "server": list(SERVER.events)}


async def run_handler_real(s: Scenario) -> dict[str, Any]:
    async with serve(s.handler, "127.0.0.1", 0, **s.options) as server:
        port = server.sockets[0].getsockname()[1]
        trace = await _drive(s, f"ws://127.0.0.1:{port}{s.path}", "websockets.serve")
    return _outcome(trace)


async def run_asgi_real(s: Scenario, impl: str) -> dict[str, Any]:
    if impl != "websockets":
        return await _run_uvicorn(s, impl)
    # uvicorn's legacy implementation warns about its own deprecation while it serves;
    # under the suite's warnings-as-errors that would break the real server being compared.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return await _run_uvicorn(s, impl)


async def _run_uvicorn(s: Scenario, impl: str) -> dict[str, Any]:
    config = uvicorn.Config(s.app, host="127.0.0.1", port=0, ws=impl, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        trace = await _drive(s, f"ws://127.0.0.1:{port}{s.path}", f"uvicorn ws={impl}")
    finally:
        server.should_exit = True
        await task
    return _outcome(trace)


async def run_fake(s: Scenario) -> dict[str, Any]:
    target = wsfake.Handler(s.handler, **s.options) if s.handler is not None else wsfake.ASGI(s.app, lifespan=False)
    with warnings.catch_warnings():
        # A real server logs an exception that mirrors the client's departure; wsfake warns about it.
        warnings.simplefilter("ignore", wsfake.ClientDepartureWarning)
        async with wsfake.patch_client({"ws://127.0.0.1:8000/*": target}, raise_server_errors=False):
            trace = await _drive(s, f"ws://127.0.0.1:8000{s.path}", "wsfake")
    return _outcome(trace)


@dataclass
class Outcome:
    scenario: Scenario
    real: dict[str, dict[str, Any]]
    fake: dict[str, Any]

    @property
    def reference(self) -> dict[str, Any]:
        """The trace most real servers produced; uvicorn's default implementation breaks a tie."""
        counts = Counter(json.dumps(trace, sort_keys=True) for trace in self.real.values())
        trace, count = counts.most_common(1)[0]
        if count == 1 and len(self.real) > 1:
            return self.real[f"uvicorn ws={DEFAULT_UVICORN_IMPL}"]
        return dict(json.loads(trace))

    @property
    def has_majority(self) -> bool:
        return (
            len(self.real) == 1
            or Counter(json.dumps(t, sort_keys=True) for t in self.real.values()).most_common(1)[0][1] > 1
        )

    @property
    def disagreements(self) -> dict[str, str]:
        """For each real server that differs from the reference: where it first differs."""
        reference = self.reference
        return {name: first_difference(reference, trace) for name, trace in self.real.items() if trace != reference}

    @property
    def passed(self) -> bool:
        return self.fake == self.reference


def first_difference(expected: dict[str, Any], actual: dict[str, Any]) -> str:
    """A one-line description of where two traces first differ."""
    for side in ("client", "server"):
        a, b = expected[side], actual[side]
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                got, wanted = (json.dumps(event, default=str)[:160] for event in (y, x))
                return f"{side} event {index}: {got} instead of {wanted}"
        if len(a) != len(b):
            return f"{side} events: {len(b)} instead of {len(a)}"
    return "identical"


async def run(s: Scenario) -> Outcome:
    real: dict[str, dict[str, Any]] = {}
    if s.kind == "handler":
        real["websockets.serve"] = await run_handler_real(s)
    else:
        for impl in UVICORN_IMPLS:
            real[f"uvicorn ws={impl}"] = await run_asgi_real(s, impl)
    fake = await run_fake(s)
    outcome = Outcome(s, real, fake)
    _record(outcome)
    return outcome


def _record(outcome: Outcome) -> None:
    s = outcome.scenario
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else {}
    results[s.name] = {
        "description": s.description,
        "kind": s.kind,
        "client": f"websockets {websockets.__version__} (asyncio)",
        "real_servers": sorted(outcome.real),
        "passed": outcome.passed,
        "majority": outcome.has_majority,
        "disagreements": outcome.disagreements,
        "versions": {"websockets": websockets.__version__, "uvicorn": uvicorn.__version__},
    }
    RESULTS_FILE.write_text(json.dumps(results, indent=1, sort_keys=True))
