"""Trace helpers shared by the drivers of the ``websockets`` client family (asyncio, legacy, sync, trio)."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import websockets
from runner import Trace, picked_headers, qualified


def describe(exc: BaseException) -> list[Any]:
    """A websockets exception as its class and the attributes a user can observe."""
    name = qualified(exc)
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        frames = [None if f is None else [f.code, f.reason] for f in (exc.rcvd, exc.sent)]
        return [name, *frames, exc.rcvd_then_sent]
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        response = exc.response
        return [name, response.status_code, bytes(response.body or b"").decode("latin-1"), _headers(response)]
    status_code = getattr(exc, "status_code", None)
    if isinstance(status_code, int):  # the legacy client's InvalidStatusCode
        return [name, status_code, picked_headers(exc.headers.raw_items())]  # type: ignore[attr-defined]
    if isinstance(exc, OSError):
        return [name, exc.errno]
    return [name, str(exc)]


def _headers(response: Any) -> dict[str, list[str]]:
    return picked_headers(response.headers.raw_items())


def opened(trace: Trace, ws: Any) -> None:
    response = ws.response
    trace.add("open", response.status_code, ws.subprotocol, _headers(response))


def opened_legacy(trace: Trace, ws: Any) -> None:
    """The legacy client keeps the response headers, not the response (its status is always 101)."""
    trace.add("open", ws.subprotocol, picked_headers(ws.response_headers.raw_items()))


def closed(trace: Trace, ws: Any) -> None:
    # close_code lives on the connection from websockets 15, on .protocol before.
    source = ws if hasattr(ws, "close_code") else ws.protocol
    trace.add("closed", source.close_code, source.close_reason)


def raised(trace: Trace, exc: BaseException) -> None:
    trace.add("raised", *describe(exc))


class PingCounter(logging.Handler):
    """Counts the pings a websockets client receives, from its debug log (which names every frame).

    ``with PingCounter(trace) as logger:`` gives a logger to pass as ``logger=``; ``pings`` holds the count.
    """

    def __init__(self, trace: Trace) -> None:
        super().__init__(logging.DEBUG)
        self.pings = 0
        self.logger = logging.getLogger(f"differential.pings.{id(trace)}")

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("< PING"):
            self.pings += 1

    def __enter__(self) -> logging.Logger:
        self.logger.addHandler(self)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        return self.logger

    def __exit__(self, *exc_info: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.logger.removeHandler(self)
