"""The one upstream HTTP client: a pooled, keep-alive aiohttp session behind the ``HttpSender`` port.

It is created once at start-up (``AiohttpSender.start``) and closed at shutdown; every upstream
call of the process shares its connection pool. aiohttp's exceptions are mapped to the error
tree here, in one context manager that also wraps reading and iterating the body, so nothing
above this module ever sees an aiohttp type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager

import aiohttp

from breakwater.core.errors import UpstreamConnectionError, UpstreamTimeout
from breakwater.providers.base import HttpRequest


@contextmanager
def _mapped(provider: str) -> Iterator[None]:
    try:
        yield
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout(f"{provider} did not answer in time", provider=provider) from exc
    except (aiohttp.ClientError, OSError) as exc:
        # connection refused, reset, DNS failure, payload cut short: the same to a caller
        raise UpstreamConnectionError(
            f"{provider}: connection failed ({type(exc).__name__})", provider=provider
        ) from exc


class _Response:
    __slots__ = ("_provider", "_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse, provider: str) -> None:
        self._resp = resp
        self._provider = provider
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers  # case-insensitive already; read on error paths only

    async def read(self) -> bytes:
        with _mapped(self._provider):
            return await self._resp.read()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        with _mapped(self._provider):
            async for chunk in self._resp.content.iter_any():
                yield chunk


#: how many stale pooled connections one request may run into before it is a real failure
_STALE_RETRIES = 3


class AiohttpSender:
    """Sends upstream requests over one shared ``aiohttp.ClientSession``."""

    def __init__(self, *, pool_size: int = 1000, keepalive_s: float = 60.0) -> None:
        self._pool_size = pool_size
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=self._keepalive_s, ttl_dns_cache=300)
        # no session-wide timeout: each call carries its own deadline from its route
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None), auto_decompress=True
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def open(self, request: HttpRequest, *, provider: str, connect_timeout: float) -> AsyncIterator[_Response]:
        if self._session is None:
            raise RuntimeError("AiohttpSender.start() was not awaited")
        timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_connect=connect_timeout)
        with _mapped(provider):
            for stale in range(_STALE_RETRIES + 1):
                try:
                    resp = await self._session.request(
                        request.method, request.url, data=request.body, headers=request.headers, timeout=timeout
                    )
                    break
                except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                    # A pooled connection the upstream closed while idle (its keep-alive is often
                    # shorter than ours; uvicorn's is 5 s), found out only by sending on it: the
                    # server hung up without answering, or the request could not even be written.
                    # It did not take the request, so send it again on another connection instead
                    # of reporting an upstream failure (a burst of these after an idle spell, or
                    # after the process was paused, would otherwise trip the breaker). A failed
                    # *new* connection (refused, DNS) is a real failure and is not retried here.
                    if isinstance(exc, aiohttp.ClientConnectorError) or stale == _STALE_RETRIES:
                        raise
        try:
            yield _Response(resp, provider)
        finally:
            resp.release()


__all__ = ["AiohttpSender"]
