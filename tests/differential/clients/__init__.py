"""One module per client library: each defines ``CLIENT``, a :class:`runner.Client` with its drivers.

A module whose library is not installed is skipped.
"""

from __future__ import annotations

import importlib

from runner import Client

MODULES = (
    "websockets_asyncio",
    "websockets_legacy",
    "websockets_sync",
    "websockets_trio",
    "aiohttp",
    "websocket_client",
    "httpx_ws",
    "trio_websocket",
    "raw",
)


def clients() -> list[Client]:
    found = []
    for name in MODULES:
        try:
            module = importlib.import_module(f"clients.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"clients.{name}" or not exc.name or not exc.name.startswith("clients"):
                continue  # no drivers for this client yet, or its library is not installed
            raise
        found.append(module.CLIENT)
    return found
