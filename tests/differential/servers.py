"""The server code the differential scenarios talk to: one handler and one ASGI app.

Both dispatch on the request path (``/<action>?<params>``), so a scenario is a client
driver plus a path. What the server code observes goes to ``runner.SERVER``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
from serverlog import SERVER


def _params(target: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(target)
    params = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    return parts.path.strip("/").split("/")[0], params


async def handler(ws: Any) -> None:
    """A ``websockets.serve`` handler; the same function runs under wsfake."""
    SERVER.enter()
    try:
        await _handler(ws)
    finally:
        SERVER.exit()


async def _handler(ws: Any) -> None:
    action, p = _params(ws.request.path)
    if action == "echo":
        async for message in ws:
            await ws.send(message)
    elif action == "close":
        await ws.close(int(p["code"]), p.get("reason", ""))
    elif action == "return":
        return
    elif action == "raise":
        raise ValueError("handler failed")
    elif action == "abort":
        await ws.send("before abort")
        ws.transport.abort()
    elif action == "burst":
        for i in range(int(p["n"])):
            await ws.send(f"m{i}")
        await ws.close(1000, "burst done")
    elif action == "fragments":
        await ws.send(["a", "b", "c"])

        async def parts() -> Any:
            yield b"1"
            yield b"2"

        await ws.send(parts())
        await ws.wait_closed()
    elif action == "streaming":
        for _ in range(2):
            SERVER.note("fragments", [f if isinstance(f, str) else f.hex() async for f in ws.recv_streaming()])
        await ws.send("got both")
        await ws.wait_closed()
    elif action == "ping":
        waiter = await ws.ping(b"srv")
        with anyio.fail_after(5):
            latency = await waiter
        SERVER.note("pong received", latency >= 0)
        await ws.send("ponged")
        await ws.wait_closed()
    elif action == "invalid_utf8":
        await ws.send(b"\xc3\x28", text=True)
        await ws.wait_closed()
    elif action == "headers":
        h = ws.request.headers
        await ws.send(json.dumps({k: h.get_all(k) for k in ("User-Agent", "Origin", "X-Custom", "Authorization")}))
        await ws.wait_closed()
    elif action == "path":
        await ws.send(ws.request.path)
        await ws.wait_closed()
    elif action == "subprotocol":
        await ws.send(str(ws.subprotocol))
        await ws.wait_closed()
    elif action == "big":
        await ws.send("z" * int(p["size"]))
        await ws.wait_closed()
    elif action == "observe":
        try:
            async for message in ws:
                SERVER.note("received", message)
        finally:
            # ServerConnection.close_code is websockets >= 15; older releases keep it on .protocol.
            source = ws if hasattr(ws, "close_code") else ws.protocol
            SERVER.note("closed", source.close_code, source.close_reason)
    elif action == "slow":
        await anyio.sleep(float(p["delay"]))
        async for message in ws:
            await ws.send(message)
    elif action == "count":
        await anyio.sleep(float(p["delay"]))
        in_order = True
        for i in range(int(p["n"])):
            in_order &= (await ws.recv())[:5] == f"{i:05d}"
        await ws.send(f"received {p['n']} in order: {in_order}")
        await ws.wait_closed()
    elif action == "attrs":
        response = ws.response
        SERVER.note("response", response.status_code, response.reason_phrase, sorted(response.headers))
        SERVER.note("logger", ws.logger.name if hasattr(ws.logger, "name") else ws.logger.logger.name)
        SERVER.note("state", ws.protocol.state.name, ws.subprotocol)
        await ws.send("attrs noted")
        await ws.wait_closed()
        SERVER.note("closed", ws.protocol.close_code, ws.protocol.close_reason)
    elif action == "hold":
        try:
            with anyio.fail_after(float(p.get("delay", "0.3"))):
                await ws.recv()
        except TimeoutError:
            await ws.close(1000, "held")
        except Exception as exc:
            SERVER.note("recv raised", type(exc).__name__)
    else:
        raise AssertionError(f"unknown action {action!r}")


async def strip_extensions(connection: Any, request: Any) -> Any:
    """``process_request`` that removes the client's extension offer: no compression is negotiated."""
    del request.headers["Sec-WebSocket-Extensions"]
    return None


async def break_key(connection: Any, request: Any) -> Any:
    """``process_request`` that breaks a required header: the handshake is refused with 400."""
    del request.headers["Sec-WebSocket-Key"]
    request.headers["Sec-WebSocket-Key"] = "not-a-key"
    return None


def raising_process_request(connection: Any, request: Any) -> Any:
    raise RuntimeError("process_request bug")


def add_response_header(connection: Any, request: Any, response: Any) -> Any:
    response.headers["X-Response"] = "added"
    return None


def replace_response(connection: Any, request: Any, response: Any) -> Any:
    return connection.respond(402, "pay first\n")


def pick_last_subprotocol(connection: Any, subprotocols: Any) -> Any:
    return subprotocols[-1] if subprotocols else None


async def deny_503_once(connection: Any, request: Any) -> Any:
    """``process_request`` answering 503 to the first attempt on each path, then accepting."""
    if request.path not in _seen:
        _seen.add(request.path)
        return connection.respond(503, "warming up\n")
    return None


_seen: set[str] = set()


async def deny(connection: Any, request: Any) -> Any:
    action, _ = _params(request.path)
    if action == "deny403":
        return connection.respond(403, "Forbidden\n")
    if action == "deny404":
        response = connection.respond(404, "no such room\n")
        response.headers["X-Reason"] = "room-missing"
        return response
    if action == "hang":
        await anyio.sleep(3600)
    return None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI app; the same callable runs under uvicorn and under wsfake."""
    if scope["type"] != "websocket":
        raise RuntimeError("no lifespan")
    SERVER.enter()
    try:
        await _app(scope, receive, send)
    finally:
        SERVER.exit()


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    action, p = _params(scope["raw_path"].decode() + "?" + scope["query_string"].decode())
    connect = await receive()
    SERVER.note("event", connect["type"])
    if action == "deny":
        await send({"type": "websocket.close"})
        return
    if action == "http404":
        await send({"type": "websocket.http.response.start", "status": 404, "headers": [(b"x-why", b"no room")]})
        await send({"type": "websocket.http.response.body", "body": b"room ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"not found"})
        return
    if action == "raise_before":
        raise ValueError("app failed before accept")
    if action == "return_before":
        return
    if action == "never_accept":
        event = await receive()  # the client gives up; uvicorn reports it as a disconnect
        SERVER.note("event", event["type"], event.get("code"))
        return
    accept: dict[str, Any] = {"type": "websocket.accept"}
    if "subprotocol" in p:
        accept["subprotocol"] = p["subprotocol"] or None
    if "header" in p:
        accept["headers"] = [(b"x-app", p["header"].encode())]
    await send(accept)
    if action == "echo":
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                SERVER.note("disconnect", event.get("code"), event.get("reason", ""))
                return
            await send({"type": "websocket.send", "text": event.get("text"), "bytes": event.get("bytes")})
    elif action == "close":
        await send({"type": "websocket.close", "code": int(p["code"]), "reason": p.get("reason", "")})
        event = await receive()
        SERVER.note("after close", event["type"])
    elif action == "raise_after":
        raise RuntimeError("app failed after accept")
    elif action == "return_after":
        return
    elif action == "burst":
        for i in range(int(p["n"])):
            await send({"type": "websocket.send", "text": f"m{i}"})
        await send({"type": "websocket.close", "code": 1000, "reason": "burst done"})
    elif action == "scope":
        keys = ("scheme", "path", "raw_path", "query_string", "root_path", "http_version", "subprotocols")
        seen = {k: scope[k].decode() if isinstance(scope[k], bytes) else scope[k] for k in keys}
        seen["headers"] = [
            [k.decode(), v.decode()]
            for k, v in scope["headers"]
            if k.startswith(b"x-") or k in (b"origin", b"user-agent")
        ]
        seen["asgi"] = scope["asgi"]
        seen["extensions"] = sorted(scope.get("extensions") or {})
        await send({"type": "websocket.send", "text": json.dumps(seen, sort_keys=True)})
        event = await receive()
        SERVER.note("disconnect", event.get("code"), event.get("reason", ""))
    elif action == "big":
        await send({"type": "websocket.send", "bytes": b"z" * int(p["size"])})
        event = await receive()
        SERVER.note("disconnect", event.get("code"))
    elif action == "send_after_disconnect":
        event = await receive()
        SERVER.note("disconnect", event.get("code"), event.get("reason", ""))
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            SERVER.note(
                "send raised", "<ASGI ClientDisconnected: OSError subclass>" if isinstance(exc, OSError) else repr(exc)
            )
    elif action == "count":
        await anyio.sleep(float(p["delay"]))
        in_order = True
        for i in range(int(p["n"])):
            event = await receive()
            in_order &= event.get("text", "")[:5] == f"{i:05d}"
        await send({"type": "websocket.send", "text": f"received {p['n']} in order: {in_order}"})
        event = await receive()
        SERVER.note("disconnect", event.get("code"))
    elif action == "slow":
        await anyio.sleep(float(p["delay"]))
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": event.get("text"), "bytes": event.get("bytes")})
    elif action == "close_nocode":
        await send({"type": "websocket.close"})
        event = await receive()
        SERVER.note("after close", event["type"], event.get("code"))
    elif action == "hold":
        # Keep the connection open until the client leaves (or, with a delay, close then); note what the app hears.
        while True:
            if "delay" in p:
                try:
                    with anyio.fail_after(float(p["delay"])):
                        event = await receive()
                except TimeoutError:
                    await send({"type": "websocket.close", "code": 1000, "reason": "held"})
                    event = await receive()
                    SERVER.note("after close", event["type"], event.get("code"))
                    return
            else:
                event = await receive()
            if event["type"] == "websocket.disconnect":
                SERVER.note("disconnect", event.get("code"), event.get("reason", ""))
                return
            SERVER.note("received", event.get("text") or event.get("bytes", b"").hex())
    elif action == "close_long_reason":
        try:
            await send({"type": "websocket.close", "code": 4000, "reason": "r" * int(p["len"])})
        except Exception as exc:
            SERVER.note("close raised", type(exc).__name__)
            raise
        event = await receive()
        SERVER.note("after close", event["type"], event.get("code"))
    else:
        raise AssertionError(f"unknown action {action!r}")
