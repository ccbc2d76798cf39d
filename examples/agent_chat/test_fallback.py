"""The fallback chain end to end.

The same unmodified test file runs under ``--wsfake=auto`` twice: with uvicorn really
listening on the configured port (auto uses it, nothing is faked) and with nothing
listening (auto serves the app in memory). The terminal summary must say which.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

HERE = Path(__file__).resolve().parent

INNER_TESTS = """
import asyncio

import agent_client


def test_weather():
    events = asyncio.run(agent_client.ask("weather"))
    assert events[-1] == {"event": "agent_completed", "answer": "result 0 for weather"}


def test_flights():
    events = asyncio.run(agent_client.ask("flights"))
    assert [e["event"] for e in events][0] == "agent_started"


def test_hotels():
    assert len(asyncio.run(agent_client.ask("hotels"))) == 5
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn_listening(port: int) -> Iterator[None]:
    """The agent-chat app under a real uvicorn on 127.0.0.1:port, in a thread."""
    server = uvicorn.Server(uvicorn.Config("agent_app:app", host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[pytest.Pytester, int]:
    port = free_port()
    pytester.makeini(f"[pytest]\nwsfake_routes =\n    ws://localhost:{port}/* = agent_app:app\n")
    pytester.makepyfile(test_agent=INNER_TESTS)
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    monkeypatch.setenv("AGENT_CHAT_URL", f"ws://localhost:{port}/ws/ada")
    monkeypatch.delenv("WSFAKE", raising=False)
    return pytester, port


@pytest.mark.network
def test_auto_uses_a_real_server_when_one_listens(inner: tuple[pytest.Pytester, int]) -> None:
    pytester, port = inner
    with uvicorn_listening(port):
        result = pytester.runpytest_subprocess("--wsfake=auto", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"wsfake: auto found a server on localhost:{port}; 0 connections faked"])


@pytest.mark.network
def test_auto_serves_in_memory_when_nothing_listens(inner: tuple[pytest.Pytester, int]) -> None:
    pytester, port = inner
    result = pytester.runpytest_subprocess("--wsfake=auto", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            f"wsfake: 3 connections to ws://localhost:{port} served in memory by agent_app:app "
            f"(auto: nothing listening on localhost:{port})"
        ]
    )


@pytest.mark.network
def test_auto_under_xdist_sums_the_workers(inner: tuple[pytest.Pytester, int]) -> None:
    pytester, port = inner
    result = pytester.runpytest_subprocess("--wsfake=auto", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [f"wsfake: 3 connections to ws://localhost:{port} served in memory by agent_app:app (auto: nothing listening*"]
    )


@pytest.mark.network
def test_without_the_option_the_suite_really_connects(inner: tuple[pytest.Pytester, int]) -> None:
    pytester, _ = inner
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        ["*ConnectionRefusedError*", "wsfake: mode off; the wsfake_routes patterns used the real network"]
    )
