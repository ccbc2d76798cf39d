"""The network guard: no connection meant for wsfake leaves through the real network unseen.

While a patch is active, an audit hook watches every ``socket.connect`` and
``socket.getaddrinfo`` in the process. A connection (or a name lookup) to a
host and port that a route names explicitly (``ws://localhost:8000/...``) is
stopped with :class:`~wsfake.RealNetworkBlocked`, whatever library makes it:
the hooked client libraries never get there for routed URLs, so whoever does
is code wsfake does not serve in memory. Loopback names are one host (a route
for ``localhost`` also guards ``127.0.0.1`` and ``::1``).

Addresses a pass-through pattern names explicitly, and real connections a
client hook makes on purpose (plain HTTP through a hooked HTTP client, a
pass-through URL), are let through. Wildcard routes (``patch_client(app)``,
``ws://*:*/*``) cannot tell a WebSocket from other traffic at this level and do
not block anything here; the client hooks still serve their URLs in memory.

Audit hooks cannot be removed, so the hook is added once, on first use, and
does nothing while no patch is active.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ._exceptions import RealNetworkBlocked
from ._url import LOOPBACK, normalize_host

_installed = False
_lock = threading.Lock()
_allowed: dict[tuple[str, int], int] = {}
_networks: Callable[[], list[Any]] = list
_INET = (socket.AF_INET, socket.AF_INET6)


def install(active_networks: Callable[[], list[Any]]) -> None:
    """Start guarding (once per process); ``active_networks()`` lists the active networks, innermost last."""
    global _installed, _networks
    _networks = active_networks
    with _lock:
        if _installed:
            return
        sys.addaudithook(_audit)
        _installed = True


@contextlib.contextmanager
def allow(host: str, port: int) -> Iterator[None]:
    """Let real connections to ``host:port`` through while the block runs (a deliberate pass-through)."""
    key = (_key_host(host), int(port))
    with _lock:
        _allowed[key] = _allowed.get(key, 0) + 1
    try:
        yield
    finally:
        with _lock:
            count = _allowed[key] - 1
            if count:
                _allowed[key] = count
            else:
                del _allowed[key]


def _key_host(host: str) -> str:
    host = normalize_host(host)
    return "localhost" if host in LOOPBACK else host


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        sock, address = args
        if getattr(sock, "family", None) not in _INET or not isinstance(address, tuple) or len(address) < 2:
            return
        host, port = address[0], address[1]
    elif event == "socket.getaddrinfo":
        host, port = args[0], args[1]
        if host is None:
            return
    else:
        return
    networks = _networks()
    if not networks:
        return
    check(networks, host, port)


def check(networks: list[Any], host: Any, port: Any) -> None:
    """Raise :class:`RealNetworkBlocked` if a route names ``host:port`` and nothing lets it through."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        port = int(port)
    except (TypeError, ValueError):
        return
    host = normalize_host(str(host))
    if (_key_host(host), port) in _allowed:
        return
    for network in reversed(networks):
        if any(pattern.names(host, port) for pattern in network._pass_through):
            return
        named = [repr(route.pattern) for route in network.routes if route.pattern.names(host, port)]
        if named:
            raise RealNetworkBlocked(host, port, named)
