"""Fixtures for the whole suite (tests/ and examples/): the socket guard and the anyio backends."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class SocketOpened(AssertionError):
    """An in-memory test created an internet socket."""


_real_init = socket.socket.__init__
_in_socketpair = threading.local()
_real_socketpair = socket.socketpair


def _guarded_init(self: socket.socket, family: Any = -1, *args: Any, **kwargs: Any) -> None:
    resolved = socket.AF_INET if family == -1 else family
    if resolved in (socket.AF_INET, socket.AF_INET6) and not getattr(_in_socketpair, "active", False):
        raise SocketOpened(
            "this test created an AF_INET/AF_INET6 socket: wsfake's in-memory path must not touch the network "
            "(mark the test with @pytest.mark.network if it is a loopback comparison)"
        )
    _real_init(self, family, *args, **kwargs)


def _guarded_socketpair(*args: Any, **kwargs: Any) -> Any:
    # Event loops build their wake-up channel with socketpair(); on Windows that is
    # an AF_INET pair on loopback. It is part of the loop, not of wsfake.
    _in_socketpair.active = True
    try:
        return _real_socketpair(*args, **kwargs)
    finally:
        _in_socketpair.active = False


@pytest.fixture(autouse=True)
def socket_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test that opens an internet socket, unless it is marked ``network``."""
    if request.node.get_closest_marker("network"):
        yield
        return
    socket.socket.__init__ = _guarded_init  # type: ignore[method-assign]
    socket.socketpair = _guarded_socketpair
    try:
        yield
    finally:
        socket.socket.__init__ = _real_init  # type: ignore[method-assign]
        socket.socketpair = _real_socketpair


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start every session (not each xdist worker) without the differential results of an earlier one."""
    if hasattr(session.config, "workerinput"):
        return
    results = Path(os.environ.get("WSFAKE_DIFFERENTIAL_RESULTS", "build/differential-results.json"))
    for path in [results, *results.parent.glob(f"{results.stem}.gw*.json")] if results.parent.exists() else ():
        path.unlink(missing_ok=True)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
