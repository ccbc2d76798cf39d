"""``patch_client``: make the real client libraries connect in memory.

Client hooks are installed when the first context is entered (each when its
library is imported) and removed exactly when the last one exits, also when
the body raised. While installed they ask the stack of active networks
(innermost first) where an address goes, through the :class:`_Dialer` they
are given.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from types import ModuleType, TracebackType
from typing import Any

from . import _guard
from ._clients import Destination, adapters
from ._clients._lazy import when_imported
from ._exceptions import NoRoute
from ._network import PASS_THROUGH, Network, Route
from ._pipe import Pipe
from ._url import URL

_lock = threading.RLock()
_active: list[Network] = []
_undo: list[Callable[[], None]] = []


class _Destination:
    """A routed connection, served in memory by ``network``."""

    def __init__(self, network: Network, route: Route | None, url: URL) -> None:
        self.network = network
        self.route = route
        self.url = url

    async def open(self) -> Pipe:
        return await self.network.open(self.route, self.url)

    def open_from_thread(self, make_end: Callable[[Pipe], Any], timeout: float | None) -> Any:
        return self.network.open_from_thread(self.route, self.url, make_end, timeout)


class _Dialer:
    """What client modules may ask: where does an address go."""

    def resolve(self, url: URL) -> Destination | None:
        networks = active_networks()
        for network in reversed(networks):
            found = network.resolve(url)
            if found is PASS_THROUGH:
                return None
            if isinstance(found, Route):
                return _Destination(network, found, url)
        if _passes_unrouted(networks):
            return None
        raise NoRoute(str(url), _route_names(networks))

    def resolve_address(self, scheme: str | None, host: str, port: int, path: str = "/") -> Destination | None:
        networks = active_networks()
        for network in reversed(networks):
            found = network.claims(scheme, host, port)
            if found is PASS_THROUGH:
                return None
            if isinstance(found, Route):
                url = URL(scheme or "ws", host, port, path, "")
                return _Destination(network, None, url)
        if _passes_unrouted(networks):
            return None
        raise NoRoute(str(URL(scheme or "ws", host, port, path, "")), _route_names(networks))

    def allow_real(self, host: str, port: int) -> contextlib.AbstractContextManager[None]:
        return _guard.allow(host, port)


def _passes_unrouted(networks: list[Network]) -> bool:
    """Unrouted URLs use the real network only when every active network says so (the pytest fallback's)."""
    return bool(networks) and all(network.pass_unrouted for network in networks)


def _route_names(networks: list[Network]) -> list[str]:
    return [name for network in reversed(networks) for name in network.describe_routes()]


def active_networks() -> list[Network]:
    """The active networks, outermost first."""
    return list(_active)


def _install_hooks(undo: list[Callable[[], None]]) -> None:
    """Install every adapter's hook, each when its library is imported; their undos go to ``undo``.

    A library imported later, inside the patch, appends its undo then: ``undo``
    must be the list the last exit runs.
    """
    dialer = _Dialer()
    try:
        for adapter in adapters():

            def apply(module: ModuleType, adapter: Any = adapter) -> None:
                undo.append(adapter.install(module, dialer))

            undo.append(when_imported(adapter.MODULE, apply))
    except BaseException:
        for remove in reversed(undo):
            remove()
        undo.clear()
        raise


def _activate(network: Network) -> None:
    with _lock:
        if not _active:
            _guard.install(active_networks)
            _install_hooks(_undo)
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


class patch_client:
    """Route the client libraries' connections to in-memory servers.

    ``patch_client(target)`` serves every ws:// and wss:// URL with ``target``;
    ``patch_client({"ws://localhost:8000/*": app, ...})`` routes by pattern;
    ``patch_client()`` yields an empty :class:`Network` to add routes to. Use it
    as ``with`` or ``async with``; ``async with`` also waits for the server side
    to finish and runs the ASGI lifespan shutdown on the current loop.

    On exit, server-side exceptions are raised (one, or an ExceptionGroup)
    unless ``raise_server_errors=False``; if the body itself raised, its
    exception propagates unchanged and the server errors are attached to it as
    notes. Exceptions that only mirror the client's normal departure are
    reported as :class:`~wsfake.ClientDepartureWarning` (errors with
    ``raise_departure_errors=True``). Other keyword arguments go to
    :class:`Network`.
    """

    def __init__(
        self,
        target: Any = None,
        /,
        *,
        network: Network | None = None,
        raise_server_errors: bool = True,
        raise_departure_errors: bool = False,
        **network_options: Any,
    ) -> None:
        if network is not None and network_options:
            raise TypeError("pass network options to Network(...) or to patch_client(...), not both")
        self.network = network or Network(
            raise_server_errors=raise_server_errors, raise_departure_errors=raise_departure_errors, **network_options
        )
        if network is not None:
            self.network.raise_server_errors = raise_server_errors
            self.network.raise_departure_errors = raise_departure_errors
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
        self.network.report(exc)

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
        self.network.report(exc)
