"""The agent-chat backend and client, tested in memory with the ``wsfake`` fixture."""

from __future__ import annotations

import pytest
from agent_app import app
from agent_client import ask, ask_all
from websockets.exceptions import ConnectionClosedError, InvalidStatus

import wsfake

EVENTS = ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed"]


@pytest.fixture
def server(wsfake: wsfake.Network) -> wsfake.Route:
    app.state.going_away = False
    return wsfake.route("ws://localhost:8000/*", app)


@pytest.mark.asyncio
async def test_events_arrive_in_order(server: wsfake.Route) -> None:
    events = await ask("weather in Lisbon")
    assert [e["event"] for e in events] == EVENTS
    assert events[-1]["answer"] == "result 0 for weather in Lisbon"
    call = server.calls.last
    assert call.header("authorization") == "Bearer ada-token"
    assert call.received == ["weather in Lisbon"] and call.close_received == (1000, "")


@pytest.mark.asyncio
@pytest.mark.parametrize("token", ["bob-token", "no-such-token"])
async def test_a_wrong_token_is_rejected_with_403(server: wsfake.Route, token: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        await ask("hi", token=token)
    assert info.value.response.status_code == 403
    assert server.calls.last.status == 403


@pytest.mark.asyncio
async def test_a_failing_tool_closes_with_1011_and_a_reason(server: wsfake.Route) -> None:
    with pytest.raises(ConnectionClosedError) as info:
        await ask("is search unavailable?")
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (1011, "agent failed: search backend unavailable")


@pytest.mark.asyncio
@pytest.mark.wsfake(assert_server_errors=False)
async def test_an_unhandled_crash_drops_the_connection_like_uvicorn(
    server: wsfake.Route, wsfake: wsfake.Network
) -> None:
    with pytest.raises(ConnectionClosedError) as info:
        await ask("please crash")
    assert info.value.rcvd is None and info.value.sent is None  # no close frame: 1006
    assert [str(e) for e in server.errors] == ["agent crashed"]


@pytest.mark.asyncio
async def test_the_client_reconnects_when_the_server_goes_away(server: wsfake.Route) -> None:
    answers = []

    async def questions() -> None:
        answers.extend(await ask_all(["first", "second", "third"]))

    app.state.going_away = False
    first = await ask_all(["warm-up"])
    assert [e["event"] for e in first[0]] == EVENTS
    app.state.going_away = True  # the next message is answered with close 1001
    await questions()
    assert [answer[-1]["answer"] for answer in answers] == [
        "result 0 for first",
        "result 0 for second",
        "result 0 for third",
    ]
    assert [call.close_sent for call in server.calls[-2:]] == [(1001, "server going away"), (1000, "")]
