"""The opening-handshake checks a real server makes, in its order and with its words.

Both real servers (``websockets.serve``, and uvicorn's default implementation,
which runs websockets' sans-I/O protocol) check an upgrade request the same way
and answer a bad one with ``Failed to open a WebSocket connection: <reason>.``.
wsproto validates the request too and stays the authority for what is accepted;
these checks decide which HTTP answer a refused request gets. With websockets
installed, the reasons are formatted by websockets' own exception classes, so
they read exactly as the installed release words them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")


@dataclass
class Refusal:
    """An HTTP answer instead of the upgrade."""

    status: int
    body: str
    headers: list[tuple[str, str]] = field(default_factory=list)


class _Headers:
    """Case-insensitive lookups over raw ``(name, value)`` pairs."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = list(items)

    def get_all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self._items if key.lower() == lowered]


def _reason(kind: str, *args: Any) -> str:
    """``str()`` of websockets' exception ``kind`` built with ``args``, or the same words without websockets."""
    try:
        from websockets import exceptions
    except ImportError:  # pragma: no cover - exercised in the no-websockets job
        exceptions = None  # type: ignore[assignment]
    cls = getattr(exceptions, kind, None) if exceptions is not None else None
    if cls is not None:
        try:
            return str(cls(*args))
        except TypeError:  # pragma: no cover - a release with another signature
            pass
    if kind == "InvalidMethod":
        return f"unsupported HTTP method: {args[0]}"
    if kind == "InvalidProtocol":
        return f"unsupported HTTP version: {args[0]}"
    name, value = args[0], args[1] if len(args) > 1 else None
    if kind == "InvalidOrigin":
        name, value = "Origin", args[0]
    if value is None:
        return f"missing {name} header"
    if value == "":
        return f"empty {name} header"
    return f"invalid {name} header: {value}"


def _tokens(values: Sequence[str]) -> list[str]:
    return [token.strip() for value in values for token in value.split(",") if token.strip()]


def failed(reason: str) -> str:
    return f"Failed to open a WebSocket connection: {reason}.\n"


def check_request(
    method: str,
    http_version: str,
    items: Iterable[tuple[str, str]],
    *,
    origins: Sequence[Any] | None = None,
) -> Refusal | None:
    """None if websockets' server would go on with this request; else its answer."""
    headers = _Headers(items)
    if method != "GET":
        refusal = Refusal(405, failed(_reason("InvalidMethod", method)))
        refusal.headers.append(("Allow", "GET"))
        return refusal
    if http_version != "HTTP/1.1":
        return Refusal(505, failed(_reason("InvalidProtocol", http_version)))
    connection = _tokens(headers.get_all("Connection"))
    if not any(value.lower() == "upgrade" for value in connection):
        return _upgrade_required(_reason("InvalidUpgrade", "Connection", ", ".join(connection) if connection else None))
    upgrade = _tokens(headers.get_all("Upgrade"))
    if not (len(upgrade) == 1 and upgrade[0].lower() == "websocket"):
        return _upgrade_required(_reason("InvalidUpgrade", "Upgrade", ", ".join(upgrade) if upgrade else None))
    keys = headers.get_all("Sec-WebSocket-Key")
    if not keys:
        return Refusal(400, failed(_reason("InvalidHeader", "Sec-WebSocket-Key")))
    if len(keys) > 1:
        return Refusal(400, failed(_reason("InvalidHeader", "Sec-WebSocket-Key", "multiple values")))
    try:
        raw_key = base64.b64decode(keys[0].encode(), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        # websockets chains the decoding error's own words after its reason.
        reason = _reason("InvalidHeaderValue", "Sec-WebSocket-Key", keys[0])
        return Refusal(400, failed(f"{reason}; {exc}"))
    if len(raw_key) != 16:
        return Refusal(400, failed(_reason("InvalidHeaderValue", "Sec-WebSocket-Key", keys[0])))
    versions = headers.get_all("Sec-WebSocket-Version")
    if not versions:
        return Refusal(400, failed(_reason("InvalidHeader", "Sec-WebSocket-Version")))
    if len(versions) > 1:
        return Refusal(400, failed(_reason("InvalidHeader", "Sec-WebSocket-Version", "multiple values")))
    if versions[0] != "13":
        return Refusal(400, failed(_reason("InvalidHeaderValue", "Sec-WebSocket-Version", versions[0])))
    if origins is not None:
        found = headers.get_all("Origin")
        if len(found) > 1:
            return Refusal(400, failed(_reason("InvalidHeader", "Origin", "multiple values")))
        origin = found[0] if found else None
        if not any(
            allowed == origin
            or (isinstance(allowed, re.Pattern) and origin is not None and allowed.fullmatch(origin) is not None)
            for allowed in origins
        ):
            return Refusal(403, failed(_reason("InvalidOrigin", origin)))
    return None


def _upgrade_required(reason: str) -> Refusal:
    body = (
        failed(reason)
        + "\nYou cannot access a WebSocket server directly with a browser. You need a WebSocket client.\n"
    )
    return Refusal(426, body, [("Upgrade", "websocket")])


def offered_subprotocols(items: Iterable[tuple[str, str]]) -> list[str]:
    """The subprotocols a request offers, in order (``Sec-WebSocket-Protocol`` headers, comma-split)."""
    return _tokens(_Headers(items).get_all("Sec-WebSocket-Protocol"))


def validate_subprotocols(subprotocols: object) -> None:
    """Reject what websockets' ``serve(subprotocols=...)`` rejects, with its messages."""
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols must be a list, not a str")
    if not isinstance(subprotocols, Sequence):
        raise TypeError("subprotocols must be a list")
    for subprotocol in subprotocols:
        if not isinstance(subprotocol, str) or not _TOKEN.fullmatch(subprotocol):
            raise ValueError(f"invalid subprotocol: {subprotocol}")


class NegotiationError(Exception):
    """No acceptable subprotocol: the handshake is answered with HTTP 400."""


def select_subprotocol(supported: Sequence[str], offered: Sequence[str]) -> str | None:
    """Pick a subprotocol the way ``websockets.serve`` does (the server's order wins)."""
    if not supported:
        return None
    if not offered:
        raise NegotiationError("missing subprotocol")
    for subprotocol in supported:
        if subprotocol in offered:
            return subprotocol
    raise NegotiationError("invalid subprotocol; expected one of " + ", ".join(supported))
