"""Without the websockets package, handlers get wsfake's own exception classes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["websockets"] = None  # as if it were not installed
    sys.path.insert(0, "tests")
    import anyio
    from wsproto.events import CloseConnection, TextMessage
    import wsfake
    from wsproto_client import WsprotoClient

    seen = []

    async def handler(ws):
        await ws.send(await ws.recv())
        try:
            await ws.recv()
        except wsfake.ConnectionClosedOK as exc:
            seen.append((type(exc).__module__, exc.rcvd.code, exc.rcvd.reason, str(exc), ws.state.name))

    async def main():
        network = wsfake.Network(shutdown_timeout=0.1)  # the client never closes its end of the connection
        network.route("ws://x/*", handler)
        client, _ = await WsprotoClient.connect(network, "ws://x/")
        await client.send(TextMessage("hi"))
        assert (await client.next_event()) == TextMessage("hi")
        await client.send(CloseConnection(1001, "bye"))
        await client.next_event()
        await network.aclose()
        network.raise_errors()

    anyio.run(main)
    assert "websockets" not in {m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
    print(seen)
    """
)


def test_fallback_exception_classes() -> None:
    result = subprocess.run([sys.executable, "-W", "error", "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = (
        "wsfake._closed",
        1001,
        "bye",
        "received 1001 (going away) bye; then sent 1001 (going away) bye",
        "CLOSED",
    )
    assert result.stdout.strip() == str([expected])
