"""Checked by ``mypy --strict`` (CI): apps and handlers as users annotate them are accepted as targets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import wsfake


async def dict_app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
    """An ASGI app annotated with a plain dict scope."""


async def starlette_style_app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """An ASGI app annotated as Starlette annotates its own."""


async def handler(ws: wsfake.ServerConnection) -> None:
    await ws.send(await ws.recv())


def targets() -> list[wsfake.Target]:
    network = wsfake.Network()
    network.route("ws://localhost:8000/a", dict_app)
    network.route("ws://localhost:8000/b", starlette_style_app)
    network.route("ws://localhost:8000/c", handler)
    with wsfake.patch_client({"ws://localhost:8001/*": dict_app}):
        pass
    return [wsfake.ASGI(dict_app), wsfake.ASGI(starlette_style_app), wsfake.Handler(handler)]
