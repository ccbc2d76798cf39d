"""The outgoing fast paths are byte-for-byte wsproto (property test).

Two server connections are set up identically; one sends every complete data frame
through a fast path (wsproto for everything else), the other only through wsproto.
For random sequences of messages, fragments, pings and closes, every send must
produce identical bytes and identical state: ``complete_data_frame`` with and
without permessage-deflate, and ``plain_data_frame`` on a connection whose only
extension is the size watch (the case the session gives it). Close frames take
``close_frame_out`` on every path, whether the server starts the close or
answers the client's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Request, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

from wsfake import _compat
from wsfake._deflate import ServerDeflate
from wsfake._fastpath import close_frame_out, complete_data_frame, plain_data_frame
from wsfake._session import _FrameWatch

FastPath = Callable[[Connection, "str | bytes"], "bytes | None"]
PATHS: dict[str, tuple[FastPath, bool, bool]] = {  # fast path, deflate negotiated, size watch
    "complete": (complete_data_frame, False, False),
    "complete, deflate": (complete_data_frame, True, False),
    "complete, deflate and size watch": (complete_data_frame, True, True),
    "plain, size watch": (plain_data_frame, False, True),
}


def server_connection(deflate: bool, watch: bool = False) -> Connection:
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="x", target="/", extensions=[PerMessageDeflate()] if deflate else [])))
    request = next(server.events())
    assert isinstance(request, Request)
    extensions: list[Any] = [ServerDeflate()] if deflate else []
    if watch:
        extensions.append(_FrameWatch(2**20, None))
    server.send(AcceptConnection(extensions=extensions))
    assert server.connection is not None
    return server.connection


CLIENT_CLOSE = b"\x88\x82\x00\x00\x00\x00\x03\xe8"  # 1000, masked with a zero key

BOUNDARIES = [0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 65537]  # where the length encoding changes

payloads = st.one_of(
    st.sampled_from(BOUNDARIES).map(lambda n: b"\x01" * n),
    st.sampled_from(BOUNDARIES).map(lambda n: "t" * n),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.integers(min_value=120, max_value=70_000).map(lambda n: b"\x00\xffab" * (n // 4)),  # 2- and 8-byte lengths
    st.integers(min_value=100, max_value=70_000).map(lambda n: "é✓" * (n // 2)),
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("message"), payloads),
        st.tuples(st.just("fragment"), payloads),  # a message sent in two frames
        st.tuples(st.just("ping"), st.binary(max_size=125)),
        st.tuples(
            st.just("close"),
            st.tuples(
                st.one_of(
                    st.integers(min_value=1000, max_value=4999),
                    st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535]),
                    st.sampled_from(CloseReason),
                ),
                st.one_of(st.text(max_size=70), st.sampled_from(["", "r" * 123, "r" * 124, "é" * 61 + "!", "é" * 62])),
            ),
        ),
        st.tuples(st.just("client closes"), st.just(None)),
    ),
    max_size=12,
)


def send(connection: Connection, action: tuple[str, Any], fast: FastPath | None) -> bytes | str:
    kind, value = action
    try:
        if kind == "message":
            if fast is not None:
                out = fast(connection, value)
                if out is not None:
                    return out
            event: Any = TextMessage(value) if isinstance(value, str) else BytesMessage(value)
            return bytes(connection.send(event))
        if kind == "fragment":
            first, second = value[: len(value) // 2], value[len(value) // 2 :]
            cls = TextMessage if isinstance(value, str) else BytesMessage
            head = connection.send(cls(first, message_finished=False))
            if fast is not None:
                assert fast(connection, second) is None, "must fall back inside a message"
            return bytes(head) + bytes(connection.send(cls(second, message_finished=True)))
        if kind == "ping":
            return bytes(connection.send(Ping(value)))
        if kind == "client closes":
            connection.receive_data(CLIENT_CLOSE)
            return repr(list(connection.events()))
        code, reason = value
        if fast is not None and connection.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            out = close_frame_out(connection, int(code), reason)  # as the session calls it
            if out is not None:
                _compat.close_sent(connection)
                return out
        return bytes(connection.send(CloseConnection(code, reason)))
    except (LocalProtocolError, TypeError, struct.error) as exc:  # both paths must refuse alike
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(sorted(PATHS)), steps=actions)
def test_fast_path_matches_wsproto(path: str, steps: list[tuple[str, Any]]) -> None:
    function, deflate, watch = PATHS[path]
    fast, reference = server_connection(deflate, watch), server_connection(deflate, watch)
    for step in steps:
        assert send(fast, step, function) == send(reference, step, None), step
        assert fast.state is reference.state
        assert fast._proto._outbound_opcode is reference._proto._outbound_opcode


@pytest.mark.parametrize("fast", [complete_data_frame, plain_data_frame])
def test_fast_path_declines_what_it_does_not_handle(fast: FastPath) -> None:
    connection = server_connection(deflate=False)
    connection.send(TextMessage("start", message_finished=False))
    assert fast(connection, "inside a fragmented message") is None
    connection.send(TextMessage("end", message_finished=True))
    assert fast(connection, "complete") is not None
    connection.send(CloseConnection(1000))
    assert fast(connection, "after close") is None


def test_the_size_watch_leaves_outgoing_frames_unchanged() -> None:
    """What lets the session use ``plain_data_frame`` when the watch is the only extension."""
    assert "frame_outbound" not in vars(_FrameWatch)


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("length", BOUNDARIES)
@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_every_length_encoding_matches_wsproto(path: str, length: int, text: bool) -> None:
    function, deflate, watch = PATHS[path]
    value: str | bytes = "t" * length if text else b"\x01" * length
    fast, reference = server_connection(deflate, watch), server_connection(deflate, watch)
    assert send(fast, ("message", value), function) == send(reference, ("message", value), None)
