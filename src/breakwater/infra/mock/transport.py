"""``MockSender``: the engine's ``HttpSender`` port answered by an in-process ``MockService``.

A deployment on a provider of type ``mock`` sends its upstream calls here instead of over a
socket, so demos and chaos drills need no second process, and the engine still goes through
its real adapters (the request is encoded, the reply parsed) exactly as with a live vendor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

from breakwater.core.errors import UpstreamConnectionError
from breakwater.engine.ports import UpstreamResponse
from breakwater.infra.mock.faults import ConnectionReset
from breakwater.infra.mock.service import MockReply, MockService
from breakwater.providers.base import HttpRequest


class MockResponse:
    """A ``MockReply`` seen through the ``UpstreamResponse`` port."""

    __slots__ = ("_consumed", "_provider", "_reply", "headers", "status")

    def __init__(self, reply: MockReply, provider: str) -> None:
        self.status = reply.status
        self.headers: Mapping[str, str] = reply.headers
        self._reply = reply
        self._provider = provider
        self._consumed = False

    async def read(self) -> bytes:
        if self._reply.chunks is None:
            return self._reply.body
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._consumed:
            raise RuntimeError("the mock response body was already read")
        self._consumed = True
        if self._reply.chunks is None:
            if self._reply.body:
                yield self._reply.body
            return
        try:
            async for chunk in self._reply.chunks:
                yield chunk
        except ConnectionReset:
            raise UpstreamConnectionError(f"{self._provider}: connection reset", provider=self._provider) from None


class MockSender:
    """Implements ``engine.ports.HttpSender`` over a ``MockService``; the URL's host is ignored."""

    __slots__ = ("_service",)

    def __init__(self, service: MockService) -> None:
        self._service = service

    def open(
        self, request: HttpRequest, *, provider: str, connect_timeout: float
    ) -> AbstractAsyncContextManager[UpstreamResponse]:
        return self._open(request, provider)

    @asynccontextmanager
    async def _open(self, request: HttpRequest, provider: str) -> AsyncIterator[UpstreamResponse]:
        url = urlsplit(request.url)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            reply = await self._service.handle(request.method, url.path or "/", url.query, headers, request.body)
        except ConnectionReset:
            raise UpstreamConnectionError(f"{provider}: connection reset", provider=provider) from None
        response = MockResponse(reply, provider)
        try:
            yield response
        finally:
            chunks = reply.chunks
            if chunks is not None and hasattr(chunks, "aclose"):
                await chunks.aclose()  # a stream abandoned half-way must not leave its generator pending
