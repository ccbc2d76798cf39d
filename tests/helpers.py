"""Helpers shared by the test modules (import them from here, not from conftest)."""

from __future__ import annotations

from collections.abc import Callable

import anyio


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait, one event-loop turn at a time, until ``condition()`` holds (fail after ``timeout``)."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0)
