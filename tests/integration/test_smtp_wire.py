"""SmtpWire's reply reading against a real loopback server that writes exact bytes.

The server here is a plain asyncio server on 127.0.0.1 that sends what each test scripts,
in the chunks it scripts: replies split mid-line, several replies in one packet,
multi-line replies, garbage, silence and EOF.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiosmtplib
import pytest

from desktop_app.core.delivery.smtp_wire import MAX_LINE, Reply, SmtpWire
from tests.support.servers import LOOPBACK


@asynccontextmanager
async def scripted_peer(
    chunks: Sequence[bytes], *, close_after: bool = False, pause: float = 0.02
) -> AsyncIterator[tuple[SmtpWire, list[bytes]]]:
    """A wire connected to a server that sends ``chunks`` (pausing between them)."""
    received: list[bytes] = []
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def read_all() -> None:
            while data := await reader.read(65536):
                received.append(data)

        reading = asyncio.create_task(read_all())
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(pause)
        if close_after:
            writer.close()
        await done.wait()
        reading.cancel()
        writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, LOOPBACK, port)
    wire = SmtpWire.take_over(transport, timeout=2.0)
    try:
        yield wire, received
    finally:
        wire.close()
        done.set()
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_replies_split_and_bunched_come_out_one_by_one_in_order() -> None:
    chunks = [
        b"250 2.1.0 O",
        b"k\r\n250 2.1.5 ",
        b"Ok\r\n354 go ahead\r\n250-first\r\n250 second\r\n",
    ]
    async with scripted_peer(chunks) as (wire, _received):
        replies = [await wire.reply() for _ in range(4)]
        assert wire.in_sync

    assert replies == [
        Reply(250, "2.1.0 Ok"),
        Reply(250, "2.1.5 Ok"),
        Reply(354, "go ahead"),
        Reply(250, "first\nsecond"),
    ]


@pytest.mark.asyncio
async def test_a_command_goes_out_as_one_line_and_gets_its_reply() -> None:
    async with scripted_peer([b"250 2.0.0 reset\r\n"], pause=0) as (wire, received):
        reply = await wire.command(b"RSET")
        await asyncio.sleep(0.05)

    assert reply == Reply(250, "2.0.0 reset")
    assert b"".join(received) == b"RSET\r\n"


@pytest.mark.asyncio
async def test_a_reply_nobody_asked_for_puts_the_wire_out_of_sync() -> None:
    async with scripted_peer([b"421 4.4.2 idle too long\r\n"]) as (wire, _received):
        await asyncio.sleep(0.1)
        assert not wire.in_sync
        assert await wire.reply() == Reply(421, "4.4.2 idle too long")


@pytest.mark.asyncio
async def test_silence_times_out_and_drops_the_connection() -> None:
    async with scripted_peer([]) as (wire, _received):
        wire._timeout = 0.2  # the only knob: the default is the provider's command timeout
        with pytest.raises(aiosmtplib.SMTPReadTimeoutError):
            await wire.reply()
        # A late reply must not pair with the next command: the wire is closed for good.
        assert not wire.is_open
        with pytest.raises(aiosmtplib.SMTPReadTimeoutError):
            wire.write(b"NOOP\r\n")


@pytest.mark.asyncio
async def test_the_server_closing_is_a_disconnect_after_what_it_said() -> None:
    async with scripted_peer([b"421 4.3.2 bye\r\n"], close_after=True) as (wire, _received):
        first = await wire.reply()
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await wire.reply()

    assert first == Reply(421, "4.3.2 bye")


@pytest.mark.parametrize(
    "garbage",
    [
        b"hello there\r\n",
        b"25 short\r\n",
        b"250x no separator\r\n",
        b"250 " + b"x" * MAX_LINE + b"\r\n",
        b"250-" + b"x" * (MAX_LINE + 10),  # a line that never ends
    ],
    ids=["no code", "short code", "bad separator", "line too long", "endless line"],
)
@pytest.mark.asyncio
async def test_a_malformed_reply_is_an_error_and_drops_the_connection(garbage: bytes) -> None:
    async with scripted_peer([garbage]) as (wire, _received):
        with pytest.raises(aiosmtplib.SMTPResponseException):
            await wire.reply()
        assert not wire.is_open


@pytest.mark.asyncio
async def test_an_endless_multi_line_reply_is_cut_off() -> None:
    lines = [b"250-" + b"y" * 1000 + b"\r\n"] * 100
    async with scripted_peer([b"".join(lines)]) as (wire, _received):
        with pytest.raises(aiosmtplib.SMTPResponseException, match="too long"):
            await wire.reply()
