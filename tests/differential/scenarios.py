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

from servers import (
    add_response_header,
    break_key,
    deny,
    deny_503_once,
    pick_last_subprotocol,
    raising_process_request,
    replace_response,
    strip_extensions,
)


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


# Protocol violations and abrupt ends, driven by the raw client (clients/raw.py)

_VIOLATIONS = {
    "unmasked_frame": "an unmasked frame from the client",
    "reserved_opcode": "a data frame with a reserved opcode",
    "reserved_control_opcode": "a control frame with a reserved opcode",
    "rsv_bits_without_extension": "RSV bits set without an extension",
    "control_frame_over_125": "a control frame over 125 bytes",
    "fragmented_control_frame": "a fragmented control frame",
    "close_code_999": "close code 999 on the wire",
    "close_code_1004": "close code 1004 on the wire",
    "close_code_1005": "close code 1005 on the wire",
    "close_code_5000": "close code 5000 on the wire",
    "close_one_byte_payload": "a close frame with a 1-byte payload",
    "continuation_without_start": "a continuation frame with no message in progress",
    "text_during_fragmented_message": "a new data frame while a fragmented message is unfinished",
    "invalid_utf8_close_reason": "a close reason that is not UTF-8",
}
for _name, _what in _VIOLATIONS.items():
    handler_scenario(f"h_{_name}", f"protocol violation: {_what}", "/echo")
    asgi_scenario(f"a_{_name}", f"ASGI: protocol violation: {_what}", "/hold")
handler_scenario("h_plain_http_get", "a GET without upgrade headers (a browser, a health check)", "/echo")
asgi_scenario("a_bad_key", "ASGI: an upgrade with an invalid Sec-WebSocket-Key: HTTP 400, the app never runs", "/echo")
handler_scenario("h_bad_key", "an upgrade with an invalid Sec-WebSocket-Key: HTTP 400", "/echo")
handler_scenario("h_client_vanishes", "the client's connection ends without a close frame", "/hold")
asgi_scenario(
    "a_client_vanishes", "ASGI: the client's connection ends without a close frame (the app sees 1005)", "/hold"
)

# Server options and hooks, as websockets.serve and uvicorn have them

handler_scenario("h_server_header_none", "server_header=None: no Server header", "/echo", server_header=None)
handler_scenario("h_server_header_custom", "server_header set to a custom value", "/echo", server_header="chat/2.0")
asgi_scenario(
    "a_server_header_off",
    "ASGI: server_header=False and date_header=False",
    "/echo",
    server_header=False,
    date_header=False,
)
handler_scenario(
    "h_over_max_size_deflate", "compressed client message over the server's max_size (1009)", "/echo", max_size=1000
)
asgi_scenario(
    "a_over_max_size", "ASGI: client message over ws_max_size: 1009, and the app hears 1009", "/hold", ws_max_size=1000
)
asgi_scenario("a_over_max_size_deflate", "ASGI: compressed client message over ws_max_size", "/hold", ws_max_size=1000)
asgi_scenario("a_keepalive_off", "ASGI: ws_ping_interval=0 sends no pings", "/hold?delay=0.3", ws_ping_interval=0)
asgi_scenario("a_keepalive_on", "ASGI: a short ws_ping_interval sends pings", "/hold?delay=0.3", ws_ping_interval=0.02)
handler_scenario("h_keepalive_none", "ping_interval=None sends no pings", "/hold?delay=0.2", ping_interval=None)
handler_scenario(
    "h_keepalive_zero", "ping_interval=0: pings as fast as pongs come back", "/hold?delay=0.2", ping_interval=0
)
asgi_scenario("a_close_nocode", "ASGI: websocket.close without a code: the client sees 1000", "/close_nocode")
asgi_scenario("a_close_reason_124", "ASGI: a close reason over 123 bytes", "/close_long_reason?len=124")
handler_scenario(
    "h_process_request_strips_extensions",
    "process_request removes the extension offer: no compression",
    "/echo",
    process_request=strip_extensions,
)
handler_scenario(
    "h_process_request_breaks_key",
    "process_request breaks Sec-WebSocket-Key: HTTP 400",
    "/echo",
    process_request=break_key,
)
handler_scenario(
    "h_process_request_raises", "process_request raises: HTTP 500", "/echo", process_request=raising_process_request
)
handler_scenario(
    "h_process_response_adds_header",
    "process_response adds a header to the 101",
    "/echo",
    process_response=add_response_header,
)
handler_scenario(
    "h_process_response_replaces",
    "process_response replaces the 101 with a 402",
    "/echo",
    process_response=replace_response,
)
handler_scenario(
    "h_select_subprotocol",
    "select_subprotocol picks the client's last offer",
    "/subprotocol",
    select_subprotocol=pick_last_subprotocol,
)
handler_scenario(
    "h_origins", "origins refuses an Origin it does not list: HTTP 403", "/echo", origins=["https://ok.example"]
)
handler_scenario(
    "h_connection_attributes", "ServerConnection.response, logger and protocol as the handler reads them", "/attrs"
)
