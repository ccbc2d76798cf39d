"""The TCP connection of asyncio clients, replaced where the library opens it.

A client module's wrapper decides where a connection goes (it knows the URL)
and marks the current context with the destination; the library's own code
then runs unchanged (its argument checks, ``ssl``/``server_hostname``
handling, host/port overrides, its proxy code) until it calls
``loop.create_connection``. The class-level hook on
:class:`asyncio.BaseEventLoop` serves that one call in memory: it checks the
arguments against ``create_connection``'s real signature (so a wrong keyword
fails as on the network), builds the library's protocol with
``protocol_factory()`` and connects it to an in-memory transport. When the
library goes through an HTTP proxy, that connection is the tunnel: the server
side answers its ``CONNECT`` as a proxy would. ``start_tls`` on an in-memory
transport returns it as it is (``wss://`` is served without TLS). Any other
call in the process goes to the original.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from .._asyncio_transport import AsyncioTransport
from . import Destination

_pending: ContextVar[Destination | None] = ContextVar("wsfake_pending_asyncio_connection", default=None)
_lock = threading.Lock()
_users = 0
_original: Any = None


@contextlib.contextmanager
def serving(destination: Destination) -> Iterator[None]:
    """While the block runs, the next ``loop.create_connection`` in this context goes to ``destination``."""
    token = _pending.set(destination)
    try:
        yield
    finally:
        _pending.reset(token)


@functools.cache
def signature_of(function: Callable[..., Any]) -> inspect.Signature:
    """``inspect.signature``, computed once per function."""
    return inspect.signature(function)


#: Argument shapes (function, positional count, keyword names) already bound without error.
_good_shapes: set[tuple[Callable[..., Any], int, frozenset[str]]] = set()


def check_arguments(function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Raise the TypeError ``function`` would raise for these arguments (an unknown keyword, say).

    Whether arguments bind depends only on how many are positional and which
    keywords are named, so a shape that bound once is not checked again.
    """
    shape = (function, len(args), frozenset(kwargs))
    if shape in _good_shapes:
        return
    try:
        signature_of(function).bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{function.__qualname__}() {exc}") from None
    if len(_good_shapes) < 1024:
        _good_shapes.add(shape)


async def open_transport(
    loop: asyncio.AbstractEventLoop, destination: Destination, protocol_factory: Callable[[], Any]
) -> tuple[AsyncioTransport, Any]:
    """Open ``destination`` in memory and connect ``protocol_factory()`` to it, as ``create_connection`` does."""
    pipe = await destination.open()
    protocol = protocol_factory()
    transport = AsyncioTransport(pipe, protocol, loop)
    protocol.connection_made(transport)
    return transport, protocol


async def _create_connection(self: asyncio.BaseEventLoop, protocol_factory: Any, *args: Any, **kwargs: Any) -> Any:
    destination = _pending.get()
    if destination is None or kwargs.get("sock") is not None:
        return await _original(self, protocol_factory, *args, **kwargs)
    check_arguments(_original, self, protocol_factory, *args, **kwargs)
    _pending.set(None)  # one connection per decision
    return await open_transport(self, destination, protocol_factory)


_create_connection.__name__ = "create_connection"
_create_connection.__qualname__ = "BaseEventLoop.create_connection"


async def _start_tls(self: asyncio.BaseEventLoop, transport: Any, protocol: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(transport, AsyncioTransport):
        check_arguments(_original_start_tls, self, transport, protocol, *args, **kwargs)
        transport.set_protocol(protocol)
        return transport  # served in memory: no TLS
    return await _original_start_tls(self, transport, protocol, *args, **kwargs)


_start_tls.__name__ = "start_tls"
_start_tls.__qualname__ = "BaseEventLoop.start_tls"
_original_start_tls: Any = None


def install_loop_hook() -> Callable[[], None]:
    """Install the hook on ``asyncio.BaseEventLoop.create_connection`` (reference-counted); returns the undo."""
    global _users, _original
    with _lock:
        if _users == 0:
            global _original_start_tls
            _original = vars(asyncio.BaseEventLoop)["create_connection"]
            _original_start_tls = vars(asyncio.BaseEventLoop)["start_tls"]
            _create_connection.__wrapped__ = _original  # type: ignore[attr-defined]
            asyncio.BaseEventLoop.create_connection = _create_connection  # type: ignore[method-assign]
            asyncio.BaseEventLoop.start_tls = _start_tls  # type: ignore[method-assign]
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
                asyncio.BaseEventLoop.create_connection = _original  # type: ignore[method-assign]
                asyncio.BaseEventLoop.start_tls = _original_start_tls  # type: ignore[method-assign]

    return undo


def hooked(loop: asyncio.AbstractEventLoop) -> bool:
    """True if ``loop.create_connection`` goes through the hook (uvloop's loops do not)."""
    return isinstance(loop, asyncio.BaseEventLoop)
