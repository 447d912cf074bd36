"""The mock provider recording every request body it is sent: what a test asserts the upstream
received. ``upstream`` (tests/server/conftest.py) runs one on loopback per test module."""

from __future__ import annotations

from typing import Any

import orjson

from breakwater.infra.mock.app import create_mock_app


class RecordingUpstream:
    """The mock provider as an ASGI app that keeps every request body it was sent, by path."""

    def __init__(self) -> None:
        self._app = create_mock_app([])
        self.bodies: dict[str, list[Any]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            self.bodies.setdefault(scope["path"], []).append(orjson.loads(body))
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app(scope, replay, send)
