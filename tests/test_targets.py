"""Target detection and the errors for things that are not targets."""

from __future__ import annotations

import functools
import re
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


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"subprotocols": "chat"}, TypeError, "subprotocols must be a list, not a str"),
        ({"subprotocols": ["bad token"]}, ValueError, "invalid subprotocol: bad token"),
        ({"compression": "brotli"}, ValueError, "unsupported compression: brotli"),
        ({"ssl": object()}, TypeError, "does not take 'ssl': it configures the listening socket"),
        ({"port": 8000}, TypeError, "does not take 'port'"),
        ({"create_connection": object}, TypeError, "cannot take create_connection"),
        ({"extensions": [object()]}, TypeError, "cannot take custom extensions"),
        ({"no_such_option": 1}, TypeError, "unexpected keyword argument 'no_such_option'"),
        ({"max_queue": (1, 4)}, ValueError, "high must be greater than or equal to low"),
    ],
)
def test_handler_checks_its_arguments_as_serve_does(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        wsfake.Handler(handler, **kwargs)


def test_handler_takes_the_serve_options_that_mean_something_without_a_socket() -> None:
    import logging

    def hook(*args: Any) -> None:
        return None

    target = wsfake.Handler(
        handler,
        origins=["https://app.example", None],
        subprotocols=["v1"],
        select_subprotocol=hook,
        process_request=hook,
        process_response=hook,
        server_header="chat/1.0",
        open_timeout=None,
        ping_interval=None,
        ping_timeout=None,
        close_timeout=None,
        max_size=(1024, 256),
        max_queue=(8, 2),
        write_limit=(4096, 1024),
        logger=logging.getLogger("chat"),
    )
    assert target.conventions.server_header == b"chat/1.0"
    assert target.options.max_queue == (8, 2) and target.max_size == (1024, 256)
    assert target.options.logger.name == "chat"
    assert wsfake.Handler(handler, server_header=None).conventions.server_header is None
