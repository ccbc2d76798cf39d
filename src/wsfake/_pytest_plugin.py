"""pytest integration, registered through the ``pytest11`` entry point.

* ``wsfake`` fixture: an active, patched :class:`~wsfake.Network` for one test,
  configured by ``@pytest.mark.wsfake(...)``; server-side exceptions fail the test
  with the server's traceback, optionally unused routes too.
* A "wsfake connections" report section (the transcript of every connection) on
  failed tests.
* The fallback chain: ``wsfake_routes`` in the ini file and ``--wsfake=off|auto|on``
  (ini ``wsfake_mode``, env ``WSFAKE``). ``on`` serves the configured patterns in
  memory for every test; ``auto`` does so only where nothing listens on the
  pattern's host and port. The terminal summary always says what happened.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ._network import Network
from ._patch import patch_client
from ._url import DEFAULT_PORTS

MODES = ("off", "auto", "on")
#: Seconds without progress before a test waiting on a wsfake connection fails; generous for slow CI machines.
DEFAULT_DEADLINE = 60.0
_ROUTE_LINE = re.compile(r"^(?P<pattern>\S+)\s*=\s*(?P<target>[\w.]+:[\w.]+)$")
_ORIGIN = re.compile(r"^(?P<scheme>wss?)://(?P<host>\[[^\]]+\]|[^/:*?#]+)(?::(?P<port>\d+))?(?:[/?].*)?$")
PROBE_TIMEOUT = 0.5


@dataclass
class ConfiguredRoute:
    """One ``wsfake_routes`` line and what this session decided for it."""

    pattern: str
    spec: str
    host: str
    port: int
    origin: str
    in_memory: bool = False
    reason: str = ""
    connections: int = 0
    target: Any = None


@dataclass
class Fallback:
    mode: str
    routes: list[ConfiguredRoute] = field(default_factory=list)
    fixture_connections: int = 0
    workers: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "routes": [
                {"origin": r.origin, "spec": r.spec, "in_memory": r.in_memory, "reason": r.reason, "n": r.connections}
                for r in self.routes
            ],
            "fixture": self.fixture_connections,
        }


_FALLBACK = pytest.StashKey[Fallback]()
_NETWORKS = pytest.StashKey[list[Network]]()
_ORIGINAL_OBJ = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsfake", "in-memory WebSocket servers")
    group.addoption(
        "--wsfake",
        dest="wsfake_mode",
        choices=MODES,
        default=None,
        help="serve the wsfake_routes patterns in memory: off (default), on (always), "
        "auto (only where nothing listens on the pattern's host:port). Also ini wsfake_mode, env WSFAKE.",
    )
    parser.addini("wsfake_mode", "default for --wsfake: off, auto or on", default="off")
    parser.addini(
        "wsfake_deadline",
        "seconds without progress on any wsfake connection after which a waiting test fails (0: never)",
        default=str(DEFAULT_DEADLINE),
    )
    parser.addini(
        "wsfake_routes",
        "lines 'pattern = module:attribute' naming the ASGI app or handler that serves the pattern",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wsfake(routes=None, *, target=None, assert_server_errors=True, assert_all_routes_called=False, "
        "**network_options): configure the wsfake fixture with a {pattern: target} dict or target=app",
    )
    option = config.getoption("wsfake_mode")
    mode = str(option or os.environ.get("WSFAKE") or config.getini("wsfake_mode") or "off").strip().lower()
    if mode not in MODES:
        raise pytest.UsageError(
            f"wsfake mode must be one of {', '.join(MODES)}, not {mode!r} (from --wsfake, WSFAKE or wsfake_mode)"
        )
    routes = [_parse_route(line) for line in config.getini("wsfake_routes") if line.strip()]
    note = ""
    if mode != "off" and not routes:
        if option:
            raise pytest.UsageError(
                f"--wsfake={mode} needs routes: add 'wsfake_routes' lines 'pattern = module:attribute' to the ini file"
            )
        # From WSFAKE or the ini, e.g. set once in a shell profile: this project has nothing to fake.
        note = f"wsfake: mode {mode} but no wsfake_routes are configured here; nothing faked"
        mode = "off"
    config.stash[_FALLBACK] = Fallback(mode, routes, note=note)


def _parse_route(line: str) -> ConfiguredRoute:
    match = _ROUTE_LINE.match(line.strip())
    if match is None:
        raise pytest.UsageError(f"wsfake_routes: cannot read {line!r}; write 'ws://host:port/path* = module:attribute'")
    pattern, spec = match["pattern"], match["target"]
    origin = _ORIGIN.match(pattern)
    if origin is None:
        raise pytest.UsageError(
            f"wsfake_routes: {pattern!r} needs a fixed scheme, host and port (wildcards only in the path), "
            "so that auto mode can check whether a server listens there"
        )
    host = origin["host"].strip("[]")
    port = int(origin["port"]) if origin["port"] else DEFAULT_PORTS[origin["scheme"]]
    return ConfiguredRoute(pattern, spec, host, port, f"{origin['scheme']}://{origin['host']}:{port}")


def _import(spec: str, rootpath: Path) -> Any:
    """Import ``module:attribute`` from sys.path, or else from the rootdir (as ``python -m pytest`` would)."""
    module_name, _, attribute = spec.partition(":")
    try:
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name.split(".")[0] or str(rootpath) in sys.path:
                raise
            sys.path.insert(0, str(rootpath))
            obj = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise pytest.UsageError(f"wsfake_routes: cannot import {spec!r}: {exc}") from exc
    return obj


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    fallback = session.config.stash[_FALLBACK]
    if fallback.mode == "off" or _is_xdist_controller(session.config):
        return
    for route in fallback.routes:
        if fallback.mode == "on":
            route.in_memory, route.reason = True, "on"
        elif _listening(route.host, route.port):
            route.in_memory, route.reason = False, f"auto found a server on {route.host}:{route.port}"
        else:
            route.in_memory, route.reason = True, f"auto: nothing listening on {route.host}:{route.port}"
        if route.in_memory:
            route.target = _import(route.spec, session.config.rootpath)


def _is_xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def _is_async_test(item: pytest.Item) -> bool:
    return inspect.iscoroutinefunction(getattr(item, "obj", None))


def _exit_inside_test(item: pytest.Item, context: patch_client) -> None:
    """Make an async test leave ``context`` asynchronously, at the end of its own body, on its own loop.

    pytest-asyncio and anyio run ``item.obj`` on the test's loop; wrapping it
    means lifespan shutdown, close handshakes and server tasks are awaited
    there (a fixture's teardown runs after the loop has stopped running the test).
    """
    test = item.obj  # type: ignore[attr-defined]
    network = context.network

    @functools.wraps(test)
    async def run_then_exit(*args: Any, **kwargs: Any) -> Any:
        import anyio

        scope = anyio.CancelScope()
        stop = _canceller(scope)
        network.on_deadline.append(stop)
        try:
            with scope:
                result = await test(*args, **kwargs)
            if scope.cancelled_caught and network.deadline_exceeded is not None:
                raise network.deadline_exceeded
        except BaseException as exc:
            if context._entered:
                await context.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        finally:
            network.on_deadline.remove(stop)
        if context._entered:
            await context.__aexit__(None, None, None)
        return result

    item.obj = run_then_exit  # type: ignore[attr-defined]
    item.stash.setdefault(_ORIGINAL_OBJ, test)


def _canceller(scope: Any) -> Callable[[BaseException], None]:
    """Cancel ``scope`` (the test's body) from whichever thread notices the deadline."""
    import anyio.from_thread
    import anyio.lowlevel

    thread = threading.get_ident()
    token = anyio.lowlevel.current_token()

    def cancel(exc: BaseException) -> None:
        if threading.get_ident() == thread:
            scope.cancel()
        else:
            anyio.from_thread.run_sync(scope.cancel, token=token)

    return cancel


def _deadline(config: pytest.Config, options: dict[str, Any]) -> float | None:
    value = options.pop("deadline", None)
    if value is None:
        raw = str(config.getini("wsfake_deadline")).strip()
        try:
            value = float(raw)
        except ValueError:
            raise pytest.UsageError(f"wsfake_deadline must be a number of seconds, not {raw!r}") from None
    return None if not value else float(value)


def _enter(request: pytest.FixtureRequest, context: patch_client) -> Network:
    network = context.__enter__()
    _networks(request.node).append(network)
    if _is_async_test(request.node):
        _exit_inside_test(request.node, context)
    return network


def _leave(request: pytest.FixtureRequest, context: patch_client) -> None:
    original = request.node.stash.get(_ORIGINAL_OBJ, None)
    if original is not None:
        request.node.obj = original
        del request.node.stash[_ORIGINAL_OBJ]
    if context._entered:
        context.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _wsfake_fallback(request: pytest.FixtureRequest) -> Iterator[None]:
    """Serve the configured patterns in memory for this test, when the mode says so."""
    fallback = request.config.stash[_FALLBACK]
    in_memory = [route for route in fallback.routes if route.in_memory]
    if not in_memory:
        yield
        return
    context = patch_client(deadline=_deadline(request.config, {}))
    # Everything else keeps using the real network, unless an explicit patch_client is active too.
    context.network.pass_unrouted = True
    routes = [(route, context.network.route(route.pattern, route.target)) for route in in_memory]
    _enter(request, context)
    try:
        yield
    finally:
        try:
            _leave(request, context)
        finally:
            for configured, route in routes:
                configured.connections += route.call_count


@pytest.fixture(autouse=True)
def _wsfake_marker(request: pytest.FixtureRequest) -> None:
    """``@pytest.mark.wsfake(...)`` activates the ``wsfake`` fixture even when the test does not request it."""
    if request.node.get_closest_marker("wsfake") is not None and "wsfake" not in request.fixturenames:
        request.getfixturevalue("wsfake")


@pytest.fixture
def wsfake(request: pytest.FixtureRequest) -> Iterator[Network]:
    """An active in-memory network for this test; add routes with ``wsfake.route(pattern, target)``.

    ``@pytest.mark.wsfake(target=app)`` or ``@pytest.mark.wsfake({pattern: target})``,
    with ``assert_server_errors=True``, ``assert_all_routes_called=False``,
    ``raise_departure_errors=False`` and network options, configures it. In an
    async test (pytest-asyncio or anyio) the network is closed at the end of the
    test, on its loop: lifespan shutdown runs and server tasks are awaited.
    """
    marker = request.node.get_closest_marker("wsfake")
    args: tuple[Any, ...] = marker.args if marker else ()
    options = dict(marker.kwargs) if marker else {}
    if "target" in options:
        # pytest.mark.wsfake(app) would decorate `app` itself, so a single target is passed by keyword.
        args = (options.pop("target"), *args)
    check_errors = options.pop("assert_server_errors", True)
    check_called = options.pop("assert_all_routes_called", False)
    deadline = _deadline(request.config, options)
    context = patch_client(*args, raise_server_errors=check_errors, deadline=deadline, **options)
    network = _enter(request, context)
    try:
        yield network
    finally:
        try:
            _leave(request, context)
        finally:
            request.config.stash[_FALLBACK].fixture_connections += sum(r.call_count for r in network.routes)
    if check_called:
        unused = [repr(route.pattern) for route in network.routes if not route.called]
        if unused:
            pytest.fail(
                f"wsfake: routes never called: {', '.join(unused)} (assert_all_routes_called=True)", pytrace=False
            )


def _networks(item: pytest.Item) -> list[Network]:
    if _NETWORKS not in item.stash:
        item.stash[_NETWORKS] = []
    return item.stash[_NETWORKS]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail the test itself when a server-side exception happened while it ran.

    If the test already failed, its own exception is the one reported: the
    server errors are attached to it as notes.
    """
    try:
        result = yield
    except BaseException as exc:
        for network in item.stash.get(_NETWORKS, []):
            network.report(exc)
        raise
    for network in item.stash.get(_NETWORKS, []):
        network.report()
    return result


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Explain a test that a lone function in ``@pytest.mark.wsfake(fn)`` turned into a coroutine object."""
    if not inspect.iscoroutine(obj) or not collector.funcnamefilter(name):  # type: ignore[attr-defined]
        return
    obj.close()
    raise pytest.UsageError(
        f"{collector.nodeid}::{name} is a coroutine object, not a test function. A lone function in a marker, as "
        "in @pytest.mark.wsfake(handler), makes pytest apply the marker to that function and call it with the "
        "test: write @pytest.mark.wsfake(target=handler) (or {pattern: handler})."
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and (report.when == "call" or call.when == "teardown"):
        calls = [c for network in item.stash.get(_NETWORKS, []) for route in network.routes for c in route.calls]
        if calls:
            report.sections.append(("wsfake connections", "\n\n".join(c.format_transcript() for c in calls)))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["wsfake"] = json.dumps(session.config.stash[_FALLBACK].as_dict())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect what each worker decided and served."""
    data = getattr(node, "workeroutput", {}).get("wsfake")
    if data:
        node.config.stash[_FALLBACK].workers.append(json.loads(data))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    fallback = config.stash[_FALLBACK]
    for line in summary_lines(fallback):
        terminalreporter.write_line(line)


def summary_lines(fallback: Fallback) -> list[str]:
    """What the session did with each configured pattern (merged over xdist workers)."""
    reports = fallback.workers or [fallback.as_dict()]
    fixture = sum(report["fixture"] for report in reports)
    lines = [fallback.note] if fallback.note else []
    if fallback.mode == "off":
        if fallback.routes:
            lines.append("wsfake: mode off; the wsfake_routes patterns used the real network")
    else:
        for index, route in enumerate(fallback.routes):
            seen = [report["routes"][index] for report in reports if index < len(report["routes"])]
            served = sum(item["n"] for item in seen)
            memory = [item for item in seen if item["in_memory"]]
            real = [item for item in seen if not item["in_memory"]]
            noun = "connection" if served == 1 else "connections"
            if memory:
                where = f"to {route.origin} served in memory by {route.spec}"
                lines.append(f"wsfake: {served} {noun} {where} ({memory[0]['reason']})")
            if real and not memory:
                lines.append(f"wsfake: {real[0]['reason']}; {served} {noun} faked")
            elif real:
                lines.append(f"wsfake: {real[0]['reason']} in {len(real)} of {len(seen)} workers; those faked none")
    if fixture:
        lines.append(
            f"wsfake: {fixture} connection{'s' if fixture != 1 else ''} served in memory through the wsfake fixture"
        )
    return lines
