"""The pytest plugin: fixture, marker, teardown checks, failure transcripts, modes."""

from __future__ import annotations

import re

import pytest
from wsproto.events import AcceptConnection, CloseConnection, TextMessage

import wsfake
from wsproto_client import WsprotoClient

HANDLERS = """
import asyncio
import websockets
import pytest


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def broken(ws):
    await ws.recv()
    raise ValueError("handler bug in the server")


async def talk(url, message="hi"):
    async with websockets.connect(url) as ws:
        await ws.send(message)
        return await ws.recv()
"""


def run(
    pytester: pytest.Pytester, source: str, *args: str, ini: str = "", subprocess: bool = False
) -> pytest.RunResult:
    pytester.makepyfile(handlers=HANDLERS, test_inner=source)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n" + ini)
    if subprocess:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def test_fixture_in_sync_tests_and_both_pytest_asyncio_modes(pytester: pytest.Pytester) -> None:
    source = """
import asyncio
import pytest
from handlers import echo, talk

def test_sync(wsfake):
    wsfake.route("ws://localhost:8000/*", echo)
    assert asyncio.run(talk("ws://localhost:8000/ws")) == "hi"

@pytest.mark.asyncio
async def test_async(wsfake):
    route = wsfake.route("ws://localhost:8000/*", echo)
    assert await talk("ws://localhost:8000/ws", "async") == "async"
    assert route.call_count == 1

async def test_auto_mode_only(wsfake):
    wsfake.route("ws://localhost:8000/*", echo)
    assert await talk("ws://localhost:8000/ws") == "hi"
"""
    strict = run(pytester, source, "-o", "asyncio_mode=strict", "-k", "not auto_mode_only")
    strict.assert_outcomes(passed=2, deselected=1)
    auto = run(pytester, source, "-o", "asyncio_mode=auto")
    auto.assert_outcomes(passed=3)
    auto.stdout.fnmatch_lines(["wsfake: 3 connections served in memory through the wsfake fixture"])


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_fixture_on_anyio_backends(wsfake: wsfake.Network) -> None:
    async def echo(ws: wsfake.ServerConnection) -> None:
        await ws.send(await ws.recv())

    route = wsfake.route("ws://localhost:8000/*", echo)
    client, first = await WsprotoClient.connect(wsfake, "ws://localhost:8000/ws")
    assert isinstance(first, AcceptConnection)
    await client.send(TextMessage("over trio too"))
    assert await client.next_event() == TextMessage("over trio too")
    closing = await client.next_event()  # the handler returned: the server closes
    assert isinstance(closing, CloseConnection) and closing.code == 1000
    await client.send(closing.response())
    assert route.call_count == 1


def test_marker_configures_the_fixture(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import asyncio
import pytest
from handlers import echo, talk

@pytest.mark.wsfake({"ws://localhost:8000/*": echo})
def test_routes_from_the_marker(wsfake):
    assert asyncio.run(talk("ws://localhost:8000/x")) == "hi"
    assert wsfake.routes[0].call_count == 1

@pytest.mark.wsfake(target=echo, assert_all_routes_called=True)
def test_unused_route_fails(wsfake):
    pass
""",
    )
    result.assert_outcomes(passed=2, errors=1)  # the unused route is reported at teardown, as pytest-httpx does
    result.stdout.fnmatch_lines(["*wsfake: routes never called: ws(s)://* (assert_all_routes_called=True)*"])


def test_a_server_exception_fails_the_test_with_the_server_traceback(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import asyncio
import pytest
from handlers import broken, talk
import websockets

@pytest.mark.wsfake(target=broken)
def test_server_bug(wsfake):
    with pytest.raises(websockets.exceptions.ConnectionClosedError):
        asyncio.run(talk("ws://localhost:8000/chat"))

@pytest.mark.wsfake(target=broken, assert_server_errors=False)
def test_server_bug_allowed(wsfake):
    with pytest.raises(websockets.exceptions.ConnectionClosedError):
        asyncio.run(talk("ws://localhost:8000/chat"))
    assert [str(e) for e in wsfake.errors] == ["handler bug in the server"]
""",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_server_bug*",
            '*raise ValueError("handler bug in the server")*',
            "E*ValueError: handler bug in the server",
        ]
    )


def test_failed_tests_get_a_wsfake_connections_section(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import asyncio
import pytest
from handlers import echo, talk

@pytest.mark.wsfake(target=echo)
def test_fails_after_talking(wsfake):
    assert asyncio.run(talk("ws://localhost:8000/chat", "ping?")) == "pong!"
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- wsfake connections -*",
            "ws://localhost:8000/chat -> Handler(echo): HTTP 101",
            "  +*s > GET ws://localhost:8000/chat",
            "  +*s < HTTP 101",
            "  +*s > 'ping?'",
            "  +*s < 'ping?'",
            "  +*s > close 1000 ''",
            "  +*s < close 1000 ''",
        ]
    )


ON_MODE_TESTS = """
import asyncio
from handlers import talk

def test_one():
    assert asyncio.run(talk("ws://localhost:8000/ws")) == "hi"

def test_two():
    assert asyncio.run(talk("ws://localhost:8000/ws", "again")) == "again"
"""


@pytest.mark.parametrize("how", ["option", "env", "ini"])
def test_mode_on_serves_configured_routes_without_the_fixture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    ini = "wsfake_routes =\n    ws://localhost:8000/* = handlers:echo\n"
    args: list[str] = []
    monkeypatch.delenv("WSFAKE", raising=False)
    if how == "option":
        args = ["--wsfake=on"]
    elif how == "env":
        monkeypatch.setenv("WSFAKE", "on")
    else:
        ini += "wsfake_mode = on\n"
    result = run(pytester, ON_MODE_TESTS, *args, ini=ini)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["wsfake: 2 connections to ws://localhost:8000 served in memory by handlers:echo (on)"])


def test_routes_from_pyproject_toml(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WSFAKE", raising=False)
    pytester.makepyfile(handlers=HANDLERS, test_inner=ON_MODE_TESTS)
    pytester.makepyprojecttoml(
        """
[tool.pytest.ini_options]
asyncio_default_fixture_loop_scope = "function"
wsfake_mode = "on"
wsfake_routes = ["ws://localhost:8000/* = handlers:echo", "ws://localhost:8002/* = handlers:broken"]
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "wsfake: 2 connections to ws://localhost:8000 served in memory by handlers:echo (on)",
            "wsfake: 0 connections to ws://localhost:8002 served in memory by handlers:broken (on)",
        ]
    )


def test_the_option_wins_over_env_and_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSFAKE", "on")
    ini = "wsfake_mode = on\nwsfake_routes =\n    ws://localhost:8000/* = handlers:echo\n"
    result = run(pytester, "def test_nothing():\n    pass\n", "--wsfake=off", ini=ini)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["wsfake: mode off; the wsfake_routes patterns used the real network"])


def test_a_mode_from_the_environment_without_routes_is_not_an_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WSFAKE", "auto")  # e.g. set once in a shell profile, for another project
    result = run(pytester, "def test_nothing():\n    pass\n")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["wsfake: mode auto but no wsfake_routes are configured here; nothing faked"])


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        ("wsfake_routes =\n    ws://localhost:8000/* handlers:echo\n", ["--wsfake=on"], "*cannot read*"),
        ("", ["--wsfake=on"], "*--wsfake=on needs routes*"),
        (
            "wsfake_routes =\n    ws://*:8000/* = handlers:echo\n",
            ["--wsfake=on"],
            "*needs a fixed scheme, host and port*",
        ),
        (
            "wsfake_routes =\n    ws://localhost:8000/* = handlers:nope\n",
            ["--wsfake=on"],
            "*cannot import 'handlers:nope'*",
        ),
        ("wsfake_mode = sometimes\n", [], "*wsfake mode must be one of off, auto, on*"),
    ],
)
def test_configuration_errors_are_explained(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ini: str, args: list[str], message: str
) -> None:
    monkeypatch.delenv("WSFAKE", raising=False)
    result = run(pytester, "def test_nothing():\n    pass\n", *args, ini=ini)
    assert result.ret != 0
    result.stderr.fnmatch_lines([message])


def test_summary_lines_merge_xdist_workers() -> None:
    from wsfake._pytest_plugin import ConfiguredRoute, Fallback, summary_lines

    route = ConfiguredRoute("ws://localhost:8000/*", "app:app", "localhost", 8000, "ws://localhost:8000")
    fallback = Fallback("auto", [route])
    reason = "auto: nothing listening on localhost:8000"
    fallback.workers = [
        {"routes": [{"in_memory": True, "reason": reason, "n": 3}], "fixture": 1},
        {"routes": [{"in_memory": True, "reason": reason, "n": 4}], "fixture": 0},
    ]
    assert summary_lines(fallback) == [
        f"wsfake: 7 connections to ws://localhost:8000 served in memory by app:app ({reason})",
        "wsfake: 1 connection served in memory through the wsfake fixture",
    ]


LIFESPAN_APP = """
from contextlib import asynccontextmanager
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

LOG = []


@asynccontextmanager
async def lifespan(app):
    LOG.append("startup")
    yield
    LOG.append("shutdown")


async def endpoint(websocket):
    await websocket.accept()
    message = await websocket.receive()
    LOG.append(("app received", message["type"], message.get("code")))


app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)
"""


@pytest.mark.parametrize(
    "runner",
    ["pytest-asyncio strict", "pytest-asyncio auto", "anyio asyncio", "anyio trio"],
)
def test_the_fixture_exits_asynchronously_in_async_tests(pytester: pytest.Pytester, runner: str) -> None:
    # A connection left open gets uvicorn's 1012, the app hears it, lifespan shutdown runs after:
    # all on the test's own loop, before the test ends.
    mark = {
        "pytest-asyncio strict": "@pytest.mark.asyncio",
        "pytest-asyncio auto": "",
        "anyio asyncio": "@pytest.mark.anyio",
        "anyio trio": "@pytest.mark.anyio",
    }[runner]
    backend = "trio" if runner == "anyio trio" else "asyncio"
    pytester.makepyfile(lifespanapp=LIFESPAN_APP)
    if backend == "asyncio":
        body = (
            "from websockets.asyncio.client import connect\n    pytest.client = await connect('ws://localhost:8000/ws')"
        )
        after = '["startup", ("app received", "websocket.disconnect", 1012), "shutdown"]'
        closed = "assert pytest.client.protocol.close_code == 1012"
    else:
        # trio forbids leaving the connection's context open past the body: close it, then check the shutdown.
        pytest.importorskip("websockets.trio.client", reason="websockets.trio needs websockets 17")
        body = (
            "from websockets.trio.client import connect\n"
            "    async with connect('ws://localhost:8000/ws') as ws:\n"
            "        await ws.send('hi')"
        )
        after = '["startup", ("app received", "websocket.receive", None), "shutdown"]'
        closed = ""
    source = f"""
import pytest
from lifespanapp import LOG, app

@pytest.fixture
def anyio_backend():
    return "{backend}"

{mark}
async def test_leaves_a_connection_open(wsfake):
    wsfake.route("ws://localhost:8000/*", app)
    {body}

def test_after():
    assert LOG == {after}
    {closed}
"""
    mode = "auto" if runner == "pytest-asyncio auto" else "strict"
    result = run(pytester, source, "-o", f"asyncio_mode={mode}")
    result.assert_outcomes(passed=2)


def test_the_tests_own_failure_is_reported_with_the_server_error_attached(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import asyncio
import pytest
import websockets
from handlers import broken

@pytest.mark.wsfake(target=broken)
@pytest.mark.asyncio
async def test_fails_on_its_own(wsfake):
    async with websockets.connect("ws://localhost:8000/chat") as ws:
        await ws.send("hi")
        with pytest.raises(websockets.exceptions.ConnectionClosedError):
            await ws.recv()
    assert 1 + 1 == 3, "the test's own assertion"
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*AssertionError: the test's own assertion",
            "*wsfake: meanwhile the server raised:*",
            "*ValueError: handler bug in the server",
        ]
    )
    assert "E   ValueError: handler bug in the server" not in result.stdout.str()


def test_the_marker_alone_activates_the_fixture(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import asyncio
import pytest
from handlers import echo, talk

@pytest.mark.wsfake({"ws://localhost:8000/*": echo})
def test_no_fixture_requested():
    assert asyncio.run(talk("ws://localhost:8000/x")) == "hi"
""",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["wsfake: 1 connection served in memory through the wsfake fixture"])


def test_a_lone_function_in_the_marker_is_a_clear_error(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import pytest
from handlers import echo

@pytest.mark.wsfake(echo)
def test_would_vanish(wsfake):
    pass
""",
    )
    assert result.ret != 0
    output = result.stdout.str() + result.stderr.str()
    assert "is a coroutine object, not a test function" in output
    assert "@pytest.mark.wsfake(target=handler)" in output


def test_the_environment_does_not_change_an_explicit_patch(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # WSFAKE=on serves the configured routes and lets other URLs use the real network; inside an
    # explicit patch_client, an unrouted URL is still refused.
    monkeypatch.setenv("WSFAKE", "on")
    ini = "wsfake_routes =\n    ws://localhost:8000/* = handlers:echo\n"
    result = run(
        pytester,
        """
import asyncio
import pytest
import wsfake
from handlers import echo, talk

def test_explicit_patch_refuses_unrouted():
    with wsfake.patch_client({"ws://localhost:8001/*": echo}):
        assert asyncio.run(talk("ws://localhost:8001/x")) == "hi"
        assert asyncio.run(talk("ws://localhost:8000/x", "configured")) == "configured"
        with pytest.raises(wsfake.NoRoute):
            asyncio.run(talk("ws://localhost:8002/x"))
""",
        ini=ini,
    )
    result.assert_outcomes(passed=1)


def test_a_session_scoped_patch_serves_function_scoped_loops(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        lifespanapp=LIFESPAN_APP.replace(
            "message = await websocket.receive()",
            "await websocket.send_text('hi'); message = await websocket.receive()",
        )
    )
    source = """
import pytest
import websockets
import wsfake
from lifespanapp import LOG, app

@pytest.fixture(scope="session")
def network():
    with wsfake.patch_client({"ws://localhost:8000/*": app}) as net:
        yield net

@pytest.mark.asyncio
@pytest.mark.parametrize("n", [1, 2])
async def test_talk(network, n):
    async with websockets.connect("ws://localhost:8000/ws") as ws:
        assert await ws.recv() == "hi"

def test_each_loop_had_its_own_server(network):
    assert LOG.count("startup") == 2 and LOG.count("shutdown") == 2
    assert network.errors == []
"""
    result = run(pytester, source)
    result.assert_outcomes(passed=3)


def test_stuck_tests_fail_at_the_deadline_instead_of_hanging(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import asyncio
import pytest
import websockets


async def silent(ws):
    await ws.recv()


@pytest.mark.wsfake(target=silent)
@pytest.mark.asyncio
async def test_client_waits_for_the_server(wsfake):
    async with websockets.connect("ws://localhost:8000/ws") as ws:
        await ws.recv()


@pytest.mark.wsfake(target=silent)
@pytest.mark.asyncio
async def test_waits_on_something_else(wsfake):
    async with websockets.connect("ws://localhost:8000/ws"):
        await asyncio.Event().wait()


@pytest.mark.wsfake(target=silent)
def test_sync_client_blocked_in_recv(wsfake):
    from websockets.sync.client import connect

    with connect("ws://localhost:8000/ws") as ws:
        ws.recv()
""",
        ini="wsfake_deadline = 0.3\n",
        # A fresh interpreter: CPython 3.11's AST constructor can be left with a wrong recursion depth
        # (python/cpython#106905), and pytest's traceback rendering of three failures in the worker's own
        # interpreter then stops with an INTERNALERROR. Seen once on CI; nothing to do with the deadline.
        subprocess=True,
    )
    result.assert_outcomes(failed=3)
    # Counted in the tracebacks only: the summary lines repeat it as far as the terminal is wide.
    reported = re.findall(
        r"^E +wsfake\._exceptions\.DeadlineExceeded: wsfake: nothing moved", result.stdout.str(), re.M
    )
    assert len(reported) == 3


def test_the_deadline_is_configurable_and_can_be_turned_off(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import pytest

def test_default(wsfake):
    assert wsfake.deadline == 0.5

@pytest.mark.wsfake(deadline=2)
def test_marker(wsfake):
    assert wsfake.deadline == 2
""",
        ini="wsfake_deadline = 0.5\n",
    )
    result.assert_outcomes(passed=2)
    off = run(pytester, "def test_off(wsfake):\n    assert wsfake.deadline is None\n", ini="wsfake_deadline = 0\n")
    off.assert_outcomes(passed=1)
