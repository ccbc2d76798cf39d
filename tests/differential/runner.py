"""Differential runner: one client's driver for one scenario, against real servers and against wsfake.

A client library contributes a :class:`Client`: its name, how its code runs
(``asyncio``, ``trio`` or ``thread``), how it describes its exceptions, and one
driver per scenario its API can express (``drive(url, trace)``). The runner
executes the driver against each real server for the scenario (see ``real.py``)
and against wsfake, for the same client. Each run yields a trace: what the
client observed (messages with their type, exceptions as qualified class names
with the attributes the client library offers, status, body and headers,
subprotocol, close code and reason, in order) and, separately, what the server
code observed. wsfake's trace must equal the real servers' majority trace.
The only normalisations are listed in ``NORMALISATIONS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from real import DEFAULT_UVICORN_IMPL, RealServers, real_server_names
from scenarios import Scenario, asgi_options
from serverlog import SERVER

import wsfake

#: Every difference the runner removes before comparing, and why it is legitimate.
NORMALISATIONS = {
    "ports": "real servers listen on an ephemeral port, wsfake on the URL's; traces never contain ports",
    "Date header": "the time of day differs between any two runs",
    "Sec-WebSocket-Accept": "derived from the client's random key, so it differs on every connection",
    "latency figures": "timings differ; traces keep only whether a latency was measured",
    "ASGI ClientDisconnected class": "the ASGI spec asks for a server-specific OSError subclass",
}

#: Response headers a trace keeps (with any ``x-`` header); Date and Sec-WebSocket-Accept are left out.
HEADERS_COMPARED = (
    "server",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-type",
    "content-length",
    "connection",
    "upgrade",
)
FAKE_ORIGIN = "ws://127.0.0.1:8000"
RESULTS_FILE = Path(os.environ.get("WSFAKE_DIFFERENTIAL_RESULTS", "build/differential-results.json"))
#: How long a run waits for the server code to finish after the client is done.
SERVER_GRACE = 10.0


def results_file() -> Path:
    """This process's results file (one per pytest-xdist worker; report.py merges them)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return RESULTS_FILE.with_suffix(f".{worker}.json") if worker else RESULTS_FILE


class Trace:
    """What one run observed, in order."""

    def __init__(self) -> None:
        self.client: list[Any] = []

    def add(self, *event: Any) -> None:
        self.client.append(list(event))

    def received(self, message: str | bytes) -> None:
        self.add("recv", type(message).__name__, message if isinstance(message, str) else message.hex())


def picked_headers(items: Any) -> dict[str, list[str]]:
    """The compared headers of a response, from ``(name, value)`` pairs."""
    picked: dict[str, list[str]] = {}
    for key, value in items:
        lowered = key.lower()
        if lowered in HEADERS_COMPARED or lowered.startswith("x-"):
            picked.setdefault(lowered, []).append(value)
    return picked


def qualified(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass
class Client:
    """A client library's side of the differential suite."""

    name: str
    kind: str  # "asyncio", "trio" or "thread"
    version: str
    drivers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    #: An exception the driver let out, as a trace event (class name and attributes).
    describe: Callable[[BaseException], list[Any]] = lambda exc: [qualified(exc), str(exc)]

    def driver(self, *names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated function as this client's driver for the named scenarios."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            for name in names or (fn.__name__,):
                assert name not in self.drivers, name
                self.drivers[name] = fn
            return fn

        return register


class Hung(AssertionError):
    pass


def _run_driver(client: Client, drive: Callable[..., Any], url: str, trace: Trace, timeout: float, fake: Any) -> None:
    """Run ``drive(url, trace)`` the way the client's code runs, inside ``fake`` (a patch target) if given."""

    def record(exc: BaseException) -> None:
        trace.add("raised", *client.describe(exc))

    if client.kind == "asyncio":

        async def main() -> None:
            async def body() -> None:
                try:
                    await drive(url, trace)
                except Exception as exc:  # the client's own exceptions are part of the outcome
                    record(exc)

            if fake is None:
                await _bounded_asyncio(body(), timeout, url)
                return
            async with _patch(fake):
                await _bounded_asyncio(body(), timeout, url)
                await SERVER.wait_idle_async(SERVER_GRACE)

        asyncio.run(main())
    elif client.kind == "trio":
        import trio

        async def trio_main() -> None:
            async def body() -> None:
                try:
                    with trio.fail_after(timeout):
                        await drive(url, trace)
                except trio.TooSlowError:
                    raise Hung(f"hung for {timeout}s against {url}") from None
                except Exception as exc:
                    record(exc)

            if fake is None:
                await body()
                return
            async with _patch(fake):
                await body()
                await SERVER.wait_idle_async(SERVER_GRACE)

        trio.run(trio_main)
    else:

        def body() -> None:
            try:
                drive(url, trace)
            except Exception as exc:
                record(exc)

        if fake is None:
            _bounded_thread(body, timeout, url)
            return
        with _patch(fake):
            _bounded_thread(body, timeout, url)
            SERVER.wait_idle(SERVER_GRACE)


async def _bounded_asyncio(coroutine: Any, timeout: float, url: str) -> None:
    try:
        await asyncio.wait_for(coroutine, timeout)
    except asyncio.TimeoutError:
        raise Hung(f"hung for {timeout}s against {url}") from None


def _bounded_thread(body: Callable[[], None], timeout: float, url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            body()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="differential sync driver")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise Hung(f"hung for {timeout}s against {url}")
    if errors:
        raise errors[0]


class _patch:
    """patch_client for the fake run: server errors recorded, departure warnings ignored (a real server logs them)."""

    def __init__(self, target: Any) -> None:
        self._context = wsfake.patch_client({f"{FAKE_ORIGIN}/*": target}, raise_server_errors=False)
        self._warnings = warnings.catch_warnings()

    def _enter(self) -> None:
        self._warnings.__enter__()
        warnings.simplefilter("ignore", wsfake.ClientDepartureWarning)

    def __enter__(self) -> Any:
        self._enter()
        return self._context.__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._context.__exit__(*exc_info)
        finally:
            self._warnings.__exit__(*exc_info)

    async def __aenter__(self) -> Any:
        self._enter()
        return await self._context.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self._context.__aexit__(*exc_info)
        finally:
            self._warnings.__exit__(*exc_info)


def _fake_target(scenario: Scenario) -> Any:
    from servers import app, handler

    if scenario.kind == "handler":
        return wsfake.Handler(handler, **scenario.options)
    return wsfake.ASGI(app, lifespan=False, **asgi_options(scenario.options))


def _run(client: Client, scenario: Scenario, url: str, fake: Any) -> dict[str, Any]:
    SERVER.reset()
    trace = Trace()
    _run_driver(client, client.drivers[scenario.name], url, trace, scenario.timeout, fake)
    if fake is None and not SERVER.wait_idle(SERVER_GRACE):
        raise Hung(f"the server code of {scenario.name!r} was still running {SERVER_GRACE}s after the client")
    return {"client": trace.client, "server": list(SERVER.events)}


@dataclass
class Outcome:
    client: Client
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
        counts = Counter(json.dumps(t, sort_keys=True) for t in self.real.values())
        return len(self.real) == 1 or counts.most_common(1)[0][1] > 1

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


def run(servers: RealServers, client: Client, scenario: Scenario) -> Outcome:
    real = {}
    for name in real_server_names(scenario):
        port = servers.port(name, scenario)
        real[name] = _run(client, scenario, f"ws://127.0.0.1:{port}{scenario.path}", None)
    fake = _run(client, scenario, f"{FAKE_ORIGIN}{scenario.path}", _fake_target(scenario))
    outcome = Outcome(client, scenario, real, fake)
    _record(outcome)
    return outcome


def _record(outcome: Outcome) -> None:
    import uvicorn
    import websockets

    s = outcome.scenario
    path = results_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    results.setdefault(s.name, {"description": s.description, "kind": s.kind, "clients": {}})
    results[s.name]["clients"][outcome.client.name] = {
        "version": outcome.client.version,
        "real_servers": sorted(outcome.real),
        "passed": outcome.passed,
        "majority": outcome.has_majority,
        "disagreements": outcome.disagreements,
        "servers": {"websockets": websockets.__version__, "uvicorn": uvicorn.__version__},
    }
    path.write_text(json.dumps(results, indent=1, sort_keys=True))
