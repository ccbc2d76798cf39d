"""The differential scenarios, server side: which server code runs, at which path, with which options.

A scenario names a behaviour and sets up the real server for it: a handler under
``websockets.serve`` or an ASGI app under uvicorn (each of its WebSocket
implementations), and the same target under wsfake. What the client does is
written once per client library in ``clients/<library>.py``, as a driver for
the scenario's name; a client runs the scenarios its API can express.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from servers import deny, deny_503_once


@dataclass
class Scenario:
    """The server side of one behaviour to compare."""

    name: str
    description: str
    kind: str  # "handler" (websockets.serve) or "asgi" (uvicorn)
    path: str
    #: Handler targets: websockets.serve / wsfake.Handler options. ASGI targets: uvicorn Config options
    #: (ws_max_size, ws_ping_interval, ...), mapped to wsfake.ASGI's by ``asgi_options``.
    options: dict[str, Any] = field(default_factory=dict)
    timeout: float = 15.0


SCENARIOS: dict[str, Scenario] = {}

#: uvicorn's Config options and wsfake.ASGI's names for them.
ASGI_OPTIONS = {
    "ws_max_size": "max_size",
    "ws_ping_interval": "ping_interval",
    "ws_ping_timeout": "ping_timeout",
    "server_header": "server_header",
    "date_header": "date_header",
}


def asgi_options(options: dict[str, Any]) -> dict[str, Any]:
    """wsfake.ASGI keyword arguments for a scenario's uvicorn options."""
    mapped = {ASGI_OPTIONS[name]: value for name, value in options.items() if name in ASGI_OPTIONS}
    if "ws_per_message_deflate" in options:
        mapped["compression"] = "deflate" if options["ws_per_message_deflate"] else None
    return mapped


def handler_scenario(name: str, description: str, path: str, **options: Any) -> None:
    assert name not in SCENARIOS, name
    SCENARIOS[name] = Scenario(name, description, "handler", path, options)


def asgi_scenario(name: str, description: str, path: str, **options: Any) -> None:
    assert name not in SCENARIOS, name
    SCENARIOS[name] = Scenario(name, description, "asgi", path, options)


# Handler targets (websockets.serve)

handler_scenario("h_text_echo", "text echo", "/echo")
handler_scenario("h_binary_echo", "binary echo", "/echo")
handler_scenario("h_empty_messages", "empty text and binary messages", "/echo")
handler_scenario("h_under_max_size", "client message just under the server's max_size", "/echo", max_size=1000)
handler_scenario("h_at_max_size", "client message at the server's max_size", "/echo", max_size=1000)
handler_scenario("h_over_max_size", "client message over the server's max_size (1009)", "/echo", max_size=1000)
handler_scenario(
    "h_over_client_max_size", "server message over the client's max_size (client sends 1009)", "/big?size=2000"
)
handler_scenario(
    "h_fragmented_client_sends", "fragmented sends from the client, read with recv_streaming", "/streaming"
)
handler_scenario(
    "h_fragmented_server_sends", "fragmented sends from the server (sync and async iterables)", "/fragments"
)
handler_scenario("h_client_ping", "client ping is answered with a pong", "/echo")
handler_scenario("h_server_ping", "server ping is answered by the client", "/ping")
handler_scenario("h_keepalive", "keepalive with a short ping_interval on both sides", "/echo", ping_interval=0.02)
for _code, _reason in [(1000, ""), (1001, "going away"), (1011, "oops"), (3000, "registered"), (4999, "last private")]:
    handler_scenario(
        f"h_server_close_{_code}", f"server closes with {_code}", f"/close?code={_code}&reason={quote(_reason)}"
    )
handler_scenario(
    "h_server_close_unicode", "server close reason with non-ASCII text", "/close?code=4000&reason=%C3%BC%E2%9C%93"
)
handler_scenario(
    "h_server_close_long_reason", "server close reason of 123 bytes (the limit)", "/close?code=4000&reason=" + "r" * 123
)
handler_scenario("h_client_close_1000", "client closes with 1000; the handler observes it", "/observe")
handler_scenario("h_client_close_4000", "client closes with 4000 and a reason", "/observe")
handler_scenario("h_double_close", "client closes twice", "/observe")
handler_scenario("h_context_exit_on_error", "exit of `async with` on an exception closes with 1011", "/observe")
handler_scenario("h_handler_returns", "handler returns: close 1000", "/return")
handler_scenario("h_handler_raises", "handler raises: close 1011", "/raise")
handler_scenario("h_server_abort", "server aborts the transport: 1006", "/abort")
handler_scenario("h_invalid_utf8", "server sends invalid UTF-8 in a text frame: 1007", "/invalid_utf8")
handler_scenario(
    "h_burst_before_read", "messages sent right after the handshake, before the client reads", "/burst?n=30"
)
handler_scenario(
    "h_subprotocol", "subprotocol negotiation: the server's preference wins", "/subprotocol", subprotocols=["v2", "v1"]
)
handler_scenario("h_no_common_subprotocol", "no common subprotocol: HTTP 400", "/subprotocol", subprotocols=["v2"])
handler_scenario(
    "h_missing_subprotocol",
    "client offers no subprotocol to a server that requires one: HTTP 400",
    "/subprotocol",
    subprotocols=["v2"],
)
handler_scenario("h_deny_403", "process_request denies with 403", "/deny403", process_request=deny)
handler_scenario("h_deny_404", "process_request answers 404 with a body and a header", "/deny404", process_request=deny)
handler_scenario(
    "h_request_headers", "request headers: custom, duplicated, Origin, User-Agent, Authorization", "/headers"
)
handler_scenario("h_query_and_path", "query string and percent-encoded path", "/path/a%20b/%C3%A9?x=1&y=%20")
handler_scenario("h_deflate_large", "permessage-deflate negotiated, large compressible message", "/echo")
handler_scenario("h_no_deflate_client", "compression disabled by the client", "/echo")
handler_scenario("h_no_deflate_server", "compression disabled by the server", "/echo", compression=None)
handler_scenario("h_concurrent", "50 concurrent connections", "/echo")
handler_scenario(
    "h_reconnect_after_503",
    "reconnect loop: 503 first, then accepted",
    "/echo?reconnect",
    process_request=deny_503_once,
)
handler_scenario(
    "h_open_timeout",
    "open_timeout when the server never completes the handshake",
    "/hang",
    process_request=deny,
    open_timeout=0.5,
)
handler_scenario("h_close_with_queued_messages", "close while messages are queued both ways", "/slow?delay=0.05")
handler_scenario(
    "h_backpressure",
    "a handler that does not read at first while the client sends more than the buffers hold",
    "/count?n=256&delay=0.2",
)
handler_scenario("h_invalid_utf8_from_client", "invalid UTF-8 from the client: 1007 with websockets' reason", "/echo")
handler_scenario(
    "h_invalid_request_line",
    "a request line that is not valid HTTP: websockets.serve closes without answering",
    "/echo bad",
)

# ASGI targets (uvicorn, each WebSocket implementation)

asgi_scenario("a_invalid_request_line", "ASGI: a request line that is not valid HTTP: uvicorn answers 400", "/echo bad")
asgi_scenario("a_echo", "ASGI: text and binary echo; disconnect seen by the app", "/echo")
asgi_scenario("a_close_before_accept", "ASGI: close before accept is HTTP 403", "/deny")
asgi_scenario("a_denial_response", "ASGI: denial response 404 with body and headers", "/http404")
asgi_scenario("a_exception_before_accept", "ASGI: exception before accept is HTTP 500", "/raise_before")
asgi_scenario("a_return_before_accept", "ASGI: return before accept is HTTP 500", "/return_before")
asgi_scenario("a_exception_after_accept", "ASGI: exception after accept drops the connection (1006)", "/raise_after")
asgi_scenario(
    "a_return_after_accept", "ASGI: return after accept without close drops the connection (1006)", "/return_after"
)
asgi_scenario(
    "a_accept_subprotocol_headers",
    "ASGI: accept with a subprotocol and extra headers",
    "/echo?subprotocol=v2&header=yes",
)
asgi_scenario(
    "a_no_common_subprotocol", "ASGI: no common subprotocol, the app accepts without one", "/echo?subprotocol="
)
asgi_scenario(
    "a_accept_unoffered_subprotocol",
    "ASGI: the app accepts a subprotocol the client did not offer",
    "/echo?subprotocol=v9",
)
for _code, _reason in [(1000, ""), (1001, "bye"), (1011, "server error"), (3000, "registered"), (4999, "private")]:
    asgi_scenario(
        f"a_app_close_{_code}", f"ASGI: the app closes with {_code}", f"/close?code={_code}&reason={quote(_reason)}"
    )
asgi_scenario(
    "a_close_reason_unicode", "ASGI: close reason with non-ASCII text", "/close?code=4000&reason=%C3%BC%E2%9C%93"
)
asgi_scenario("a_close_reason_long", "ASGI: close reason of 123 bytes", "/close?code=4000&reason=" + "r" * 123)
asgi_scenario("a_client_close_code", "ASGI: client closes with 4000 and a reason; the app sees it", "/echo")
asgi_scenario(
    "a_scope",
    "ASGI: scope (path decoding, raw_path, query, headers, subprotocols)",
    "/scope/r%C3%A9sum%C3%A9%20x?token=a%20b&x=1",
)
asgi_scenario("a_burst", "ASGI: messages sent right after accept, before the client reads", "/burst?n=30")
asgi_scenario("a_over_client_max_size", "ASGI: server message over the client's max_size", "/big?size=5000")
asgi_scenario("a_deflate_large", "ASGI: large compressible messages with permessage-deflate", "/echo")
asgi_scenario("a_no_deflate", "ASGI: compression disabled by the client", "/echo")
asgi_scenario("a_client_ping", "ASGI: client ping is answered", "/echo")
asgi_scenario("a_invalid_utf8_from_client", "ASGI: invalid UTF-8 from the client: 1007", "/echo")
asgi_scenario(
    "a_send_after_disconnect", "ASGI: send after the client disconnected raises an OSError", "/send_after_disconnect"
)
asgi_scenario("a_concurrent", "ASGI: 50 concurrent connections", "/echo")
asgi_scenario("a_open_timeout", "ASGI: open_timeout when the app never accepts", "/never_accept")
asgi_scenario(
    "a_backpressure", "ASGI: a slow app while the client sends more than the buffers hold", "/count?n=256&delay=0.2"
)
asgi_scenario("a_keepalive", "ASGI: keepalive with a short client ping_interval", "/echo")
