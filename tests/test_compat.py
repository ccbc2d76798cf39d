"""What differs between the wsproto releases wsfake supports is smoothed out where a client could see it."""

from __future__ import annotations

from wsfake import _compat


def test_the_101_says_upgrade_websocket_as_real_servers_do_whatever_wsproto_wrote() -> None:
    written_by_wsproto_1_2 = [(b"Upgrade", b"WebSocket"), (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Accept", b"k")]
    assert _compat.accept_headers(written_by_wsproto_1_2) == [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", b"k"),
    ]
