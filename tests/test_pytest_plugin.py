"""The pytest plugin: fixture, marker, teardown checks, failure transcripts, modes."""

from __future__ import annotations

import pytest
from wsproto.events import AcceptConnection, TextMessage

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


def run(pytester: pytest.Pytester, source: str, *args: str, ini: str = "") -> pytest.RunResult:
    pytester.makepyfile(handlers=HANDLERS, test_inner=source)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n" + ini)
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
