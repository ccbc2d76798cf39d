"""The incoming fast path is wsproto, event for event (property test).

Two server sessions get the same handshake and then the same client bytes, cut
into the same random segments. One reads complete data frames through the fast
path, the other (``incoming_ready`` forced false) only through wsproto. The
frames are built by hand so that they include what the fast path must hand
back to wsproto: fragments, control frames, unmasked frames, RSV bits, unknown
opcodes, non-minimal lengths, invalid UTF-8 and frames over ``max_size``.
Both sessions must report the same events to their sink, write the same bytes
to the client and end in the same state.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from wsfake import _fastpath, _session
from wsfake._conventions import websockets_conventions
from wsfake._host import AsyncioHost
from wsfake._pipe import Pipe
from wsfake._records import Call
from wsfake._session import ServerSession, Sink


class Recorder(Sink):
    def __init__(self, session: ServerSession) -> None:
        self.session = session
        self.events: list[tuple[Any, ...]] = []

    def on_request(self) -> None:
        self.session.accept(None)

    def on_frame(self, data: str | bytes, fin: bool) -> None:
        self.events.append(("frame", data, fin))

    def on_pong(self, payload: bytes) -> None:
        self.events.append(("pong", payload))

    def on_close(self, code: int, reason: str) -> None:
        self.events.append(("close", code, reason))

    def on_failed(self, code: int, reason: str) -> None:
        self.events.append(("failed", code, reason))

    def on_closed(self) -> None:
        self.events.append(("closed",))


HANDSHAKE = WSConnection(ConnectionType.CLIENT).send(Request(host="example.com", target="/"))


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    wide: int = 0,
    key: bytes = b"\x37\xfa\x21\x3d",
) -> bytes:
    """One frame as a client could send it; ``wide`` forces a 2- (1) or 8-byte (2) length."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if wide == 2 or length > 0xFFFF:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    elif wide == 1 or length > 125:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | length])
    if not masked:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


texts = st.one_of(st.text(max_size=200), st.sampled_from([0, 125, 126, 300]).map(lambda n: "é" * n))
binaries = st.one_of(st.binary(max_size=200), st.sampled_from([125, 126, 65536]).map(lambda n: b"\x00" * n))

good_frames = st.one_of(
    texts.map(lambda t: frame(0x1, t.encode())),
    binaries.map(lambda b: frame(0x2, b)),
)
ODD_FRAMES = {
    "fragmented text": frame(0x1, b"fra", fin=False) + frame(0x0, b"gment"),
    "open fragment": frame(0x2, b"open", fin=False),
    "stray continuation": frame(0x0, b"nothing to continue"),
    "ping": frame(0x9, b"ping"),
    "pong": frame(0xA, b"pong"),
    "close": frame(0x8, struct.pack("!H", 1000) + b"bye"),
    "invalid UTF-8": frame(0x1, b"\xff\xfe"),
    "truncated UTF-8": frame(0x1, "é".encode()[:1]),
    "surrogate": frame(0x1, b"\xed\xa0\x80"),
    "unmasked": frame(0x2, b"unmasked", masked=False),
    "RSV1": frame(0x2, b"rsv", rsv=4),
    "RSV3": frame(0x1, b"rsv", rsv=1),
    "unknown opcode": frame(0x3, b"unknown opcode"),
    "2-byte length for a short frame": frame(0x2, b"short", wide=1),
    "8-byte length for a 2-byte frame": frame(0x2, b"\x01" * 200, wide=2),
    # Masked with a zero key, the payload on the wire is a frame itself: read from the wrong place, it parses.
    "a frame carrying a frame": frame(0x2, frame(0x1, b"inner"), key=bytes(4)),
    "an open fragment carrying a frame": frame(0x2, frame(0x1, b"inner"), fin=False, key=bytes(4)),
    # From its second byte on, this frame reads as a complete 1-byte frame.
    "a frame whose header reads as a frame": frame(0x2, b"\x00\x00", key=b"\x81\x00\x00\x00"),
    **{f"{n} bytes": frame(0x2, b"\x01" * n) for n in (40, 41, 100, 101, 130, 131)},  # around each max_size
}
odd_frames = st.sampled_from(sorted(ODD_FRAMES)).map(ODD_FRAMES.__getitem__)
streams = st.lists(st.one_of(good_frames, good_frames, odd_frames), max_size=10)
max_sizes = st.sampled_from([None, 100, 2**20, (100, 40), (None, 130)])


def segments(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for start, end in itertools.pairwise(points):
        yield data[start:end]


def run(data: bytes, cuts: list[int], max_size: Any, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    loop = asyncio.new_event_loop()
    try:
        host = AsyncioHost(loop)
        pipe = Pipe(host, client_address=("127.0.0.1", 50000), server_address=("127.0.0.1", 8000))
        session = ServerSession(
            pipe,
            host,
            Call(url="ws://example.com/"),
            websockets_conventions(None),
            scheme="ws",
            max_size=max_size,
            compression=False,
        )
        recorder = Recorder(session)
        session.sink = recorder
        with monkeypatch.context() as patch:
            if not fast:
                patch.setattr(_session, "incoming_ready", lambda connection, watch_type: None)
            session._receive(HANDSHAKE)
            for segment in segments(data, cuts):
                if session.finished:
                    break
                session._receive(segment)
        pipe.to_client.flush()  # deliver what the server wrote, as the next loop iteration would
        written = pipe.to_client.read(None).partition(b"\r\n\r\n")[2]  # frames after the 101 (its Date may tick)
        call = session.call
        watch = None if session._watch is None else vars(session._watch)
        return (recorder.events, written, session.state, session.close_sent, call.received, session._frame_parts, watch)
    finally:
        loop.close()


@settings(max_examples=200, deadline=None)
@given(stream=streams, cuts=st.lists(st.integers(min_value=0, max_value=2**17), max_size=6), max_size=max_sizes)
def test_incoming_fast_path_matches_wsproto(stream: list[bytes], cuts: list[int], max_size: Any) -> None:
    data = b"".join(stream)
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast = run(data, cuts, max_size, True, monkeypatch)
        reference = run(data, cuts, max_size, False, monkeypatch)
    assert fast == reference


@pytest.mark.parametrize("max_size", [None, 100, (100, 40), (None, 130)], ids=str)
@pytest.mark.parametrize("odd", sorted(ODD_FRAMES))
def test_each_frame_the_fast_path_declines_reaches_wsproto_in_place(odd: str, max_size: Any) -> None:
    data = frame(0x1, b"before") + ODD_FRAMES[odd] + frame(0x2, b"after") + frame(0x1, b"end")
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert run(data, [], max_size, True, monkeypatch) == run(data, [], max_size, False, monkeypatch)


@pytest.mark.parametrize("odd", sorted(name for name, data in ODD_FRAMES.items() if len(data) < 64))
def test_wherever_a_segment_ends_the_fast_path_resumes_only_where_wsproto_is_idle(odd: str) -> None:
    data = frame(0x1, b"before") + ODD_FRAMES[odd] + frame(0x2, b"after")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for cut in range(1, len(data)):
            assert run(data, [cut], None, True, monkeypatch) == run(data, [cut], None, False, monkeypatch), cut


def test_the_fast_path_takes_whole_frames_and_leaves_the_rest_to_wsproto(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[int] = []
    original = _session.complete_messages

    def spy(decoder: Any, data: bytes, watch: Any) -> tuple[list[str | bytes], int]:
        messages, offset = original(decoder, data, watch)
        taken.append(len(messages))
        return messages, offset

    monkeypatch.setattr(_session, "complete_messages", spy)
    data = frame(0x1, b"one") + frame(0x2, b"two") + frame(0x9, b"ping") + frame(0x1, b"three")
    events, written, *_ = run(data, [], None, True, monkeypatch)
    assert taken == [2]  # two frames fast; from the ping on, the segment went to wsproto
    assert events == [("frame", "one", True), ("frame", b"two", True), ("frame", "three", True)]
    assert written.endswith(b"\x8a\x04ping")  # the pong


@given(data=st.binary(max_size=100), mask=st.binary(min_size=4, max_size=4))
def test_the_pure_python_unmasking_matches_websockets_c_one(data: bytes, mask: bytes) -> None:
    from websockets.speedups import apply_mask

    assert _fastpath._python_apply_mask(data, mask) == apply_mask(data, mask)
