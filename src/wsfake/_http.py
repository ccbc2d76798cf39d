"""HTTP handshake objects handed to handlers: request, response and headers.

With ``websockets`` installed these are its own ``Request``, ``Response`` and
``Headers`` classes, so ``process_request`` hooks written for
``websockets.serve`` work unchanged; otherwise small equivalents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any


class Headers:
    """A case-insensitive multi-dict of HTTP headers (mirrors websockets' ``Headers``)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        if len(values) > 1:
            raise KeyError(f"multiple {name!r} headers")
        return values[0]

    def get(self, name: str, default: Any = None) -> Any:
        values = self.get_all(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self._items if key.lower() == lowered]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key.lower() for key, _ in self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __setitem__(self, name: str, value: str) -> None:
        self._items.append((name, value))

    def raw_items(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)


@dataclass
class Request:
    """The opening handshake request (mirrors ``websockets.http11.Request``)."""

    path: str
    headers: Headers


@dataclass
class Response:
    """An HTTP response (mirrors ``websockets.http11.Response``)."""

    status_code: int
    reason_phrase: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


if not TYPE_CHECKING:
    try:
        from websockets.datastructures import Headers
        from websockets.http11 import Request, Response  # noqa: F401
    except ImportError:  # pragma: no cover - exercised in the no-websockets job
        pass


def make_headers(items: Iterable[tuple[str, str]]) -> Headers:
    headers = Headers()
    for name, value in items:
        headers[name] = value
    return headers


def response_parts(response: object) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body of whatever ``process_request`` returned.

    Accepts a ``Response`` (websockets' or wsfake's) or a ``(status, headers, body)``
    tuple whose headers are a mapping or ``(name, value)`` pairs.
    """
    if isinstance(response, tuple) and len(response) == 3:
        status, headers, body = response
    elif hasattr(response, "status_code") and hasattr(response, "headers"):
        status, headers, body = response.status_code, response.headers, getattr(response, "body", b"")
    else:
        raise TypeError(
            "process_request must return None, a Response (e.g. connection.respond(403, 'Forbidden\\n')) "
            f"or a (status, headers, body) tuple, not {type(response).__name__}"
        )
    if hasattr(headers, "raw_items"):
        pairs = list(headers.raw_items())
    elif isinstance(headers, dict):
        pairs = list(headers.items())
    else:
        pairs = list(headers or ())
    raw = [(_bytes(k), _bytes(v)) for k, v in pairs]
    body_bytes = body.encode() if isinstance(body, str) else bytes(body or b"")
    return int(status), raw, body_bytes


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")
