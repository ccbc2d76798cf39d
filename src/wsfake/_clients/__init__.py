"""Client library adapters: one module per library, all of the same shape, registered here.

Each module has ``NAME`` (shown in docs and errors), ``MODULE`` (the library
module whose import makes the hook applicable), ``SUPPORTED`` (the versions it is
tested with) and ``install(module, dialer) -> undo``: it installs a class-level
hook that catches every import style, builds the library's own connection over
an in-memory end for routed addresses, and returns a function that undoes
exactly what it did. Hooks are applied when the library is imported (at once if
it already is), so wsfake imports nothing of a library the code under test does
not use.

Modules get a :class:`Dialer` from the patch layer and never import it: the
dialer is how they ask where an address goes and open the in-memory connection.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from .._pipe import Pipe
from .._url import URL

Undo = Callable[[], None]

#: The adapters, in the order their hooks are installed.
MODULES = (
    "websockets_asyncio",
    "websockets_legacy",
    "websockets_sync",
    "websockets_trio",
    "aiohttp",
    "websocket_client",
    "httpx_ws",
    "trio_websocket",
)


class Destination(Protocol):
    """Where a routed connection goes: an in-memory server."""

    url: URL

    async def open(self) -> Pipe:
        """Open the connection on the running loop (asyncio or trio)."""
        ...

    def open_from_thread(self, make_end: Callable[[Pipe], Any], timeout: float | None) -> Any:
        """Open the connection from a thread, served on the network's background loop.

        ``make_end(pipe)`` runs on that loop and builds the client end; its result is returned.
        """
        ...


class Dialer(Protocol):
    """What the patch layer offers client modules."""

    def resolve(self, url: URL) -> Destination | None:
        """The destination of a full URL; None: use the real network; raises NoRoute when nothing serves it."""
        ...

    def resolve_address(self, scheme: str | None, host: str, port: int, path: str = "/") -> Destination | None:
        """Like :meth:`resolve` for a connection whose request path the hook does not know yet."""
        ...

    def allow_real(self, host: str, port: int) -> contextlib.AbstractContextManager[None]:
        """Let a deliberate real connection to ``host:port`` (a pass-through) past the network guard."""
        ...


class ClientModule(Protocol):
    NAME: str
    MODULE: str
    SUPPORTED: str

    def install(self, module: Any, dialer: Dialer) -> Undo: ...


def adapters() -> Iterator[ClientModule]:
    for name in MODULES:
        module: Any = importlib.import_module(f"{__name__}.{name}")
        yield module
