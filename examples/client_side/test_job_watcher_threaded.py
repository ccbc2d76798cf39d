"""A blocking job watcher (``websocket-client``), tested from a plain sync test with the same ``MockServer``.

In sync code every mock method blocks (``conn.receive()``, ``server.connected()``)
instead of being awaited, with the same default timeout of 10 s. The client
call under test blocks too, so it runs in a worker thread while the test
plays the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import websocket  # websocket-client

import wsfake

# ---- the client code under test ----


class JobFailed(Exception):
    """The job ended in failure on the server."""


class WatchInterrupted(Exception):
    """The server closed the connection before the job ended."""


def wait_for_job(
    url: str, job_id: str, *, token: str, on_progress: Callable[[int], object] = print, timeout: float = 30.0
) -> Any:
    """Watch a job until it ends; returns its result, raises JobFailed or WatchInterrupted."""
    ws = websocket.create_connection(url, timeout=timeout, header=[f"Authorization: Bearer {token}"])
    try:
        ws.send(json.dumps({"op": "watch", "job": job_id}))
        while True:
            try:
                raw = ws.recv()
            except (websocket.WebSocketConnectionClosedException, ConnectionError) as exc:
                raise WatchInterrupted(f"connection lost: {exc!r}") from exc
            if not raw:  # websocket-client returns "" once the server has closed
                raise WatchInterrupted("the server closed the connection")
            event = json.loads(raw)
            if event["state"] == "running":
                on_progress(event["progress"])
            elif event["state"] == "done":
                return event["result"]
            else:
                raise JobFailed(event["error"])
    finally:
        ws.close()


# ---- the tests ----

URL = "ws://jobs.internal:8080/watch"


def test_progress_then_result() -> None:
    progress: list[int] = []
    with wsfake.patch_client() as net, ThreadPoolExecutor(1) as pool:
        server = net.mock(URL, json=True)
        watching = pool.submit(wait_for_job, URL, "job-42", token="s3cret", on_progress=progress.append)

        conn = server.connected()  # blocks until the client has connected (10 s at most)
        assert conn.headers["Authorization"] == "Bearer s3cret"
        conn.expect({"op": "watch", "job": "job-42"})
        for percent in (10, 60):
            conn.send({"state": "running", "progress": percent})
        conn.send({"state": "done", "result": {"rows": 1200}})

        assert watching.result(timeout=5) == {"rows": 1200}
        assert conn.wait_closed() == (1000, "")  # the client closed properly
    assert progress == [10, 60]


def test_a_failed_job_raises() -> None:
    with wsfake.patch_client() as net, ThreadPoolExecutor(1) as pool:
        server = net.mock(URL, json=True)
        watching = pool.submit(wait_for_job, URL, "job-7", token="s3cret")
        conn = server.connected()
        conn.receive(timeout=5)  # the sync form of every timeout is the same keyword
        conn.send({"state": "failed", "error": "disk full"})
        with pytest.raises(JobFailed, match="disk full"):
            watching.result(timeout=5)


def test_a_lost_connection_is_not_a_success() -> None:
    with wsfake.patch_client() as net, ThreadPoolExecutor(1) as pool:
        server = net.mock(URL, json=True)
        watching = pool.submit(wait_for_job, URL, "job-9", token="s3cret", on_progress=lambda _: None)
        conn = server.connected()
        conn.expect({"op": "watch", "job": "job-9"})
        conn.send({"state": "running", "progress": 5})
        conn.drop()  # cut without a close frame, as a crashed server or a dead network does
        with pytest.raises(WatchInterrupted, match="connection lost"):
            watching.result(timeout=5)
