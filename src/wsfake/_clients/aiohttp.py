"""Not served in memory yet: connections to routed addresses are stopped by the network guard."""

from __future__ import annotations

from types import ModuleType

from . import Dialer, Undo

NAME = "aiohttp"
MODULE = "aiohttp"
SUPPORTED = "not yet"


def install(module: ModuleType, dialer: Dialer) -> Undo:
    return lambda: None
