"""``patch_client``: make the real client libraries connect in memory.

Client hooks are installed once, when the first context is entered, and
removed exactly when the last one exits. While installed they ask the stack of
active networks (innermost first) where a URL goes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from ._exceptions import NoRoute
from ._network import PASS_THROUGH, Network, Route
from ._url import URL

_lock = threading.Lock()
_active: list[Network] = []
_undo: list[Callable[[], None]] = []


def _install_hooks() -> list[Callable[[], None]]:
    from ._clients import websockets_asyncio

    undo: list[Callable[[], None]] = []
    try:
        for install in (websockets_asyncio.install,):
            remove = install()
            if remove is not None:
                undo.append(remove)
    except BaseException:
        for remove in reversed(undo):
            remove()
        raise
    return undo


def _activate(network: Network) -> None:
    with _lock:
        if not _active:
            _undo.extend(_install_hooks())
        _active.append(network)


def _deactivate(network: Network) -> None:
    with _lock:
        for index in range(len(_active) - 1, -1, -1):
            if _active[index] is network:
                del _active[index]
                break
        if not _active:
            undo = list(reversed(_undo))
            _undo.clear()
            for remove in undo:
                remove()


def is_patched() -> bool:
    """True while at least one ``patch_client`` context is active."""
    return bool(_active)


def resolve(url: URL) -> tuple[Network, Route] | None:
    """Where ``url`` goes: a (network, route), None for the real network.

    Raises :class:`~wsfake.NoRoute` (a ``ConnectionRefusedError``) when no
    active network routes or passes it through.
    """
    for network in reversed(_active):
        found = network.resolve(url)
        if found is PASS_THROUGH:
            return None
        if isinstance(found, Route):
            return network, found
    routes = [r for network in reversed(_active) for r in network.describe_routes()]
    raise NoRoute(str(url), routes)


class patch_client:
    """Route the client libraries' connections to in-memory servers.

    ``patch_client(target)`` serves every ws:// and wss:// URL with ``target``;
    ``patch_client({"ws://localhost:8000/*": app, ...})`` routes by pattern;
    ``patch_client()`` yields an empty :class:`Network` to add routes to. Use it
    as ``with`` or ``async with``; the ``async with`` form also waits for the
    server side to finish and runs the ASGI lifespan shutdown. Server-side
    exceptions are raised on exit unless ``raise_server_errors=False``.
    """

    def __init__(
        self,
        target: Any = None,
        /,
        *,
        network: Network | None = None,
        raise_server_errors: bool = True,
        **network_options: Any,
    ) -> None:
        if network is not None and network_options:
            raise TypeError("pass network options to Network(...) or to patch_client(...), not both")
        self.network = network or Network(raise_server_errors=raise_server_errors, **network_options)
        if network is not None:
            self.network.raise_server_errors = raise_server_errors
        if isinstance(target, Mapping):
            for pattern, routed in target.items():
                self.network.route(pattern, routed)
        elif target is not None:
            self.network.route_all(target)
        self._entered = False

    def _enter(self) -> Network:
        if self._entered:
            raise RuntimeError("this patch_client() context is already active; create a new one to nest")
        self._entered = True
        _activate(self.network)
        return self.network

    def __enter__(self) -> Network:
        return self._enter()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.network.close()
        finally:
            self._entered = False
            _deactivate(self.network)
        if exc is None or isinstance(exc, Exception):
            self.network.raise_errors()

    async def __aenter__(self) -> Network:
        return self._enter()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.network.aclose()
        finally:
            self._entered = False
            _deactivate(self.network)
        if exc is None or isinstance(exc, Exception):
            self.network.raise_errors()
