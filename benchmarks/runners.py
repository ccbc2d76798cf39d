"""Run one setup: a server, a client driver and workloads, on a fresh event loop (or none).

Every run is checked for leaks once it is over: no thread, file descriptor or
(asyncio or trio) task may outlive it, so a setup cannot slow down the next.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager

import trio

from .clients import AsyncConnect, AsyncDriver, SyncConnect, SyncDriver
from .workloads import Sample, check

Results = dict[str, Sample]
Run = Callable[[], Results]
AsyncSteps = Mapping[str, Callable[[AsyncConnect], Awaitable[Sample]]]
SyncSteps = Mapping[str, Callable[[SyncConnect], Sample]]


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: the thread and task checks still apply
        return None


def leak_checked(run: Run) -> Run:
    """``run`` followed by a check that it left no thread or file descriptor behind."""

    def checked() -> Results:
        threads, fds = set(threading.enumerate()), _open_fds()
        results = run()
        left = [t.name for t in threading.enumerate() if t not in threads]
        check(not left, f"threads left running: {left}")
        after = _open_fds()
        check(fds is None or after is None or after <= fds, f"file descriptors left open: {fds} before, {after} after")
        return results

    return checked


def _check_no_asyncio_tasks() -> None:
    current = asyncio.current_task()
    left = [t.get_name() for t in asyncio.all_tasks() if t is not current]
    check(not left, f"asyncio tasks left running: {left}")


async def _steps(connect: AsyncConnect, steps: AsyncSteps) -> Results:
    return {name: await step(connect) for name, step in steps.items()}


def on_asyncio(server: Callable[[], AbstractAsyncContextManager[str]], driver: AsyncDriver, steps: AsyncSteps) -> Run:
    """``asyncio.run``: the server (in this loop or a thread), one client session, the steps in order."""

    async def body() -> Results:
        async with server() as base, driver.session(base) as connect:
            results = await _steps(connect, steps)
        _check_no_asyncio_tasks()
        return results

    return leak_checked(lambda: asyncio.run(body()))


def on_asyncio_alone(workload: Callable[[], Awaitable[Results]]) -> Run:
    """``asyncio.run`` of a workload that starts and stops servers itself (W0)."""

    async def body() -> Results:
        results = await workload()
        _check_no_asyncio_tasks()
        return results

    return leak_checked(lambda: asyncio.run(body()))


def on_trio(server: Callable[[], AbstractAsyncContextManager[str]], driver: AsyncDriver, steps: AsyncSteps) -> Run:
    """``trio.run``: as :func:`on_asyncio`, for trio clients."""

    async def body() -> Results:
        living = trio.lowlevel.current_statistics().tasks_living
        async with server() as base, driver.session(base) as connect:
            results = await _steps(connect, steps)
        left = trio.lowlevel.current_statistics().tasks_living - living
        check(left <= 0, f"trio tasks left running: {left} ({', '.join(_trio_task_names())})")
        return results

    return leak_checked(lambda: trio.run(body))


def _trio_task_names() -> list[str]:
    """The names of every living trio task (system tasks included), for a leak report."""
    names: list[str] = []
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        names.append(task.name)
        pending += [child for nursery in task.child_nurseries for child in nursery.child_tasks]
    return names


def on_threads(server: Callable[[], AbstractContextManager[str]], driver: SyncDriver, steps: SyncSteps) -> Run:
    """Plain synchronous code: the server in a background thread, the client in this one."""

    def body() -> Results:
        with server() as base, driver.session(base) as connect:
            return {name: step(connect) for name, step in steps.items()}

    return leak_checked(body)
