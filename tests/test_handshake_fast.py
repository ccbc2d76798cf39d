"""The opening handshake read without h11's state machine is wsproto's (property test).

Two server sessions read the same request head: one may take the fast path
(``_compat.plain_request`` and wsproto's own request processing, the 101 built
without h11), the other is forced through h11 and ``WSConnection`` in full.
Requests are built by wsproto's client and then mutated: methods, versions,
Host headers, framing headers, folded lines, bad names and values, the
upgrade headers wsproto checks, extension and subprotocol offers. Both
sessions must reach the same verdict, and an accepted one must answer with
the same 101 and negotiate the same extensions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request
from wsproto.extensions import PerMessageDeflate

from wsfake import _compat, _conventions
from wsfake._conventions import uvicorn_conventions
from wsfake._host import AsyncioHost
from wsfake._pipe import Pipe
from wsfake._records import Call
from wsfake._session import ServerSession, Sink


class Recorder(Sink):
    def __init__(self, session: ServerSession, subprotocol: str | None) -> None:
        self.session = session
        self.subprotocol = subprotocol
        self.seen: list[Any] = []

    def on_request(self) -> None:
        session = self.session
        request = session.request
        self.seen.append(
            None
            if request is None
            else (request.host, request.target, request.extensions, request.subprotocols, request.extra_headers)
        )
        self.seen.append(session.handshake_error)
        if request is not None:
            session.accept(self.subprotocol)
        else:
            session.reject(400, [], b"refused")


def base_request(offer_deflate: bool, subprotocols: list[str], extra: list[tuple[str, str]]) -> bytes:
    request = Request(
        host="example.com",
        target="/chat?room=1",
        extensions=[PerMessageDeflate()] if offer_deflate else [],
        subprotocols=subprotocols,
        extra_headers=extra,
    )
    return bytes(WSConnection(ConnectionType.CLIENT).send(request))


MUTATIONS: dict[str, Any] = {
    "none": lambda h: h,
    "POST": lambda h: h.replace(b"GET ", b"POST ", 1),
    "HTTP/1.0": lambda h: h.replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1),
    "HTTP/2.0": lambda h: h.replace(b" HTTP/1.1\r\n", b" HTTP/2.0\r\n", 1),
    "no Host": lambda h: h.replace(b"Host: example.com\r\n", b""),
    "two Hosts": lambda h: h.replace(b"Host: example.com\r\n", b"Host: example.com\r\nHost: other\r\n"),
    "Host not IDNA": lambda h: h.replace(b"Host: example.com", b"Host: xn--a"),
    "Content-Length": lambda h: h.replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n"),
    "bad Content-Length": lambda h: h.replace(b"\r\n\r\n", b"\r\nContent-Length: x\r\n\r\n"),
    "Transfer-Encoding": lambda h: h.replace(b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "folded line": lambda h: h.replace(b"\r\n\r\n", b"\r\nX-Long: a\r\n b\r\n\r\n"),
    "fold first": lambda h: h.replace(b"\r\n", b"\r\n x\r\n", 1),
    "bad name": lambda h: h.replace(b"\r\n\r\n", b"\r\nX Bad: 1\r\n\r\n"),
    "empty name": lambda h: h.replace(b"\r\n\r\n", b"\r\n: 1\r\n\r\n"),
    "control in value": lambda h: h.replace(b"\r\n\r\n", b"\r\nX-C: a\x01b\r\n\r\n"),
    "obs-text value": lambda h: h.replace(b"\r\n\r\n", b"\r\nX-O: caf\xe9\r\n\r\n"),
    "NUL in value": lambda h: h.replace(b"\r\n\r\n", b"\r\nX-N: a\x00b\r\n\r\n"),
    "tab around value": lambda h: h.replace(b"\r\n\r\n", b"\r\nX-T:\t a \t\r\n\r\n"),
    "empty value": lambda h: h.replace(b"\r\n\r\n", b"\r\nX-E:\r\n\r\n"),
    "space before colon": lambda h: h.replace(b"\r\n\r\n", b"\r\nX-S : 1\r\n\r\n"),
    "bare LF": lambda h: h.replace(b"\r\n\r\n", b"\r\nX-A: 1\nX-B: 2\r\n\r\n"),
    "bare CR": lambda h: h.replace(b"\r\n\r\n", b"\r\nX-A: 1\rX-B: 2\r\n\r\n"),
    "target with space": lambda h: h.replace(b"/chat?room=1", b"/chat room", 1),
    "target not ASCII": lambda h: h.replace(b"/chat?room=1", b"/caf\xe9", 1),
    "lower-case method": lambda h: h.replace(b"GET ", b"get ", 1),
    "no Connection": lambda h: h.replace(b"Connection: Upgrade\r\n", b""),
    "Connection: keep-alive, Upgrade": lambda h: h.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"),
    "Connection: close": lambda h: h.replace(b"Connection: Upgrade", b"Connection: close"),
    "Upgrade: h2c": lambda h: _replace_header(h, b"upgrade", b"Upgrade: h2c"),
    "no Upgrade": lambda h: _drop_header(h, b"upgrade"),
    "version 12": lambda h: h.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 12"),
    "no version": lambda h: h.replace(b"Sec-WebSocket-Version: 13\r\n", b""),
    "no key": lambda h: _drop_header(h, b"sec-websocket-key"),
    "two keys": lambda h: h.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"),
    "Expect: 100-continue": lambda h: h.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"),
    "odd extension offer": lambda h: h.replace(
        b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10, x-foo\r\n\r\n"
    ),
    "mixed-case names": lambda h: h.replace(b"Sec-WebSocket-Key", b"SEC-websocket-KEY"),
}


def _replace_header(head: bytes, name: bytes, line: bytes) -> bytes:
    lines = head.split(b"\r\n")
    return b"\r\n".join(line if old.lower().startswith(name + b":") else old for old in lines)


def _drop_header(head: bytes, name: bytes) -> bytes:
    lines = head.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.lower().startswith(name + b":"))


def serve(head: bytes, fast: bool, compression: bool, subprotocol: str | None) -> Any:
    loop = asyncio.new_event_loop()
    try:
        host = AsyncioHost(loop)
        pipe = Pipe(host, client_address=("127.0.0.1", 50000), server_address=("127.0.0.1", 8000))
        session = ServerSession(
            pipe,
            host,
            Call(url="ws://example.com/"),
            uvicorn_conventions(date_header=False),
            scheme="ws",
            max_size=2**20,
            compression=compression,
        )
        recorder = Recorder(session, subprotocol)
        session.sink = recorder
        with pytest.MonkeyPatch.context() as patch:
            # Rejections carry a Date header whatever date_header says (as both real servers do): freeze it, or
            # the fast and the slow answer differ whenever the two calls straddle a second.
            patch.setattr(_conventions, "http_date", lambda: b"Sun, 22 Nov 2026 00:00:00 GMT")
            if not fast:
                patch.setattr(_compat, "plain_request", lambda head: None)
            try:
                session._receive(head)
            except Exception as exc:  # both paths must fail alike, if at all
                return ("raised", type(exc).__name__, str(exc))
        pipe.to_client.flush()
        written = pipe.to_client.read(None)
        connection = session._ws.connection
        extensions = None if connection is None else [repr(vars(e)) for e in _compat.extensions(connection)]
        return (recorder.seen, written, session.state, extensions, session.raw_headers, session.method, session.target)
    finally:
        loop.close()


@settings(max_examples=300, deadline=None)
@given(
    mutation=st.sampled_from(sorted(MUTATIONS)),
    offer_deflate=st.booleans(),
    compression=st.booleans(),
    subprotocols=st.sampled_from([[], ["chat"], ["chat", "v2"]]),
    answer=st.sampled_from([None, "chat"]),
    extra=st.lists(
        st.tuples(
            st.sampled_from(["X-A", "Origin", "Cookie", "User-Agent"]), st.text("abc =;/,", max_size=8).map(str.strip)
        ),
        max_size=3,
    ),
)
@example(mutation="none", offer_deflate=True, compression=True, subprotocols=["chat"], answer="chat", extra=[])
def test_the_fast_handshake_reaches_wsprotos_verdict_and_answer(
    mutation: str,
    offer_deflate: bool,
    compression: bool,
    subprotocols: list[str],
    answer: str | None,
    extra: list[tuple[str, str]],
) -> None:
    head = MUTATIONS[mutation](base_request(offer_deflate, subprotocols, extra))
    assert serve(head, True, compression, answer) == serve(head, False, compression, answer)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_mutation_alone(mutation: str) -> None:
    head = MUTATIONS[mutation](base_request(True, ["chat"], [("X-A", "1")]))
    assert serve(head, True, True, None) == serve(head, False, True, None)


def test_a_plain_request_takes_the_fast_path_and_anything_odd_does_not() -> None:
    head = base_request(True, ["chat"], [("Origin", "https://example.com")])
    assert _compat.plain_request(head.partition(b"\r\n\r\n")[0]) is not None
    for mutation in ("HTTP/1.0", "no Host", "two Hosts", "Content-Length", "folded line", "bad name", "bare LF"):
        odd = MUTATIONS[mutation](head)
        assert _compat.plain_request(odd.partition(b"\r\n\r\n")[0]) is None, mutation
