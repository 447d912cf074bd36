"""The admin API for keys, teams, per-user/per-tag limits, budgets and the audit trail.

```
POST   /admin/keys                      create (the key is in this response only)
GET    /admin/keys[?user=&team=]        list
GET    /admin/keys/{id}                 one key
PATCH  /admin/keys/{id}                 change name, user, team, routes, tags, limits, expiry, regions
POST   /admin/keys/{id}/disable|enable|revoke
POST   /admin/keys/{id}/rotate          {"overlap_s": 3600}: a new key; the old one works that long
POST   /admin/teams                     create;  GET /admin/teams
GET|PATCH|DELETE /admin/teams/{name};   POST /admin/teams/{name}/disable|enable
GET    /admin/limits                    per-user and per-tag limits
PUT|DELETE /admin/limits/{user|tag}/{subject}
GET    /admin/budgets[?scope=&subject=] every budget: cap, spend this period, reservations
GET    /admin/audit[?target=&limit=]    who changed what, newest first
```

Every route needs the admin key (``admin.AdminAuth``). Changes are made by
``engine/access/operations.AccessOperations`` and audited with the actor: the ``x-breakwater-actor``
header when the caller names themselves, and the client's address.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from breakwater.core.errors import BreakwaterError, InvalidRequest, MethodNotAllowed, NotFound
from breakwater.engine.access.operations import (
    AccessOperations,
    KeyPatch,
    KeySpec,
    LimitsSpec,
    TeamPatch,
    TeamSpec,
    parse,
)
from breakwater.engine.limits.checks import Scope
from breakwater.engine.limits.quota import Quota
from breakwater.server import errors
from breakwater.server.admin import AdminAuth
from breakwater.server.asgi import JSON_HEADERS, Receive, Send, header, read_json_body, send_bytes
from breakwater.server.asgi import Scope as AsgiScope

Json = dict[str, Any]
_MAX_BODY = 64 * 1024


class KeysAdminApi:
    """The HTTP API for key administration: handlers for ``/admin/{keys,teams,limits,budgets,audit}``."""

    def __init__(self, auth: AdminAuth, admin: AccessOperations | None, quota: Quota, now: Callable[[], float]) -> None:
        self._auth = auth
        self._admin = admin
        self._quota = quota
        self._now = now

    def handles(self, path: str) -> bool:
        return path.startswith(("/admin/keys", "/admin/teams", "/admin/limits", "/admin/budgets", "/admin/audit"))

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if not await self._auth.check(scope, send):
            return
        try:
            status, body = await self._dispatch(scope, receive)
        except BreakwaterError as exc:
            status_code, headers, payload = errors.openai_error(exc, "admin")
            await send_bytes(send, status_code, payload, headers)
            return
        await send_bytes(send, status, orjson.dumps(body), JSON_HEADERS)

    async def _dispatch(self, scope: AsgiScope, receive: Receive) -> tuple[int, Json]:
        method: str = scope["method"]
        parts = [unquote(p) for p in scope["path"].split("/")[2:]]
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        if parts[0] == "budgets" and len(parts) == 1 and method == "GET":
            return 200, await self._budgets(query)
        admin = self._admin
        if admin is None:
            raise NotFound("Access control is off (access.enabled: false): there are no keys, teams or limits")
        actor = _actor(scope)

        async def body() -> Any:
            raw = await read_json_body(scope, receive, _MAX_BODY)
            if not raw:
                return {}
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"The request body is not valid JSON: {exc.args[0]}") from None

        route: tuple[str, str, int] = (method, parts[0], len(parts))
        handler = _ROUTES.get(route)
        if handler is None:
            allow = [m for m, resource, n in _ROUTES if resource == parts[0] and n == len(parts)]
            if allow:
                raise MethodNotAllowed(f"Method {method} is not allowed on {scope['path']}", allow)
            raise NotFound(f"Unknown admin route {method} {scope['path']}")
        return await handler(self, admin, parts, query, body, actor)

    async def _budgets(self, query: dict[str, str]) -> Json:
        data = await budgets(self._admin, self._quota, query.get("scope"), query.get("subject"))
        return {"object": "list", "data": data}


async def budgets(
    admin: AccessOperations | None, quota: Quota, scope: str | None = None, subject: str | None = None
) -> list[dict[str, object]]:
    """Every budget (of keys, teams, users and tags), or those of one ``scope`` and ``subject``:
    cap, spend this period, reservations (``Quota.spend``); ``GET /admin/budgets`` and the dashboard."""
    return await quota.spend(await _scopes(admin, scope, subject))


async def limit_usage(admin: AccessOperations | None, quota: Quota) -> list[dict[str, object]]:
    """Every rate and concurrency limit (of keys, teams, users and tags) against its live use
    (``Quota.usage``); the dashboard's limits page."""
    return await quota.usage(await _scopes(admin, None, None))


async def _scopes(admin: AccessOperations | None, scope: str | None, subject: str | None) -> list[Scope]:
    scopes: list[Scope] = []
    if admin is not None:
        snapshot = await admin.store.snapshot()
        scopes += [Scope("key", k.id, f"key {k.prefix}", k.limits) for k in snapshot.keys if k.revoked_at is None]
        scopes += [Scope("team", t.name, f"team '{t.name}'", t.limits) for t in snapshot.teams]
        scopes += [Scope(e.scope, e.subject, f"{e.scope} '{e.subject}'", e.limits) for e in snapshot.limits]
        if scope == "user" and subject and not any(s.kind == "user" and s.subject == subject for s in scopes):
            # a user under the "*" entry counts separately: show theirs
            for e in snapshot.limits:
                if e.scope == "user" and e.subject == "*":
                    scopes.append(Scope("user", subject, f"user '{subject}'", e.limits))
    return [s for s in scopes if scope in (None, s.kind) and subject in (None, s.subject)]


Body = Callable[[], Awaitable[Any]]
Handler = Callable[[KeysAdminApi, AccessOperations, list[str], dict[str, str], Body, str], Awaitable[tuple[int, Json]]]


def _actor(scope: AsgiScope) -> str:
    named = header(scope, b"x-breakwater-actor")
    who = named.decode("latin-1")[:128] if named else "admin key"
    client = scope.get("client")
    return f"{who} ({client[0]})" if client else who


async def _create_key(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    key, plain = await a.create_key(parse(KeySpec, await body()), actor=actor)
    return 201, {**key.view(h._now()), "key": plain}


async def _list_keys(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    now = h._now()
    keys = [k.view(now) for k in await a.keys() if q.get("user") in (None, k.user) and q.get("team") in (None, k.team)]
    return 200, {"object": "list", "data": keys}


async def _key(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    return 200, (await a.key(p[1])).view(h._now())


async def _patch_key(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    return 200, (await a.update_key(p[1], parse(KeyPatch, await body()), actor=actor)).view(h._now())


async def _key_action(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    key_id, action = p[1], p[2]
    if action in ("disable", "enable"):
        key = await a.set_disabled(key_id, action == "disable", actor=actor)
    elif action == "revoke":
        key = await a.revoke(key_id, actor=actor)
    elif action == "rotate":
        data = await body()
        overlap = data.get("overlap_s", 3600) if isinstance(data, dict) else None
        if not isinstance(overlap, (int, float)) or isinstance(overlap, bool):
            raise InvalidRequest("overlap_s must be a number of seconds", param="overlap_s")
        key, plain = await a.rotate(key_id, overlap_s=float(overlap), actor=actor)
        return 200, {**key.view(h._now()), "key": plain}
    else:
        raise NotFound(f"Unknown key action '{action}': disable, enable, revoke or rotate")
    return 200, key.view(h._now())


async def _create_team(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    team = await a.create_team(parse(TeamSpec, await body()), actor=actor)
    return 201, {"object": "team", **team.public()}


async def _list_teams(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    return 200, {"object": "list", "data": [{"object": "team", **t.public()} for t in await a.teams()]}


async def _team(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    return 200, {"object": "team", **(await a.team(p[1])).public()}


async def _patch_team(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    team = await a.update_team(p[1], parse(TeamPatch, await body()), actor=actor)
    return 200, {"object": "team", **team.public()}


async def _delete_team(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    team = await a.delete_team(p[1], actor=actor)
    return 200, {"object": "team", **team.public(), "deleted": True}


async def _team_action(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    if p[2] not in ("disable", "enable"):
        raise NotFound(f"Unknown team action '{p[2]}': disable or enable")
    team = await a.set_team_disabled(p[1], p[2] == "disable", actor=actor)
    return 200, {"object": "team", **team.public()}


async def _list_limits(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    return 200, {"object": "list", "data": [e.public() for e in await a.subject_limits()]}


async def _put_limits(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    entry = await a.set_limits(p[1], p[2], parse(LimitsSpec, await body()), actor=actor)
    return 200, entry.public()


async def _delete_limits(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    entry = await a.delete_limits(p[1], p[2], actor=actor)
    return 200, {**entry.public(), "deleted": True}


async def _audit(
    h: KeysAdminApi, a: AccessOperations, p: list[str], q: dict[str, str], body: Body, actor: str
) -> tuple[int, Json]:
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise InvalidRequest("Invalid limit: must be between 1 and 1000", param="limit")
    entries = await a.audit(limit=limit, target=q.get("target"))
    return 200, {"object": "list", "data": [e.public() for e in entries]}


_ROUTES: dict[tuple[str, str, int], Handler] = {
    ("POST", "keys", 1): _create_key,
    ("GET", "keys", 1): _list_keys,
    ("GET", "keys", 2): _key,
    ("PATCH", "keys", 2): _patch_key,
    ("POST", "keys", 3): _key_action,
    ("POST", "teams", 1): _create_team,
    ("GET", "teams", 1): _list_teams,
    ("GET", "teams", 2): _team,
    ("PATCH", "teams", 2): _patch_team,
    ("DELETE", "teams", 2): _delete_team,
    ("POST", "teams", 3): _team_action,
    ("GET", "limits", 1): _list_limits,
    ("PUT", "limits", 3): _put_limits,
    ("DELETE", "limits", 3): _delete_limits,
    ("GET", "audit", 1): _audit,
}
