"""A real loopback server for tests (uvicorn on an ephemeral port, in a background thread), and
the clients the tests point at it: the official SDKs, and the admin API's."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx2
import openai
import uvicorn

#: the conversation most gateway tests send
HELLO = [{"role": "user", "content": "Hello there"}]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 with uvicorn (httptools + uvloop) and yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, loop="uvloop", http="httptools", access_log=False, log_level="warning")
    started = threading.Event()

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            started.set()  # signalled by the server itself once it accepts connections

    server = _Server(config)

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        finally:
            started.set()
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("test server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def openai_sdk(base_url: str, api_key: str = "unused", **options: Any) -> openai.OpenAI:
    """The OpenAI SDK on the gateway at ``base_url`` (no ``/v1``), without retries unless ``options`` say so."""
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, **{"max_retries": 0, **options})


def anthropic_sdk(base_url: str, api_key: str = "unused", **options: Any) -> anthropic.Anthropic:
    """The Anthropic SDK on the gateway at ``base_url``, without retries unless ``options`` say so."""
    return anthropic.Anthropic(base_url=base_url, api_key=api_key, **{"max_retries": 0, **options})


def admin_http(base_url: str, admin_key: str) -> httpx2.Client:
    """An HTTP client for the gateway's admin API, authorised with ``admin_key``."""
    return httpx2.Client(base_url=base_url, timeout=10, headers={"authorization": f"Bearer {admin_key}"})
