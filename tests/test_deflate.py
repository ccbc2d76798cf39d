"""permessage-deflate: wsfake's server side compresses exactly as websockets.serve does."""

from __future__ import annotations

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from wsproto.frame_protocol import FrameProtocol, RsvBits
from wsproto.frame_protocol import Opcode as WsprotoOpcode

from wsfake._deflate import ServerDeflate


@pytest.mark.parametrize("no_context_takeover", [False, True], ids=["context takeover", "server_no_context_takeover"])
@pytest.mark.parametrize("fragmented", [False, True])
def test_compressed_frames_are_byte_identical_to_websockets(fragmented: bool, no_context_takeover: bool) -> None:
    # websockets.serve's server side
    reference = PerMessageDeflate(False, no_context_takeover, 12, 12, {"memLevel": 5})
    ours = ServerDeflate()
    ours._enabled = True
    ours.server_no_context_takeover = no_context_takeover
    proto = FrameProtocol(client=False, extensions=[ours])
    messages = ["hello", "chat event " * 300, "hello", "x", "ünïcødé ✓" * 40]
    for text in messages:  # one shared compression context across messages, as on a connection
        data = text.encode()
        parts = [data[: len(data) // 2], data[len(data) // 2 :]] if fragmented else [data]
        for index, part in enumerate(parts):
            fin = index == len(parts) - 1
            opcode = Opcode.TEXT if index == 0 else Opcode.CONT
            theirs = reference.encode(Frame(opcode, part, fin=fin))
            wsproto_opcode = WsprotoOpcode.TEXT if index == 0 else WsprotoOpcode.CONTINUATION
            rsv, mine = ours.frame_outbound(proto, wsproto_opcode, RsvBits(False, False, False), part, fin)
            assert bytes(mine) == bytes(theirs.data), (text[:20], index)
            assert rsv == (theirs.rsv1, theirs.rsv2, theirs.rsv3)


def test_control_frames_pass_uncompressed() -> None:
    ours = ServerDeflate()
    proto = FrameProtocol(client=False, extensions=[ours])
    for opcode in (WsprotoOpcode.PING, WsprotoOpcode.PONG, WsprotoOpcode.CLOSE):
        assert ours.frame_outbound(proto, opcode, RsvBits(False, False, False), b"\x03\xe8", True) == (
            RsvBits(False, False, False),
            b"\x03\xe8",
        )


def test_negotiation_answer_matches_real_servers() -> None:
    ours = ServerDeflate()
    assert ours.accept("permessage-deflate; client_max_window_bits") == (
        "server_max_window_bits=12; client_max_window_bits=12"
    )
