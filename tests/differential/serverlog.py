"""What the server code observed during one run, and when it has finished.

The same server code runs under the real servers (in their own thread) and under
wsfake (on the client's loop or wsfake's background loop). Each connection's
server code is tracked from start to end, so a run waits until all of it has
finished before its log is read, without polling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class ServerLog:
    """Events noted by the server code, and the number of server connections still running."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._active = 0
        self._cond = threading.Condition()
        self._started = 0
        self._callbacks: list[Callable[[], object]] = []

    def note(self, *event: Any) -> None:
        self.events.append(list(event))

    def reset(self) -> None:
        with self._cond:
            self.events = []
            self._started = 0

    def enter(self) -> None:
        with self._cond:
            self._active += 1
            self._started += 1
        self._changed()

    def exit(self) -> None:
        with self._cond:
            self._active -= 1
        self._changed()

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no server connection is running (from a thread that runs no server code)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout)

    async def wait_idle_async(self, timeout: float) -> bool:
        """Wait, on the running asyncio or trio loop, until no server connection is running."""
        return await self._wait_async(lambda: self._active == 0, timeout)

    async def wait_started_async(self, timeout: float) -> bool:
        """Wait, on the running asyncio or trio loop, until the server code of a connection has started.

        For a driver that must not act before the server code runs: a real server
        calls it after sending its handshake response, so a fast client can be done
        before it starts.
        """
        return await self._wait_async(lambda: self._started > 0, timeout)

    async def _wait_async(self, ready: Callable[[], bool], timeout: float) -> bool:
        import anyio
        import anyio.from_thread

        token = anyio.lowlevel.current_token()
        loop_thread = threading.get_ident()
        with anyio.move_on_after(timeout):
            while True:
                event = anyio.Event()

                def wake(event: anyio.Event = event) -> None:
                    if threading.get_ident() == loop_thread:
                        event.set()
                    else:
                        anyio.from_thread.run_sync(event.set, token=token)

                with self._cond:
                    if ready():
                        return True
                    self._callbacks.append(wake)
                await event.wait()
        return False


SERVER = ServerLog()
