"""The TCP connection of trio clients, replaced where the library opens it.

As for asyncio (see ``_asyncio.py``): a client module's wrapper decides where a
connection goes and marks the current context; the library's own code runs
until it calls ``trio.open_tcp_stream`` (or ``trio.open_ssl_over_tcp_stream``),
which the hook answers with an in-memory stream after checking the arguments
against the real function's signature. Unmarked calls go to trio.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

if sys.version_info < (3, 11):  # pragma: no cover - Python 3.10
    from exceptiongroup import ExceptionGroup

from .._trio_stream import trio_stream
from . import Destination
from ._asyncio import check_arguments

_pending: ContextVar[Destination | None] = ContextVar("wsfake_pending_trio_connection", default=None)
_lock = threading.Lock()
_users = 0
_originals: dict[str, Any] = {}


@contextlib.contextmanager
def serving(destination: Destination) -> Iterator[None]:
    """While the block runs, the next TCP stream opened in this context goes to ``destination``."""
    token = _pending.set(destination)
    try:
        yield
    finally:
        _pending.reset(token)


async def open_stream(destination: Destination) -> Any:
    """An in-memory trio stream to ``destination``."""
    return trio_stream(await destination.open())


@contextlib.contextmanager
def refused_as_trio(host: str | bytes, port: int) -> Iterator[None]:
    """Raise a refusal in the block (no route, a refusal fault) as ``trio.open_tcp_stream`` reports a closed port.

    trio tries every address of the host and, when all fail, raises
    ``OSError("all attempts to connect to HOST:PORT failed")`` from an
    exception group of the individual errors.
    """
    try:
        yield
    except ConnectionRefusedError as exc:
        text = host.decode("ascii") if isinstance(host, bytes) else str(host)
        address = f"[{text}]:{port}" if ":" in text else f"{text}:{port}"
        message = f"all attempts to connect to {address} failed"
        raise OSError(message) from ExceptionGroup(message, [exc])


def _hook(name: str) -> Callable[..., Any]:
    async def hooked(*args: Any, **kwargs: Any) -> Any:
        original = _originals[name]
        destination = _pending.get()
        if destination is None:
            return await original(*args, **kwargs)
        check_arguments(original, *args, **kwargs)
        _pending.set(None)
        return await open_stream(destination)

    hooked.__name__ = hooked.__qualname__ = name
    return hooked


def install_trio_hook() -> Callable[[], None]:
    """Hook ``trio.open_tcp_stream`` and ``trio.open_ssl_over_tcp_stream`` (reference-counted); returns the undo."""
    import trio

    global _users
    with _lock:
        if _users == 0:
            for name in ("open_tcp_stream", "open_ssl_over_tcp_stream"):
                _originals[name] = getattr(trio, name)
                setattr(trio, name, _hook(name))
        _users += 1
    done = False

    def undo() -> None:
        global _users
        nonlocal done
        with _lock:
            if done:
                return
            done = True
            _users -= 1
            if _users == 0:
                for name, original in _originals.items():
                    setattr(trio, name, original)
                _originals.clear()

    return undo
