"""The ceiling for any Python gateway: a raw-ASGI pass-through with no features at all.

uvicorn + httptools + uvloop in front, one pooled aiohttp session behind. It forwards the body
to ``UPSTREAM/v1/chat/completions`` and streams the answer back. Benchmarks only.

    python bench/bare_proxy.py --port 8300 --upstream http://127.0.0.1:9000 [--workers N]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import aiohttp
import uvicorn


class BareProxy:
    def __init__(self) -> None:
        self.upstream = os.environ["BARE_UPSTREAM"]
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.session is not None:
                        await self.session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        assert self.session is not None
        async with self.session.post(
            self.upstream + scope["path"], data=body, headers={"content-type": "application/json"}
        ) as resp:
            headers = [(b"content-type", resp.headers.get("content-type", "application/json").encode())]
            await send({"type": "http.response.start", "status": resp.status, "headers": headers})
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def app() -> BareProxy:
    return BareProxy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ["BARE_UPSTREAM"] = args.upstream
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
