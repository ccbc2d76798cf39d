"""Target detection and the errors for things that are not targets."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette

import wsfake
from wsfake._targets import as_target


async def handler(ws: Any) -> None:
    pass


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    pass


class ASGIClass:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


class HandlerClass:
    async def __call__(self, ws: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        (handler, wsfake.Handler),
        (asgi_app, wsfake.ASGI),
        (ASGIClass(), wsfake.ASGI),
        (HandlerClass(), wsfake.Handler),
        (FastAPI(), wsfake.ASGI),
        (Starlette(), wsfake.ASGI),
    ],
)
def test_kind_is_detected(obj: Any, kind: type) -> None:
    assert type(as_target(obj)) is kind


def test_explicit_wrappers_take_options() -> None:
    target = wsfake.Handler(handler, subprotocols=["a"], max_size=5)
    assert as_target(target) is target and target.options.subprotocols == ["a"] and target.max_size == 5
    with pytest.raises(TypeError, match="go to the wrapper itself"):
        as_target(target, max_size=1)
    assert as_target(asgi_app, lifespan=False).lifespan is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (42, "must be an ASGI app or an `async def handler"),
        (lambda ws: None, "not a coroutine function"),
        (lambda *args: None, "cannot tell whether"),
        (functools.partial(asgi_app, {}), "takes 2 positional arguments"),
    ],
)
def test_things_that_are_not_targets(obj: Any, message: str) -> None:
    with pytest.raises(wsfake.InvalidTarget, match=message) as info:
        as_target(obj)
    assert "wsfake.ASGI(app)" in str(info.value) or "ASGI app" in str(info.value)


def test_handler_options_reach_the_handler_wrapper() -> None:
    with pytest.raises(ValueError, match="unsupported compression"):
        wsfake.Handler(handler, compression="brotli")
    with pytest.raises(TypeError):
        wsfake.Network().route("ws://x/", asgi_app, subprotocols=["a"])
