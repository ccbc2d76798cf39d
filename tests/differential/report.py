"""Generate docs/fidelity.md from the differential suite's results.

Usage: ``python tests/differential/report.py [results.json] > docs/fidelity.md``.
CI regenerates it after the suite and fails if the committed file differs, so the
report cannot drift from what the suite measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real import DEFAULT_UVICORN_IMPL
from runner import NORMALISATIONS, RESULTS_FILE

CLIENTS = [
    "websockets (asyncio)",
    "websockets (legacy asyncio)",
    "websockets (sync)",
    "websockets (trio)",
    "aiohttp",
    "websocket-client",
    "httpx-ws",
    "trio-websocket",
    "raw socket",
]

FIXED = [
    (
        "permessage-deflate parameters",
        "wsproto used 15-bit windows and announced nothing; real servers use 12 bits and "
        "answer `server_max_window_bits=12; client_max_window_bits=12`. wsfake now negotiates as they do.",
    ),
    (
        "fragments of a compressed message",
        "wsproto flushed the compressor only on the last fragment, so a client's "
        "`recv_streaming()` saw empty fragments; websockets flushes every frame. wsfake now does too.",
    ),
    (
        "end of a fragmented `send()`",
        "websockets ends a fragmented message with an empty final frame; wsfake's "
        "handler `send(iterable)` now does the same, and reports bad fragments as websockets does (1011).",
    ),
    (
        "request headers",
        "wsproto's Request event leaves out `Host` and the `Sec-WebSocket-*` offers; the ASGI scope "
        "and handler `request.headers` lacked them. The session now keeps the header block as sent.",
    ),
    (
        "a request that is not valid HTTP",
        "wsfake answered 400 with wsproto's message; websockets.serve closes "
        "without answering and uvicorn's HTTP layer answers `400 Invalid HTTP request received.`. Each target kind "
        "now does what its real server does.",
    ),
    (
        "invalid UTF-8 from the client",
        "wsfake closed 1007 with Python's decoder message; websockets.serve sends "
        "`<reason> at position <n>` and uvicorn an empty reason. Each target kind now does what its real server does.",
    ),
    (
        "`send(bytes, text=True)`",
        "websockets sends the bytes unchecked in a text frame (this is how a real server "
        "emits invalid UTF-8); wsfake's handler decoded them and raised. It now sends them as websockets does.",
    ),
    (
        "`open_timeout` on handler routes",
        "websockets.serve drops a connection whose opening handshake (including "
        "`process_request`) outlasts `open_timeout`; wsfake's Handler gained the option with that behaviour.",
    ),
    (
        "`ServerConnection.transport`",
        "handlers written for websockets may call `ws.transport.abort()`; wsfake's "
        "ServerConnection now has a transport stand-in whose abort drops the connection (1006).",
    ),
    (
        "data and EOF in one read",
        "wsfake's asyncio transport handed the client the last data and the EOF in one callback; a socket never "
        "returns both from one read, so tasks woken by the data run before the EOF. With websockets 14 this lost a "
        "message sent just before an abort. EOF now comes a loop turn after the data.",
    ),
    (
        "unknown `connect()` keywords",
        "websockets passes them to `loop.create_connection`, which raises `TypeError` (e.g. `reconnect_delays` on "
        "websockets 16); wsfake ignored them. It now raises the same error.",
    ),
    (
        "leaving the context during an abandoned handshake",
        "an ASGI app whose client gave up before `accept` receives `websocket.disconnect` (1006) under uvicorn; "
        "wsfake cancelled such connections on exit before the app saw it. Handshakes whose client left are now "
        "allowed to finish.",
    ),
    (
        "`max_size` and fragments delivered in pieces",
        "wsproto reads a frame header again when its masking key has not fully arrived; wsfake's size check counted "
        "such a continuation frame twice and closed a fragmented message under `max_size` with 1009. Found by the "
        "property tests (chunked delivery); a frame now counts once it is complete.",
    ),
    (
        "aiohttp and `route.refuse()`",
        "a refusal fault reached aiohttp as `ClientOSError`; a closed port raises `ClientConnectorError` (its "
        "subclass) around the `ConnectionRefusedError`. It now does.",
    ),
    (
        "trio-websocket and a server that closes first",
        "trio-websocket answers the close frame and never closes its socket (a real server sees the EOF only when "
        "the socket is collected, or gives up after `close_timeout`); a mock's `close()` waited for that EOF. The "
        "closing handshake now ends it, and leaving the context does not wait for such an EOF.",
    ),
]

INHERENT = [
    (
        "socket buffer sizes",
        "real buffers are sized by the OS (on Linux, loopback autotunes to megabytes; Windows "
        "and macOS differ); wsfake uses one configurable size (64 KiB per direction by default). A test whose outcome "
        "depends on how many bytes fit before a writer blocks depends on the OS as well; the backpressure scenarios "
        "are written so that their outcome does not.",
    ),
    (
        "when websockets.serve notices invalid UTF-8",
        "websockets detects it when the handler calls `recv()`; "
        "wsfake's server side (wsproto) detects it as the frame arrives. A handler that never reads sees the 1007 "
        "close under wsfake and nothing under websockets.serve.",
    ),
    ("TLS", "`wss://` is served in memory without encryption; certificates and TLS errors are not simulated."),
    (
        "plain HTTP",
        "only WebSocket upgrades are served in memory; a plain HTTP request through a patched client (aiohttp, "
        "httpx) goes where it would go without wsfake. Use the app's HTTP test client for HTTP routes.",
    ),
    (
        "where the server code runs",
        "server code runs on the client's event loop (or, for threaded clients, on wsfake's own asyncio loop): "
        "server code that only works on asyncio fails under a trio client, where a real server would run it on its "
        "own asyncio loop. ASGI apps and handlers written against anyio run on both.",
    ),
    (
        "sockets collected unclosed",
        "a real socket that is garbage-collected unclosed closes (with a `ResourceWarning`) and the server sees "
        "EOF; wsfake's in-memory sockets do not, and the server sees the connection end when the context exits.",
    ),
    (
        "addresses",
        "host names resolve to 127.0.0.1 (IPv6 literals to ::1) without DNS; `getpeername()`, the ASGI scope's "
        "`client`/`server` and `remote_address` report those IP addresses and the URL's port.",
    ),
]


def render(results: dict[str, dict[str, Any]]) -> str:
    by_client = {
        client: [r["clients"][client] for r in results.values() if client in r["clients"]] for client in CLIENTS
    }
    versions = {client: sorted({run["version"] for run in runs}) for client, runs in by_client.items() if runs}
    lines = [
        "# Fidelity report",
        "",
        "Generated by `tests/differential/report.py` from the differential suite "
        "(`tests/differential/`, run by the README's test command); do not edit by hand.",
        "",
        "Every scenario runs the same client code twice: against real servers on 127.0.0.1 "
        "(handlers under `websockets.serve`; ASGI apps under uvicorn with each of its WebSocket "
        "implementations, `websockets-sansio`, `wsproto` and `websockets`) and against wsfake, "
        "once for each client library whose API can express it. "
        "The client's outcome trace (messages and their types, exceptions as the client library's own classes "
        "with their attributes, status, body and relevant headers including `Server`, subprotocol, extensions, "
        "close code and reason, in order) and what the server code observed must be equal to the real servers' "
        "majority; where the three uvicorn implementations all differ, to "
        f"`{DEFAULT_UVICORN_IMPL}`, uvicorn's default when websockets is installed.",
        "",
        f"Scenarios: {len(results)}.",
        "",
        "| client | version | scenarios run | passing |",
        "|---|---|---|---|",
    ]
    for client in CLIENTS:
        runs = by_client[client]
        if runs:
            passing = sum(1 for run in runs if run["passed"])
            lines.append(f"| {client} | {', '.join(versions[client])} | {len(runs)} | {passing} |")
        else:
            lines.append(f"| {client} | not installed in this run | 0 | — |")
    lines += [
        "",
        "## Scenarios",
        "",
        "| scenario | behaviour | compared with | " + " | ".join(CLIENTS) + " |",
        "|---|---|---|" + "---|" * len(CLIENTS),
    ]
    for name, result in sorted(results.items(), key=lambda item: (item[1]["kind"] != "handler", item[0])):
        servers = "websockets.serve" if result["kind"] == "handler" else "uvicorn x3"
        cells = []
        for client in CLIENTS:
            run = result["clients"].get(client)
            cells.append("—" if run is None else "pass" if run["passed"] else "**FAIL**")
        lines.append(f"| `{name}` | {result['description']} | {servers} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "— : the client's API cannot express the scenario (or the library is not installed).",
        "",
        "## Where the real servers disagree",
        "",
    ]
    disagreeing = False
    for name, result in sorted(results.items()):
        for client, run in sorted(result["clients"].items()):
            if not run["disagreements"]:
                continue
            disagreeing = True
            majority = "" if run["majority"] else f" (no majority: wsfake follows `{DEFAULT_UVICORN_IMPL}`)"
            lines.append(f"- `{name}`, {client}{majority}:")
            for server, where in sorted(run["disagreements"].items()):
                lines.append(f"  - {server}: {where}")
    if not disagreeing:
        lines.append("Nowhere.")
    lines += ["", "## Divergences found and fixed", ""]
    lines += [f"- **{title}**: {text}" for title, text in FIXED]
    lines += ["", "## Differences inherent to having no network", ""]
    lines += [f"- **{title}**: {text}" for title, text in INHERENT]
    lines += ["", "## Normalisations", "", "Only these differences are removed before comparing:", ""]
    lines += [f"- **{title}**: {why}." for title, why in NORMALISATIONS.items()]
    return "\n".join(lines) + "\n"


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The results of one session: the main file and the pytest-xdist workers' files, merged."""
    merged: dict[str, dict[str, Any]] = {}
    for part in [path, *sorted(path.parent.glob(f"{path.stem}.gw*.json"))]:
        if not part.exists():
            continue
        for name, result in json.loads(part.read_text()).items():
            entry = merged.setdefault(name, {**result, "clients": {}})
            entry["clients"].update(result["clients"])
    return merged


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS_FILE
    sys.stdout.write(render(load(path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
