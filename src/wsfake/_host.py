"""Hosts: the event loops that run in-memory servers.

A connection's server side runs on one :class:`Host`, normally the loop of the
client that opened it (asyncio or trio), so the app sees the same loop the test
runs on. Threaded clients have no loop of their own; their servers run on a
:class:`PortalHost`, an asyncio loop in a background thread owned by the network.

A host offers what the pipe and the server side need from a loop: callbacks in a
later iteration (``call_soon``), from other threads too (``call_soon_threadsafe``),
timers on the loop's clock (``call_later``), tasks started without a task group
(``spawn``) and the loop's native event class.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

Callback = Callable[[], object]


class EventLike(Protocol):
    """The part of ``asyncio.Event`` / ``trio.Event`` wsfake uses."""

    def set(self) -> object: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> object: ...


class Waiter(Protocol):
    """A one-shot wake-up for a single waiting task: ``set`` wakes it (at once if set before)."""

    def set(self) -> object: ...

    def wait(self) -> Awaitable[object]: ...


class Timer(Protocol):
    def cancel(self) -> object: ...


class HostGone(RuntimeError):
    """The event loop behind a host has finished; nothing can run on it any more."""


def current_backend() -> str | None:
    """``"asyncio"`` or ``"trio"`` for the loop running in this thread, None if there is none."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    try:
        import trio
    except ImportError:
        return None
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return None
    return "trio"


class Spawned:
    """A task started by :meth:`Host.spawn`: cancellable, and awaitable from its own loop."""

    __slots__ = ("_cancel", "_waiters", "done", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._cancel: Callback = _nothing
        self.done = False
        self._waiters: list[Callback] = []

    def cancel(self) -> None:
        """Ask the task to stop: it is cancelled at its next checkpoint."""
        if not self.done:
            self._cancel()

    def add_done_callback(self, callback: Callback) -> None:
        if self.done:
            callback()
        else:
            self._waiters.append(callback)

    def _finish(self) -> None:
        self.done = True
        waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    async def wait(self) -> None:
        """Wait until the task has finished (call from the task's own loop)."""
        if self.done:
            return
        import anyio

        event = anyio.Event()
        self._waiters.append(event.set)
        await event.wait()


def _nothing() -> None:
    pass


class Host:
    """An event loop that runs server tasks and pipe callbacks."""

    backend: str
    #: Identifies the loop: the asyncio loop object or the trio token.
    key: object

    def call_soon(self, callback: Callback) -> None:
        """Run ``callback`` in a later iteration of the loop (from the loop's own thread)."""
        raise NotImplementedError

    def call_soon_threadsafe(self, callback: Callback) -> None:
        """Like :meth:`call_soon`, from any thread; :class:`HostGone` if the loop has finished."""
        raise NotImplementedError

    def call_later(self, delay: float, callback: Callback) -> Timer:
        """Run ``callback`` after ``delay`` seconds of the loop's clock."""
        raise NotImplementedError

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]], name: str) -> Spawned:
        """Start ``fn()`` as a task on this loop; ``fn`` must not raise (tasks record their own errors)."""
        raise NotImplementedError

    def event(self) -> EventLike:
        """A new event of the loop's native class."""
        raise NotImplementedError

    def waiter(self) -> Waiter:
        """A wake-up for one waiting task (cheaper than an event on asyncio: a bare future)."""
        return self.event()

    def time(self) -> float:
        """The loop's clock."""
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        """False once the loop has finished."""
        raise NotImplementedError

    def in_loop_thread(self) -> bool:
        """True when called from the thread that runs this loop."""
        raise NotImplementedError

    def run_blocking(self, fn: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        """Run ``fn()`` on this loop from another thread and wait for its result."""
        raise NotImplementedError


class _FutureWaiter:
    """A :class:`Waiter` on one asyncio future (the waiting task's cancellation cancels it)."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self._future = future

    def set(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        return self._future


class AsyncioHost(Host):
    """A host on an asyncio event loop."""

    backend = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.key = loop
        self.call_soon = loop.call_soon  # type: ignore[method-assign,assignment]
        self._thread_id: int | None = threading.get_ident() if loop.is_running() else None

    def call_soon_threadsafe(self, callback: Callback) -> None:
        try:
            self.loop.call_soon_threadsafe(callback)
        except RuntimeError as exc:  # the loop is closed
            raise HostGone(str(exc)) from None

    def call_later(self, delay: float, callback: Callback) -> Timer:
        return self.loop.call_later(delay, callback)

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]], name: str) -> Spawned:
        spawned = Spawned(name)

        async def run() -> None:
            try:
                await fn()
            finally:
                spawned._finish()

        task = self.loop.create_task(run(), name=name)
        spawned._cancel = task.cancel
        return spawned

    def event(self) -> EventLike:
        return asyncio.Event()

    def waiter(self) -> Waiter:
        return _FutureWaiter(self.loop.create_future())

    def time(self) -> float:
        return self.loop.time()

    @property
    def alive(self) -> bool:
        return not self.loop.is_closed()

    def in_loop_thread(self) -> bool:
        if self._thread_id is None:
            return False
        return threading.get_ident() == self._thread_id

    def run_blocking(self, fn: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        async def call() -> Any:
            return await fn()

        try:
            future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        except RuntimeError as exc:
            raise HostGone(str(exc)) from None
        return future.result(timeout)


class TrioHost(Host):
    """A host on a trio run."""

    backend = "trio"

    def __init__(self) -> None:
        import trio

        self._trio = trio
        self.token = trio.lowlevel.current_trio_token()
        self.key = self.token
        self._thread_id = threading.get_ident()
        self.call_soon = self.token.run_sync_soon  # type: ignore[method-assign,assignment]
        self._alive = True

    def call_soon_threadsafe(self, callback: Callback) -> None:
        try:
            self.token.run_sync_soon(callback)
        except self._trio.RunFinishedError as exc:
            self._alive = False
            raise HostGone(str(exc)) from None

    def call_later(self, delay: float, callback: Callback) -> Timer:
        trio = self._trio
        scope = trio.CancelScope()

        async def sleep_then_call() -> None:
            with scope:
                await trio.sleep(delay)
                callback()

        trio.lowlevel.spawn_system_task(sleep_then_call, name="wsfake timer")
        timer: Timer = scope
        return timer

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]], name: str) -> Spawned:
        trio = self._trio
        spawned = Spawned(name)
        scope = trio.CancelScope()

        async def run() -> None:
            try:
                with scope:
                    await fn()
            finally:
                spawned._finish()

        trio.lowlevel.spawn_system_task(run, name=name)
        spawned._cancel = scope.cancel
        return spawned

    def event(self) -> EventLike:
        return self._trio.Event()

    def time(self) -> float:
        return float(self._trio.current_time())

    @property
    def alive(self) -> bool:
        if self._alive:
            try:
                self.token.run_sync_soon(_nothing)
            except self._trio.RunFinishedError:
                self._alive = False
        return self._alive

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    def run_blocking(self, fn: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        import trio

        return trio.from_thread.run(fn, trio_token=self.token)


class PortalHost(AsyncioHost):
    """An asyncio loop in a background thread, for servers of threaded clients.

    Started on first need by the network and stopped when its context exits
    (:meth:`stop`), so no thread outlives a ``patch_client`` block.
    """

    def __init__(self) -> None:
        from anyio.from_thread import start_blocking_portal

        self._stack = contextlib.ExitStack()
        self.portal = self._stack.enter_context(start_blocking_portal("asyncio", name="wsfake server loop"))
        loop, thread_id = self.portal.call(_loop_and_thread)
        super().__init__(loop)
        self._thread_id = thread_id

    def run_blocking(self, fn: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        if timeout is None:
            return self.portal.call(fn)
        return super().run_blocking(fn, timeout)

    def stop(self) -> None:
        """Stop the loop and join its thread (tasks still running are cancelled)."""
        self._stack.close()


async def _loop_and_thread() -> tuple[asyncio.AbstractEventLoop, int]:
    return asyncio.get_running_loop(), threading.get_ident()


def current_host_key() -> object | None:
    """The key of the loop running in this thread (see :attr:`Host.key`), None if there is none."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    try:
        import trio
    except ImportError:
        return None
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


def new_host_for_current_loop() -> Host:
    """A host for the loop running in this thread (asyncio or trio)."""
    backend = current_backend()
    if backend == "asyncio":
        return AsyncioHost(asyncio.get_running_loop())
    if backend == "trio":
        return TrioHost()
    raise RuntimeError("wsfake needs a running asyncio or trio event loop here")
