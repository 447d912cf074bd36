"""Operator endpoints: ``GET /admin/deployments``, ``GET /admin/usage`` and ``GET /metrics``.

``/admin/deployments`` shows breakers, load and latency; ``/admin/usage`` the ledger grouped by
user, route, model, ... (``observability/ledger/aggregate.py``). All are read-only views and carry
no secrets (deployment names, states, counts, usage figures). Keys, teams, limits, budgets and
the audit trail are in ``admin_keys.py``.

``/admin/*`` needs ``server.admin_key`` as a bearer token (``AdminAuth``). Without an admin key
it is closed while access control is on, and open only when access control is off (local
development). A virtual key is never an admin key: presented to ``/admin/*`` it gets 403.
``/metrics`` stays open for the scraper, as is usual inside a cluster.
"""

from __future__ import annotations

import base64
import hmac
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qs

import asyncpg  # type: ignore[import-untyped]
import orjson

from breakwater.core.errors import (
    AuthenticationFailed,
    BreakwaterError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from breakwater.core.keys import KEY_PREFIX
from breakwater.engine.calls.gateway import Gateway
from breakwater.observability.ledger.aggregate import UsagePage, aggregate, parse_by, parse_instant
from breakwater.observability.ledger.row import LedgerRow
from breakwater.observability.ledger.service import Store
from breakwater.observability.ledger.shadow_report import shadow_report
from breakwater.observability.metrics import CONTENT_TYPE, Metrics
from breakwater.server import errors
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, header, send_bytes

T = TypeVar("T")


class AdminAuth:
    """Who may use ``/admin/*``: the holder of the admin key (a bearer token).

    Args:
        admin_key: the resolved ``server.admin_key`` (``None``: not configured).
        open_without_key: with no admin key, let everyone in (access control off) rather than no one.
    """

    def __init__(self, admin_key: str | None, *, open_without_key: bool) -> None:
        self._key = admin_key.encode() if admin_key else None
        self._open = open_without_key

    @property
    def configured(self) -> bool:
        """An admin key is set."""
        return self._key is not None

    @property
    def open(self) -> bool:
        """No admin key and access control off: everyone is let in."""
        return self._key is None and self._open

    def judge(self, token: bytes) -> BreakwaterError | None:
        """``None`` when ``token`` (the bearer token, or the key typed in the dashboard's login
        form) may administer the gateway; otherwise why not."""
        if token.startswith(KEY_PREFIX.encode()) and not (self._key and hmac.compare_digest(token, self._key)):
            return PermissionDenied(
                "Virtual keys cannot use the admin API; it needs the admin key (server.admin_key)", code="admin_only"
            )
        if self._key is None:
            if self._open:
                return None
            return PermissionDenied(
                "The admin API is disabled: set server.admin_key (env:NAME or file:/path) to use it",
                code="admin_disabled",
            )
        if hmac.compare_digest(token, self._key):
            return None
        return AuthenticationFailed("The admin API needs the admin key: 'Authorization: Bearer <admin key>'")

    def derive(self, label: bytes) -> bytes | None:
        """A secret derived from the admin key for one purpose (HMAC-SHA256 of ``label``), so
        every worker holding the same key derives the same one; ``None`` without an admin key."""
        if self._key is None:
            return None
        return hmac.new(self._key, label, "sha256").digest()

    async def check(self, scope: Scope, send: Send) -> bool:
        """True when the request may go on; otherwise the refusal has been sent."""
        given = header(scope, b"authorization") or b""
        scheme, _, token = given.partition(b" ")
        token = token.strip() if scheme.lower() == b"bearer" else b""
        exc = self.judge(token)
        if exc is None:
            return True
        status, headers, body = errors.openai_error(exc, "admin")
        await send_bytes(send, status, body, headers)
        return False


class Admin:
    """The operator views of one gateway."""

    def __init__(self, gateway: Gateway, auth: AdminAuth, metrics: Metrics) -> None:
        self.gateway = gateway
        self._auth = auth
        self._metrics = metrics

    async def deployments(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every deployment used so far: breaker snapshot, in-flight, queue, latency, counters."""
        if not await self._authorised(scope, send):
            return
        body = orjson.dumps({"object": "list", "data": self.gateway.deployments()})
        await send_bytes(send, 200, body, JSON_HEADERS)

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self._metrics.render(), [(b"content-type", CONTENT_TYPE.encode())])

    def usage(self, store: Store | None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        """``GET /admin/usage``: ledger usage per group, costliest first, paged by ``page_token``.

        Query: ``by`` (user | route | model | deployment | key | region | day | tag:<key>, default user),
        ``since`` / ``until`` (unix seconds, ISO date/time or a duration ago like ``24h``; default
        the last 24 hours), ``limit`` (1..1000, default 50), ``page_token`` (from the last page).

        Args:
            store: the ledger store; None when the ledger is disabled (every call answers 404).
        """

        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            if not await self._authorised(scope, send):
                return
            try:
                if store is None:
                    raise NotFound("The request ledger is disabled (ledger.enabled: false): there is no usage to read")
                query = _UsageQuery.parse(scope.get("query_string", b""), self.gateway.clock.time())
                page = await _read_usage(store, query)
            except BreakwaterError as exc:
                status, headers, body = errors.openai_error(exc, "admin")
                await send_bytes(send, status, body, headers)
                return
            after = query.offset + len(page.groups)
            token = _encode_token(after) if page.has_more else None
            body = orjson.dumps({"object": "list", "data": page.groups, "next_page_token": token})
            await send_bytes(send, 200, body, JSON_HEADERS)

        return handler

    def shadow(self, store: Store | None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        """``GET /admin/shadow?route=R[&since=24h]``: the route's requests beside their candidate
        calls (``observability/ledger/shadow_report.py``)."""

        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            if not await self._authorised(scope, send):
                return
            try:
                if store is None:
                    raise NotFound("The request ledger is disabled (ledger.enabled: false): there is no shadow traffic")
                params = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
                route = params.get("route")
                if not route:
                    raise InvalidRequest("Name the shadowed route: ?route=NAME", param="route")
                now = self.gateway.clock.time()
                since = read_param(params, "since", lambda v: parse_instant(v, now), now - 86400.0)
                rows = await _fetch(store, since)
            except BreakwaterError as exc:
                status, headers, body = errors.openai_error(exc, "admin")
                await send_bytes(send, status, body, headers)
                return
            report = shadow_report(rows, route, complete=len(rows) < SHADOW_ROWS)
            await send_bytes(send, 200, orjson.dumps({**report, "since": since}), JSON_HEADERS)

        return handler

    async def _authorised(self, scope: Scope, send: Send) -> bool:
        return await self._auth.check(scope, send)


#: the most ledger rows a shadow report reads
SHADOW_ROWS = 200_000


async def _fetch(store: Store, since: float) -> list[LedgerRow]:
    try:
        return await store.fetch(since=since, limit=SHADOW_ROWS)
    except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unavailable(
            f"The ledger database cannot be read: {type(exc).__name__}", code="ledger_unavailable"
        ) from exc


@dataclass(frozen=True, slots=True)
class _UsageQuery:
    by: str
    tag_key: str | None
    since: float
    until: float
    limit: int
    offset: int

    @classmethod
    def parse(cls, raw: bytes, now: float) -> _UsageQuery:
        """The query string of ``GET /admin/usage``; InvalidRequest (400) naming the bad parameter."""
        params = {k: v[-1] for k, v in parse_qs(raw.decode("latin-1")).items()}
        unknown = set(params) - {"by", "since", "until", "limit", "page_token"}
        if unknown:
            raise InvalidRequest(f"Unknown query parameter {sorted(unknown)[0]!r}", param=sorted(unknown)[0])
        everyone: tuple[str, str | None] = ("user", None)
        by, tag_key = read_param(params, "by", parse_by, everyone)
        since = read_param(params, "since", lambda v: parse_instant(v, now), now - 86400.0)
        until = read_param(params, "until", lambda v: parse_instant(v, now), now)
        limit = read_param(params, "limit", int, 50)
        offset = read_param(params, "page_token", _decode_token, 0)
        if not 1 <= limit <= 1000:
            raise InvalidRequest("Invalid limit: must be between 1 and 1000", param="limit")
        if since >= until:
            raise InvalidRequest("Invalid since: must be before until", param="since")
        return cls(by, tag_key, since, until, limit, offset)


def read_param(params: dict[str, str], name: str, read: Callable[[str], T], default: T) -> T:
    if name not in params:
        return default
    try:
        return read(params[name])
    except ValueError as exc:
        raise InvalidRequest(f"Invalid {name}: {exc}", param=name) from None


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"usage:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        text = ""
    kind, _, offset = text.partition(":")
    if kind == "usage" and offset.isascii() and offset.isdigit():
        return int(offset)
    raise ValueError("not a page token from this endpoint")


async def _read_usage(store: Store, q: _UsageQuery) -> UsagePage:
    try:
        return await aggregate(
            store, by=q.by, since=q.since, until=q.until, limit=q.limit, offset=q.offset, tag_key=q.tag_key
        )
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # OSError: a refused connection or a timeout (TimeoutError is one)
        raise Unavailable(
            f"The ledger database cannot be read: {type(exc).__name__}", code="ledger_unavailable"
        ) from exc
