"""Operator endpoints: ``GET /admin/deployments`` (breakers, load, latency) and ``GET /metrics``.

Both are read-only views of live state and carry no secrets (deployment names, states and
counts). When ``server.admin_key`` is configured, ``/admin/*`` needs it as a bearer token;
``/metrics`` stays open for the scraper, as is usual inside a cluster.
"""

from __future__ import annotations

import hmac

import orjson

from breakwater.core.errors import AuthenticationFailed
from breakwater.engine.gateway import Gateway
from breakwater.observability.metrics import CONTENT_TYPE, Metrics
from breakwater.server import errors
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, header, send_bytes


class Admin:
    """The operator views of one gateway."""

    def __init__(self, gateway: Gateway, admin_key: str | None) -> None:
        self.gateway = gateway
        self._key = admin_key.encode() if admin_key else None
        self._metrics = Metrics(gateway)

    async def deployments(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every deployment used so far: breaker snapshot, in-flight, queue, latency, counters."""
        if not await self._authorised(scope, send):
            return
        body = orjson.dumps({"object": "list", "data": self.gateway.deployments()})
        await send_bytes(send, 200, body, JSON_HEADERS)

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self._metrics.render(), [(b"content-type", CONTENT_TYPE.encode())])

    async def _authorised(self, scope: Scope, send: Send) -> bool:
        if self._key is None:
            return True
        given = header(scope, b"authorization") or b""
        scheme, _, token = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key):
            return True
        status, headers, body = errors.openai_error(
            AuthenticationFailed("The admin API needs the admin key: 'Authorization: Bearer <admin key>'"), "admin"
        )
        await send_bytes(send, status, body, headers)
        return False
