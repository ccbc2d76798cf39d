"""The incoming fast path is wsproto, event for event (property test).

Two server sessions get the same handshake and then the same client bytes, cut
into the same random segments. One reads complete data frames and close frames
through the fast path, the other (``incoming_decoder`` forced to None) only
through wsproto. The frames are built by hand so that they include what the
fast path must hand back to wsproto (fragments, pings, unmasked frames, RSV
bits, unknown opcodes, non-minimal lengths, frames over ``max_size``) and what
it must fail exactly as wsproto fails (invalid UTF-8, invalid close codes and
reasons, and under permessage-deflate corrupt compressed data and RSV1 where it
is not allowed). Both sessions must report the same events to their sink, write
the same bytes to the client and end in the same state, wsproto's included.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request
from wsproto.extensions import PerMessageDeflate

from wsfake import _fastpath, _session
from wsfake._conventions import uvicorn_conventions, websockets_conventions
from wsfake._deflate import WINDOW_BITS
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
DEFLATE_HANDSHAKE = WSConnection(ConnectionType.CLIENT).send(
    Request(host="example.com", target="/", extensions=[PerMessageDeflate()])
)


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


#: Close codes around each rule wsproto applies to a received one.
CLOSE_CODES = (999, 1004, 1005, 1006, 1015, 2999, 3000, 4999, 5000)

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
    **{f"close {code}": frame(0x8, struct.pack("!H", code)) for code in CLOSE_CODES},
    "close without a code": frame(0x8, b""),
    "close with 1 byte": frame(0x8, b"\x03"),
    "close with an invalid UTF-8 reason": frame(0x8, struct.pack("!H", 1001) + b"\xc3("),
    "close with a 123-byte reason": frame(0x8, struct.pack("!H", 4000) + "é".encode() * 61 + b"!"),
    "close with a 126-byte payload": frame(0x8, struct.pack("!H", 1000) + b"r" * 124),
    "unmasked close": frame(0x8, struct.pack("!H", 1000), masked=False),
    "close with RSV1": frame(0x8, struct.pack("!H", 1000), rsv=4),
    "fragmented close": frame(0x8, struct.pack("!H", 1000), fin=False),
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


def run(
    data: bytes,
    cuts: list[int],
    max_size: Any,
    fast: bool,
    monkeypatch: pytest.MonkeyPatch,
    *,
    compression: bool = False,
    uvicorn: bool = False,
    recorder_type: type[Recorder] | None = None,
) -> tuple[Any, ...]:
    loop = asyncio.new_event_loop()
    try:
        host = AsyncioHost(loop)
        pipe = Pipe(host, client_address=("127.0.0.1", 50000), server_address=("127.0.0.1", 8000))
        session = ServerSession(
            pipe,
            host,
            Call(url="ws://example.com/"),
            uvicorn_conventions() if uvicorn else websockets_conventions(None),
            scheme="ws",
            max_size=max_size,
            compression=compression,
        )
        recorder = (recorder_type or Recorder)(session)
        session.sink = recorder
        with monkeypatch.context() as patch:
            if not fast:
                patch.setattr(_session, "incoming_decoder", lambda connection: None)
            session._receive(DEFLATE_HANDSHAKE if compression else HANDSHAKE)
            for segment in segments(data, cuts):
                if session.finished:
                    break
                session._receive(segment)
        pipe.to_client.flush()  # deliver what the server wrote, as the next loop iteration would
        written = pipe.to_client.read(None).partition(b"\r\n\r\n")[2]  # frames after the 101 (its Date may tick)
        call = session.call
        watch = None if session._watch is None else dict(vars(session._watch))
        return (
            recorder.events,
            written,
            session.state,
            session.close_sent,
            call.received,
            session._frame_parts,
            watch,
            wsproto_reader(session),
        )
    finally:
        loop.close()


def wsproto_reader(session: ServerSession) -> tuple[Any, ...]:
    """wsproto's extensions' state and, if the session still reads, what wsproto would make of one more frame.

    Once the session has finished or only discards (after a failure), nothing
    reaches wsproto any more, so what it holds then cannot be seen.
    """
    connection = session._ws.connection
    if connection is None:
        return ()
    proto = connection._proto
    extensions = [
        {name: value for name, value in vars(ext).items() if name not in ("_compressor", "_decompressor")}
        | {"has decompressor": getattr(ext, "_decompressor", None) is not None}
        for ext in proto._frame_decoder.extensions
    ]
    if session.finished or session._discarding:
        return (extensions,)
    proto.receive_bytes(frame(0x9, b"probe"))
    return extensions, proto._message_decoder.opcode, [(f.opcode, f.payload) for f in proto.received_frames()]


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
    taken: list[str | bytes] = []
    closes: list[tuple[int, str] | None] = []
    read_message, read_close = _session.plain_message, _session.close_frame

    def message_spy(decoder: Any, data: bytes, offset: int, watch: Any) -> tuple[str | bytes, int] | None:
        found = read_message(decoder, data, offset, watch)
        if found is not None:
            taken.append(found[0])
        return found

    def close_spy(connection: Any, decoder: Any, data: bytes, offset: int) -> tuple[int, str] | None:
        closes.append(read_close(connection, decoder, data, offset))
        return closes[-1]

    monkeypatch.setattr(_session, "plain_message", message_spy)
    monkeypatch.setattr(_session, "close_frame", close_spy)
    data = frame(0x1, b"one") + frame(0x2, b"two") + frame(0x9, b"ping") + frame(0x1, b"three")
    events, written, *_ = run(data, [], None, True, monkeypatch)
    assert taken == ["one", b"two"]  # two frames fast; from the ping on, the segment went to wsproto
    assert closes == [None]  # the ping is not a close frame either
    assert events == [("frame", "one", True), ("frame", b"two", True), ("frame", "three", True)]
    assert written.endswith(b"\x8a\x04ping")  # the pong

    taken.clear()
    closes.clear()
    data = frame(0x1, b"last") + frame(0x8, struct.pack("!H", 1001) + b"away") + frame(0x1, b"unread")
    events, written, *_ = run(data, [], None, True, monkeypatch)
    assert (taken, closes) == (["last"], [(1001, "away")])  # the close frame fast too, and nothing after it
    assert events == [("frame", "last", True), ("close", 1001, "away")]  # then EOF is awaited (half-close)
    assert written == b"\x88\x06\x03\xe9away"  # the close frame echoed


class ClosingRecorder(Recorder):
    """A server that starts the closing handshake as soon as a message says "bye"."""

    def on_frame(self, data: str | bytes, fin: bool) -> None:
        super().on_frame(data, fin)
        if data == "bye":
            self.session.send_close(1001, "going")


@pytest.mark.parametrize("compression", [False, True], ids=["plain", "deflate"])
@pytest.mark.parametrize("then", ["close", "close 1005", "close with 1 byte", "ping", "invalid UTF-8"])
def test_a_close_frame_behind_a_message_the_server_answers_with_its_own_close(compression: bool, then: str) -> None:
    data = frame(0x1, b"bye") + ODD_FRAMES[then] + frame(0x1, b"after")
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast = run(data, [], None, True, monkeypatch, compression=compression, recorder_type=ClosingRecorder)
        reference = run(data, [], None, False, monkeypatch, compression=compression, recorder_type=ClosingRecorder)
    assert fast == reference
    assert fast[0][0] == ("frame", "bye", True)


# permessage-deflate: the client compresses with one context for the whole connection, as a real client does.

Compressed = tuple[str, int, bytes]  # ("z", opcode, payload): one compressed frame; "z-split": two fragments


def deflate_stream(parts: list[bytes | Compressed]) -> bytes:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -WINDOW_BITS)
    out = b""
    for part in parts:
        if isinstance(part, bytes):
            out += part
            continue
        kind, opcode, payload = part
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        data = data[:-4]  # without the 00 00 ff ff tail, as RFC 7692 sends it
        if kind == "z":
            out += frame(opcode, data, rsv=4)
        elif kind == "z-twice":  # the message, then the same message again with one more byte (a back-reference)
            again = compressor.compress(payload + b"\xff") + compressor.flush(zlib.Z_SYNC_FLUSH)
            out += frame(opcode, data, rsv=4) + frame(opcode, again[:-4], rsv=4)
        else:
            out += frame(opcode, data[:2], fin=False, rsv=4) + frame(0x0, data[2:])
    return out


DEFLATE_ODD: dict[str, bytes | Compressed] = {
    "compressed invalid UTF-8": ("z", 0x1, b"ok \xff\xfe"),
    "compressed truncated UTF-8": ("z", 0x1, "é".encode()[:1]),
    # The second message is mostly a reference to the first: inflated twice, it would come out different.
    "compressed invalid UTF-8 referring back": ("z-twice", 0x1, b"abcdefgh" * 4),
    "compressed, split in two fragments": ("z-split", 0x1, b"fragmented" * 3),
    "compressed, 1000 bytes inflated": ("z", 0x2, b"\x00" * 1000),  # a few bytes on the wire, over max_size inflated
    "compressed, 130 bytes inflated": ("z", 0x1, b"a" * 130),
    "corrupt compressed data": frame(0x2, b"\x00\x01\x02", rsv=4),
    "compressed data of an invalid block type": frame(0x1, b"\xff\xff\xff\xff", rsv=4),
    "RSV1 on a ping": frame(0x9, b"ping", rsv=4),
    "RSV1 on a continuation": frame(0x2, b"a", fin=False) + frame(0x0, b"b", rsv=4),
    "RSV2": frame(0x2, b"rsv2", rsv=2),
}
deflate_parts = st.lists(
    st.one_of(
        texts.map(lambda t: ("z", 0x1, t.encode())),
        binaries.map(lambda b: ("z", 0x2, b)),
        good_frames,  # uncompressed messages are allowed under permessage-deflate too
        odd_frames,
        st.sampled_from(sorted(DEFLATE_ODD)).map(DEFLATE_ODD.__getitem__),
    ),
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(
    parts=deflate_parts,
    cuts=st.lists(st.integers(min_value=0, max_value=2**17), max_size=6),
    max_size=max_sizes,
    uvicorn=st.booleans(),
)
def test_incoming_fast_path_under_deflate_matches_wsproto(
    parts: list[bytes | Compressed], cuts: list[int], max_size: Any, uvicorn: bool
) -> None:
    data = deflate_stream(parts)
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast = run(data, cuts, max_size, True, monkeypatch, compression=True, uvicorn=uvicorn)
        reference = run(data, cuts, max_size, False, monkeypatch, compression=True, uvicorn=uvicorn)
    assert fast == reference


@pytest.mark.parametrize("max_size", [None, 100, (100, 40)], ids=str)
@pytest.mark.parametrize("odd", sorted(DEFLATE_ODD) + sorted(ODD_FRAMES))
def test_each_frame_under_deflate_reaches_wsproto_or_fails_as_wsproto_fails(odd: str, max_size: Any) -> None:
    part = DEFLATE_ODD.get(odd, ODD_FRAMES.get(odd))
    assert part is not None
    data = deflate_stream([("z", 0x1, b"before"), frame(0x2, b"plain"), part, ("z", 0x2, b"after"), ("z", 0x1, b"end")])
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast = run(data, [], max_size, True, monkeypatch, compression=True)
        assert fast == run(data, [], max_size, False, monkeypatch, compression=True)
    assert fast[0][:2] == [("frame", "before", True), ("frame", b"plain", True)]


def test_compressed_messages_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[str | bytes] = []
    read_message = _session.inflated_message

    def spy(decoder: Any, data: bytes, offset: int, watch: Any) -> tuple[str | bytes, int] | None:
        found = read_message(decoder, data, offset, watch)
        if found is not None:
            taken.append(found[0])
        return found

    monkeypatch.setattr(_session, "inflated_message", spy)
    data = deflate_stream([("z", 0x1, b"one"), ("z", 0x2, b"two" * 50), frame(0x1, b"three")])
    events, *_ = run(data, [], 2**20, True, monkeypatch, compression=True)
    assert taken == ["one", b"two" * 50, "three"]
    assert events == [("frame", message, True) for message in taken]


@given(data=st.binary(max_size=100), mask=st.binary(min_size=4, max_size=4))
def test_the_pure_python_unmasking_matches_websockets_c_one(data: bytes, mask: bytes) -> None:
    from websockets.speedups import apply_mask

    assert _fastpath._python_apply_mask(data, mask) == apply_mask(data, mask)
