"""The upstream HTTP client against a real socket server on loopback."""

from __future__ import annotations

import asyncio

import pytest

from breakwater.core.errors import UpstreamConnectionError
from breakwater.infra.http import AiohttpSender
from breakwater.providers.base import HttpRequest

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def _server(answers_per_connection: int) -> tuple[asyncio.Server, list[int]]:
    """A keep-alive server that answers N requests per connection, then closes on the next without answering."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        for _ in range(answers_per_connection):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(OK)
            await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the next request arrives on a connection we "timed out"
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, connections


def _request(server: asyncio.Server) -> HttpRequest:
    port = server.sockets[0].getsockname()[1]
    return HttpRequest(
        "POST", f"http://127.0.0.1:{port}/v1/chat/completions", {"content-type": "application/json"}, b"{}"
    )


async def test_a_stale_pooled_connection_is_retried_on_a_fresh_one() -> None:
    """A request sent on a pooled connection the upstream closed without answering is sent again, not failed."""
    server, connections = await _server(answers_per_connection=1)
    sender = AiohttpSender()
    await sender.start()
    try:
        for _ in range(3):
            async with sender.open(_request(server), provider="up", connect_timeout=5) as response:
                assert response.status == 200
                assert await response.read() == b"{}"
        assert len(connections) == 3  # each reuse failed once and went to a new connection
    finally:
        await sender.close()
        server.close()


async def test_an_upstream_that_always_hangs_up_is_a_connection_error() -> None:
    """An upstream that closes every connection without answering is an UpstreamConnectionError after a few tries."""
    server, connections = await _server(answers_per_connection=0)
    sender = AiohttpSender()
    await sender.start()
    try:
        with pytest.raises(UpstreamConnectionError):
            async with sender.open(_request(server), provider="up", connect_timeout=5):
                pass
        assert len(connections) == 4
    finally:
        await sender.close()
        server.close()
