"""permessage-deflate: wsfake's server side compresses exactly as websockets.serve does."""

from __future__ import annotations

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from wsproto.frame_protocol import FrameProtocol, RsvBits
from wsproto.frame_protocol import Opcode as WsprotoOpcode

from wsfake._deflate import ServerDeflate


@pytest.mark.parametrize("fragmented", [False, True])
def test_compressed_frames_are_byte_identical_to_websockets(fragmented: bool) -> None:
    reference = PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})  # websockets.serve's server side
    ours = ServerDeflate()
    ours._enabled = True
    proto = FrameProtocol(client=False, extensions=[ours])
    messages = ["hello", "chat event " * 300, "hello", "x", "ünïcødé ✓" * 40]
    for text in messages:  # one shared compression context across messages, as on a connection
        data = text.encode()
        parts = [data[: len(data) // 2], data[len(data) // 2 :]] if fragmented else [data]
        for index, part in enumerate(parts):
            fin = index == len(parts) - 1
            opcode = Opcode.TEXT if index == 0 else Opcode.CONT
            theirs = bytes(reference.encode(Frame(opcode, part, fin=fin)).data)
            wsproto_opcode = WsprotoOpcode.TEXT if index == 0 else WsprotoOpcode.CONTINUATION
            _, mine = ours.frame_outbound(proto, wsproto_opcode, RsvBits(False, False, False), part, fin)
            assert bytes(mine) == theirs, (text[:20], index)


def test_negotiation_answer_matches_real_servers() -> None:
    ours = ServerDeflate()
    assert ours.accept("permessage-deflate; client_max_window_bits") == (
        "server_max_window_bits=12; client_max_window_bits=12"
    )
