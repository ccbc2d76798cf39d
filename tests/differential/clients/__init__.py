"""One module per client library: each defines ``CLIENT``, a :class:`runner.Client` with its drivers.

A module whose library is not installed is skipped.
"""

from __future__ import annotations

import importlib

from runner import Client

MODULES = ("websockets_asyncio",)


def clients() -> list[Client]:
    found = []
    for name in MODULES:
        try:
            module = importlib.import_module(f"clients.{name}")
        except ImportError:
            continue
        found.append(module.CLIENT)
    return found
