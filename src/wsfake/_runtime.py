"""The few event-loop primitives wsfake needs that anyio does not expose.

``call_soon`` runs a callback in a later iteration of the current loop; it is how
the pipe delivers bytes without re-entering the writer. ``spawn`` starts a server
task on the current loop without a task group, because connections are opened
from inside the client's own code, where no task group of ours is in scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

CallSoon = Callable[[Callable[[], None]], object]


class EventLike(Protocol):
    """The part of ``asyncio.Event`` / ``trio.Event`` wsfake uses."""

    def set(self) -> object: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> object: ...


EventFactory = Callable[[], EventLike]


def current_backend() -> str:
    """``"asyncio"`` or ``"trio"``: the event loop running the calling task."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    try:
        import trio

        trio.lowlevel.current_task()
    except (ImportError, RuntimeError):
        raise RuntimeError("wsfake needs a running asyncio or trio event loop here") from None
    return "trio"


def current_call_soon() -> CallSoon:
    """A function that schedules a callback on the current loop's next iteration."""
    if current_backend() == "asyncio":
        return asyncio.get_running_loop().call_soon
    import trio

    return trio.lowlevel.current_trio_token().run_sync_soon


def event_factory() -> EventFactory:
    """The current backend's native event class.

    ``anyio.Event()`` finds the backend on every creation; the per-message path
    creates events often enough for that to show, so connections pick the
    class once.
    """
    if current_backend() == "asyncio":
        return asyncio.Event
    import trio

    return trio.Event


def cancellation_check() -> Callable[[], Awaitable[None]]:
    """A cheap "deliver a pending cancellation" for the fast path of a read.

    On trio it is trio's own ``checkpoint_if_cancelled``. asyncio has no pending
    cancellation to deliver without suspending, so it is a no-op there; a
    reader that finds no data suspends anyway.
    """
    if current_backend() == "asyncio":
        return _no_check
    import trio

    return trio.lowlevel.checkpoint_if_cancelled


async def _no_check() -> None:
    return None


class Spawned:
    """A server task started by :func:`spawn`: cancellable and awaitable."""

    def __init__(self) -> None:
        self._cancel: Callable[[], object] = lambda: None
        self.done = False
        self._waiters: list[Callable[[], None]] = []

    def cancel(self) -> None:
        """Ask the task to stop (it is cancelled at its next checkpoint)."""
        if not self.done:
            self._cancel()

    def _finish(self) -> None:
        self.done = True
        for wake in self._waiters:
            wake()
        self._waiters.clear()

    async def wait(self) -> None:
        """Wait until the task has finished."""
        import anyio

        if self.done:
            return
        event = anyio.Event()
        self._waiters.append(event.set)
        await event.wait()


def spawn(fn: Callable[[], Coroutine[Any, Any, None]], name: str) -> Spawned:
    """Run ``fn()`` as a background task on the current loop.

    ``fn`` must not raise: server tasks record their own failures.
    """
    spawned = Spawned()

    async def run() -> None:
        try:
            await fn()
        finally:
            spawned._finish()

    if current_backend() == "asyncio":
        task = asyncio.get_running_loop().create_task(run(), name=name)
        spawned._cancel = task.cancel
    else:
        import trio

        cancel_scope = trio.CancelScope()

        async def run_in_scope() -> None:
            with cancel_scope:
                await run()

        trio.lowlevel.spawn_system_task(run_in_scope, name=name)
        spawned._cancel = cancel_scope.cancel
    return spawned
