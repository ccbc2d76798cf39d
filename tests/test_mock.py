"""MockServer: a server the test scripts, for testing client code, from asyncio, trio and threads."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import anyio
import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, InvalidStatus

import wsfake

URL = "ws://localhost:8000/ws"


@pytest.mark.asyncio
async def test_a_client_scripted_step_by_step() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL, json=True)
        async with websockets.connect(URL + "?room=7", additional_headers={"X-Token": "t"}) as ws:
            conn = await server.connected()
            assert (conn.path, conn.query, conn.headers["X-Token"]) == ("/ws", "room=7", "t")
            await ws.send(json.dumps({"op": "join"}))
            await ws.send(json.dumps({"op": "say", "text": "hi"}))
            assert await conn.receive() == {"op": "join"}
            assert await conn.expect(lambda message: message["op"] == "say") == {"op": "say", "text": "hi"}
            conn.assert_nothing_received()
            await conn.send({"event": "joined"})
            assert json.loads(await ws.recv()) == {"event": "joined"}
            assert await conn.ping() >= 0
            assert await conn.close(4000, "room closed") == (4000, "room closed")
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
    assert server.messages == [{"op": "join"}, {"op": "say", "text": "hi"}]
    assert conn.messages == server.messages and conn.closed


@pytest.mark.asyncio
async def test_messages_sent_before_the_test_asks_are_kept_in_order() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL)
        async with websockets.connect(URL) as ws:
            for i in range(100):
                await ws.send(f"m{i}")
            conn = await server.connected()
            assert [await conn.receive() for _ in range(100)] == [f"m{i}" for i in range(100)]


@pytest.mark.asyncio
async def test_expect_shows_what_was_expected_and_everything_received() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL)
        async with websockets.connect(URL) as ws:
            conn = await server.connected()
            await ws.send("hello")
            with pytest.raises(AssertionError) as mismatch:
                await conn.expect("goodbye")
            assert "expected 'goodbye'" in str(mismatch.value) and "got 'hello'" in str(mismatch.value)
            with pytest.raises(AssertionError) as nothing:
                await conn.expect("more", timeout=0.05)
            assert "nothing came within 0.05 s" in str(nothing.value) and "['hello']" in str(nothing.value)
            await ws.send("unexpected")
            await anyio.wait_all_tasks_blocked()  # delivered: nothing else can move
            with pytest.raises(AssertionError, match="1 messages from the client were not expected"):
                conn.assert_nothing_received()


@pytest.mark.asyncio
async def test_broadcast_drop_and_wait_closed() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL)
        first = await websockets.connect(URL)
        second = await websockets.connect(URL)
        a, b = await server.connected(), await server.connected()
        await server.send("to everyone")
        assert [await first.recv(), await second.recv()] == ["to everyone", "to everyone"]
        a.drop()
        with pytest.raises(ConnectionClosedError) as dropped:
            await first.recv()
        assert dropped.value.rcvd is None and first.protocol.close_code == 1006
        with pytest.raises(ConnectionClosedError) as after_drop:
            await a.send("too late")
        assert "conn.drop()" in "\n".join(getattr(after_drop.value, "__notes__", []))
        await second.close(4001, "leaving")
        assert await b.wait_closed() == (4001, "leaving")
        with pytest.raises(ConnectionClosedError):  # 4001 is not a normal closure code
            await b.receive()
        with pytest.raises(AssertionError, match="the connection closed"):
            await b.expect("anything")


@pytest.mark.asyncio
async def test_handshake_control_and_subprotocols() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL, subprotocols=["chat.v2", "chat.v1"])
        server.reject_next(401, {"WWW-Authenticate": "Bearer"}, b"who are you?")
        with pytest.raises(InvalidStatus) as rejected:
            await websockets.connect(URL, subprotocols=["chat.v1"])
        response = rejected.value.response
        assert (response.status_code, response.headers["WWW-Authenticate"], response.body) == (
            401,
            "Bearer",
            b"who are you?",
        )
        async with websockets.connect(URL, subprotocols=["chat.v1", "chat.v2"]) as ws:
            conn = await server.connected()
            assert ws.subprotocol == conn.subprotocol == "chat.v2" and conn.subprotocols == ["chat.v1", "chat.v2"]


@pytest.mark.asyncio
async def test_bad_input_gets_a_precise_error() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL, json=True)
        with pytest.raises(ValueError, match="a MockServer already serves ws://localhost:8000/ws"):
            net.mock(URL)
        with pytest.raises(TimeoutError, match=r"no client connected within 0\.01 s"):
            await server.connected(timeout=0.01)
        with pytest.raises(ValueError, match="status must be an HTTP status other than 101"):
            server.reject_next(101)
        async with websockets.connect(URL) as ws:
            conn = await server.connected()
            await ws.send("{not json")
            with pytest.raises(ValueError, match=r"not JSON, to a MockServer\(json=True\): '\{not json'"):
                await conn.receive()
            with pytest.raises(TimeoutError, match="received so far"):
                await conn.receive(timeout=0.01)
    plain = wsfake.MockServer()
    with pytest.raises(TypeError, match="create it with json=True"):
        plain._encode({"a": 1})


@pytest.mark.asyncio
async def test_a_connection_the_test_never_looked_at_is_in_the_transcript() -> None:
    async with wsfake.patch_client() as net:
        server = net.mock(URL)
        async with websockets.connect(URL) as ws:
            await ws.send("ignored")
    notes = [entry.data for entry in server.route.calls.last.transcript if entry.kind == "note"]
    assert notes == ["the test never looked at this connection: no server.connected() returned it"]


def test_the_same_mock_from_a_plain_sync_test() -> None:
    from websockets.sync.client import connect

    with wsfake.patch_client() as net:
        server = net.mock(URL)
        with connect(URL) as ws:
            conn = server.connected(timeout=5)
            ws.send("from sync code")
            assert conn.receive() == "from sync code"
            conn.send("back")
            assert ws.recv(timeout=5) == "back"
            conn.close(1000, "bye")
            assert conn.wait_closed() == (1000, "bye")


@pytest.mark.asyncio
async def test_a_threaded_client_inside_an_async_test() -> None:
    from websockets.sync.client import connect

    received: list[Any] = []

    def client() -> None:
        with connect(URL) as ws:
            ws.send("from a thread")
            received.append(ws.recv(timeout=5))

    async with wsfake.patch_client() as net:
        server = net.mock(URL)
        thread = threading.Thread(target=client)
        thread.start()
        conn = await server.connected()  # served on wsfake's background loop: the test awaits it from its own
        assert await conn.receive() == "from a thread"
        await conn.send("to the thread")
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
    assert received == ["to the thread"]


def test_the_same_mock_on_trio() -> None:
    import trio

    trio_client = pytest.importorskip("websockets.trio.client", reason="websockets.trio needs websockets 17")

    async def main() -> None:
        async with wsfake.patch_client() as net:
            server = net.mock(URL)
            async with trio_client.connect(URL) as ws:
                conn = await server.connected()
                await ws.send("on trio")
                assert await conn.receive() == "on trio"
                await conn.send("back")
                assert await ws.recv() == "back"

    trio.run(main)


def test_a_connection_still_open_at_exit_gets_the_shutdown_close_and_nothing_outlives_the_exit() -> None:
    pytest.importorskip("websockets.trio.client", reason="websockets.trio is new in websockets 17")
    import trio
    import trio.testing
    from websockets.trio.client import connect

    seen: list[Any] = []

    async def client(task_status: Any) -> None:
        async with connect(URL, ping_interval=None) as ws:
            task_status.started()
            try:
                await ws.recv()
            except websockets.ConnectionClosed as exc:
                seen.append((exc.rcvd.code, exc.rcvd.reason, exc.rcvd_then_sent))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            async with wsfake.patch_client() as net:
                server = net.mock(URL)
                server.route.latency(0.05, direction="to_server")  # the client's answer takes a while
                await nursery.start(client)
                conn = await server.connected()
            # The exit closed the connection as websockets.serve closes at shutdown, and waited for the answer.
            assert conn.closed and conn.close_frame == (1001, "")
        await trio.testing.wait_all_tasks_blocked()
        root = trio.lowlevel.current_root_task()
        tasks = [task for nursery in root.child_nurseries for task in nursery.child_tasks]
        assert not [task.name for task in tasks if task.name.startswith("wsfake")]

    trio.run(main)
    assert seen == [(1001, "", True)]
