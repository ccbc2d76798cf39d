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
        self._idle_callbacks: list[Callable[[], object]] = []

    def note(self, *event: Any) -> None:
        self.events.append(list(event))

    def reset(self) -> None:
        with self._cond:
            self.events = []

    def enter(self) -> None:
        with self._cond:
            self._active += 1

    def exit(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active:
                return
            self._cond.notify_all()
            callbacks, self._idle_callbacks = self._idle_callbacks, []
        for callback in callbacks:
            callback()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no server connection is running (from a thread that runs no server code)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout)

    async def wait_idle_async(self, timeout: float) -> bool:
        """Wait, on the running asyncio or trio loop, until no server connection is running."""
        import anyio
        import anyio.from_thread

        event = anyio.Event()
        token = anyio.lowlevel.current_token()
        loop_thread = threading.get_ident()

        def wake() -> None:
            if threading.get_ident() == loop_thread:
                event.set()
            else:
                anyio.from_thread.run_sync(event.set, token=token)

        with self._cond:
            if self._active == 0:
                return True
            self._idle_callbacks.append(wake)
        with anyio.move_on_after(timeout):
            await event.wait()
            return True
        return False


SERVER = ServerLog()
