"""The outgoing fast path is byte-for-byte wsproto (property test).

Two server connections are set up identically; one sends every complete data frame
through the fast path (wsproto for everything else), the other only through wsproto.
For random sequences of messages, fragments, pings and closes, with and without
permessage-deflate, every send must produce identical bytes and identical state.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Request, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError

from wsfake._deflate import ServerDeflate
from wsfake._fastpath import complete_data_frame


def server_connection(deflate: bool) -> Connection:
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="x", target="/", extensions=[PerMessageDeflate()] if deflate else [])))
    request = next(server.events())
    assert isinstance(request, Request)
    server.send(AcceptConnection(extensions=[ServerDeflate()] if deflate else []))
    assert server.connection is not None
    return server.connection


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
        st.tuples(st.just("close"), st.integers(min_value=1000, max_value=1003)),
    ),
    max_size=12,
)


def send(connection: Connection, action: tuple[str, Any], fast: bool) -> bytes | str:
    kind, value = action
    try:
        if kind == "message":
            if fast:
                out = complete_data_frame(connection, value)
                if out is not None:
                    return out
            event: Any = TextMessage(value) if isinstance(value, str) else BytesMessage(value)
            return bytes(connection.send(event))
        if kind == "fragment":
            first, second = value[: len(value) // 2], value[len(value) // 2 :]
            cls = TextMessage if isinstance(value, str) else BytesMessage
            head = connection.send(cls(first, message_finished=False))
            if fast:
                assert complete_data_frame(connection, second) is None, "must fall back inside a message"
            return bytes(head) + bytes(connection.send(cls(second, message_finished=True)))
        if kind == "ping":
            return bytes(connection.send(Ping(value)))
        return bytes(connection.send(CloseConnection(value)))
    except LocalProtocolError as exc:  # e.g. sending after close: both paths must refuse alike
        return f"LocalProtocolError: {exc}"


@settings(max_examples=150, deadline=None)
@given(deflate=st.booleans(), steps=actions)
def test_fast_path_matches_wsproto(deflate: bool, steps: list[tuple[str, Any]]) -> None:
    fast, reference = server_connection(deflate), server_connection(deflate)
    for step in steps:
        assert send(fast, step, True) == send(reference, step, False), step
        assert fast.state is reference.state
        assert fast._proto._outbound_opcode is reference._proto._outbound_opcode


def test_fast_path_declines_what_it_does_not_handle() -> None:
    connection = server_connection(deflate=False)
    connection.send(TextMessage("start", message_finished=False))
    assert complete_data_frame(connection, "inside a fragmented message") is None
    connection.send(TextMessage("end", message_finished=True))
    assert complete_data_frame(connection, "complete") is not None
    connection.send(CloseConnection(1000))
    assert complete_data_frame(connection, "after close") is None
