"""Test harness for the mock provider: a fake clock, a request helper, and httpx2 transports
(and clients) that put the official SDKs in front of ``MockService`` without a network.

The fake clock's ``sleep`` advances time instantly and records how long it was asked to wait,
so latency, stream pacing and schedule windows are tested without real waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import orjson

from breakwater.infra.clock import ManualClock, SystemRandom
from breakwater.infra.mock.faults import ConnectionReset
from breakwater.infra.mock.service import MockReply, MockService

FakeClock = ManualClock  # the package's manual clock; the mock tests know it by this name


async def call(
    service: MockService,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    query: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[MockReply, bytes]:
    """Send one request to the service; returns the reply and its whole body (streams joined)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body) if body is not None else b""
    reply = await service.handle(method, path, query, headers or {}, raw)
    if reply.chunks is None:
        return reply, reply.body
    return reply, b"".join([c async for c in reply.chunks])


def async_transport(service: MockService) -> httpx2.MockTransport:
    """An httpx2 transport whose requests are answered by ``service``, streams chunk by chunk."""

    async def handler(request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            reply = await service.handle(request.method, request.url.path, request.url.query.decode(), headers, body)
        except ConnectionReset as exc:
            raise httpx2.ReadError(str(exc), request=request) from exc
        if reply.chunks is None:
            return httpx2.Response(reply.status, headers=reply.headers, content=reply.body)
        chunks = reply.chunks

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for chunk in chunks:
                    yield chunk
            except ConnectionReset as exc:
                raise httpx2.ReadError(str(exc), request=request) from exc

        return httpx2.Response(reply.status, headers=reply.headers, content=stream())

    return httpx2.MockTransport(handler)


def sdk_http(seed: int = 1) -> httpx2.AsyncClient:
    """An async client for an official SDK, answered by a fresh ``MockService`` (fake clock, seeded random)."""
    return httpx2.AsyncClient(transport=async_transport(MockService(FakeClock(), SystemRandom(seed))))


def sync_transport(service: MockService) -> httpx2.MockTransport:
    """The same for synchronous clients: each request runs the service on a fresh event loop."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}

        async def run() -> tuple[MockReply, bytes]:
            reply = await service.handle(request.method, request.url.path, request.url.query.decode(), headers, body)
            if reply.chunks is None:
                return reply, reply.body
            return reply, b"".join([c async for c in reply.chunks])

        reply, content = asyncio.run(run())
        return httpx2.Response(reply.status, headers=reply.headers, content=content)

    return httpx2.MockTransport(handler)


def json_of(data: bytes) -> Any:
    return orjson.loads(data)
