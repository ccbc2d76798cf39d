"""A raw client: the HTTP request and every frame written byte by byte, to drive protocol violations.

No client library would send an unmasked frame or a reserved opcode; this client
does, to compare how the real servers and wsfake's server side fail the
connection. It connects over TCP to the real servers and through wsfake's pipe
in the fake run (where the patch is active), then reads everything the server
sends until it closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from typing import Any

import anyio
from runner import Client, Trace, qualified

import wsfake

CLIENT = Client("raw socket", "asyncio", "-", describe=lambda exc: [qualified(exc), str(exc)])

UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Raw:
    """A byte stream to the server: TCP for a real server, wsfake's pipe while a patch is active."""

    def __init__(self, reader: Any, writer: Any, stream: Any) -> None:
        self._reader, self._writer, self._stream = reader, writer, stream
        self._buffer = b""

    @classmethod
    async def open(cls, url: str) -> Raw:
        parsed = wsfake.URL.parse(url)
        if wsfake.is_patched():
            from wsfake._patch import _Dialer

            destination = _Dialer().resolve(parsed)
            assert destination is not None
            return cls(None, None, (await destination.open()).client_stream())
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        return cls(reader, writer, None)

    async def send(self, data: bytes) -> None:
        if self._stream is not None:
            await self._stream.send(data)
        else:
            self._writer.write(data)
            await self._writer.drain()

    async def _read(self) -> bytes:
        try:
            return bytes(await (self._stream.receive() if self._stream is not None else self._reader.read(65536)))
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
            return b""

    async def read_head(self, timeout: float = 3.0) -> bytes:
        """The response's status line and headers (what follows stays buffered)."""
        with anyio.fail_after(timeout):
            while b"\r\n\r\n" not in self._buffer:
                chunk = await self._read()
                if not chunk:
                    break
                self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    async def read_to_eof(self, timeout: float = 3.0) -> bytes:
        data, self._buffer = self._buffer, b""
        with anyio.move_on_after(timeout):
            while chunk := await self._read():
                data += chunk
        return data

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
        else:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()


def frame(first: int, payload: bytes, *, masked: bool = True) -> bytes:
    """A frame with the given first byte (FIN, RSV, opcode) and payload, masked as a client must."""
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def describe_response(data: bytes) -> list[Any]:
    """The server's answer: status line, then each frame (opcode and payload; a close as code and reason)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    events: list[Any] = [head.split(b"\r\n", 1)[0].decode("latin-1")]
    while len(rest) >= 2:
        opcode, length, offset = rest[0] & 0x0F, rest[1] & 0x7F, 2
        if length == 126:
            length, offset = struct.unpack("!H", rest[2:4])[0], 4
        elif length == 127:
            length, offset = struct.unpack("!Q", rest[2:10])[0], 10
        payload, rest = rest[offset : offset + length], rest[offset + length :]
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            events.append(["close", code, payload[2:].decode("utf-8", "replace")])
        else:
            events.append(["frame", opcode, payload.hex()])
    return events


async def upgrade(url: str) -> Raw:
    raw = await Raw.open(url)
    await raw.send(UPGRADE.format(path=wsfake.URL.parse(url).resource, host="localhost").encode())
    return raw


async def violation(url: str, trace: Trace, data: bytes) -> None:
    raw = await upgrade(url)
    head = await raw.read_head()
    await raw.send(data)
    trace.add("server sent", describe_response(head + await raw.read_to_eof()))
    await raw.close()


VIOLATIONS: dict[str, bytes] = {
    "unmasked_frame": frame(0x81, b"hello", masked=False),
    "reserved_opcode": frame(0x83, b"x"),
    "reserved_control_opcode": frame(0x8B, b"x"),
    "rsv_bits_without_extension": frame(0xC1, b"x"),
    "control_frame_over_125": frame(0x89, b"p" * 126),
    "fragmented_control_frame": frame(0x09, b"ping"),
    "close_code_999": frame(0x88, struct.pack("!H", 999)),
    "close_code_1004": frame(0x88, struct.pack("!H", 1004)),
    "close_code_1005": frame(0x88, struct.pack("!H", 1005)),
    "close_code_5000": frame(0x88, struct.pack("!H", 5000)),
    "close_one_byte_payload": frame(0x88, b"\x03"),
    "continuation_without_start": frame(0x80, b"x"),
    "text_during_fragmented_message": frame(0x01, b"a") + frame(0x81, b"b"),
    "invalid_utf8_close_reason": frame(0x88, struct.pack("!H", 1000) + b"\xc3\x28"),
}


def _register(name: str, data: bytes) -> None:
    async def drive(url: str, trace: Trace) -> None:
        await violation(url, trace, data)

    CLIENT.driver(f"h_{name}", f"a_{name}")(drive)


for _name, _data in VIOLATIONS.items():
    _register(_name, _data)


async def request(url: str, trace: Trace, text: str) -> None:
    raw = await Raw.open(url)
    try:
        await raw.send(text.format(path=wsfake.URL.parse(url).resource).encode())
        data = await raw.read_to_eof()
    finally:
        await raw.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = sorted(line.split(":", 1)[0].lower() for line in lines[1:] if not line.lower().startswith("date:"))
    trace.add("response", lines[0], headers, body.decode("latin-1"))


@CLIENT.driver("h_plain_http_get")
async def plain_http_get(url: str, trace: Trace) -> None:
    # A browser or a health check: a GET without the upgrade headers.
    await request(url, trace, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")


@CLIENT.driver("h_bad_key", "a_bad_key")
async def bad_key(url: str, trace: Trace) -> None:
    await request(url, trace, UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "not-a-key"))


@CLIENT.driver("a_client_vanishes", "h_client_vanishes")
async def client_vanishes(url: str, trace: Trace) -> None:
    # The client's connection ends without a close frame: the server code sees it as the real server reports it.
    raw = await upgrade(url)
    trace.add("response", (await raw.read_head()).split(b"\r\n", 1)[0].decode("latin-1"))
    await raw.send(frame(0x81, b"last words"))
    await raw.close()
