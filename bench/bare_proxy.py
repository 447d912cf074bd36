"""The ceiling for any Python gateway: a raw-ASGI pass-through with no features at all.

uvicorn + httptools + uvloop in front, one pooled HTTP client behind (aiohttp by default, as
the gateway uses). It forwards the body to ``UPSTREAM/v1/chat/completions`` and streams the
answer back. Benchmarks only.

    python bench/bare_proxy.py --port 8300 --upstream http://127.0.0.1:9000 [--workers N]
        [--client aiohttp|httpx|pyreqwest]

``--client`` picks the upstream client, to compare them on the same benchmark
(``bench/upstream_clients.py``); httpx and pyreqwest are not dependencies of the gateway and
must be installed to be measured.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
import uvicorn

#: (url, body) -> (status, content type, the body's chunks as they arrive)
Forward = Callable[[str, bytes], AbstractAsyncContextManager[tuple[int, str, AsyncIterator[bytes]]]]
JSON = "application/json"


async def httpx_client() -> tuple[Forward, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1000, max_keepalive_connections=1000))

    @asynccontextmanager
    async def forward(url: str, body: bytes) -> AsyncIterator[tuple[int, str, AsyncIterator[bytes]]]:
        async with client.stream("POST", url, content=body, headers={"content-type": JSON}) as resp:
            yield resp.status_code, resp.headers.get("content-type", JSON), resp.aiter_raw()

    return forward, client.aclose


async def pyreqwest_client() -> tuple[Forward, Callable[[], Awaitable[None]]]:
    from pyreqwest.client import ClientBuilder

    client = ClientBuilder().max_connections(1000).build()

    async def chunks(reader: Any) -> AsyncIterator[bytes]:
        while (chunk := await reader.read_chunk()) is not None:
            yield bytes(chunk)

    @asynccontextmanager
    async def forward(url: str, body: bytes) -> AsyncIterator[tuple[int, str, AsyncIterator[bytes]]]:
        request = client.post(url).header("content-type", JSON).body_bytes(body).build_streamed()
        async with request as resp:
            yield resp.status, resp.get_header("content-type") or JSON, chunks(resp.body_reader)

    return forward, client.close


#: the other clients; aiohttp (the default, and the ceiling's) is called inline, without the
#: context-manager layer they need to share one shape
CLIENTS = {"httpx": httpx_client, "pyreqwest": pyreqwest_client}


class BareProxy:
    def __init__(self) -> None:
        self.upstream = os.environ["BARE_UPSTREAM"]
        self.client = os.environ.get("BARE_CLIENT", "aiohttp")
        self.forward: Forward | None = None
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            close: Callable[[], Awaitable[None]] | None = None
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if self.client == "aiohttp":
                        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
                        close = self.session.close
                    else:
                        self.forward, close = await CLIENTS[self.client]()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if close is not None:
                        await close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.session is not None:
            async with self.session.post(
                self.upstream + scope["path"], data=body, headers={"content-type": JSON}
            ) as resp:
                headers = [(b"content-type", resp.headers.get("content-type", JSON).encode())]
                await send({"type": "http.response.start", "status": resp.status, "headers": headers})
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            return
        assert self.forward is not None
        async with self.forward(self.upstream + scope["path"], body) as (status, content_type, chunks):
            headers = [(b"content-type", content_type.encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def app() -> BareProxy:
    return BareProxy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--client", choices=["aiohttp", *sorted(CLIENTS)], default="aiohttp")
    args = parser.parse_args()
    os.environ["BARE_UPSTREAM"] = args.upstream
    os.environ["BARE_CLIENT"] = args.client
    uvicorn.run(
        "bare_proxy:app",
        factory=True,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
