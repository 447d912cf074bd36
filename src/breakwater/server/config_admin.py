"""The admin API for stored configuration versions (docs/safe-change.md).

```
GET  /admin/config                          what runs here: version, hash, the newest stored
GET  /admin/config/versions[?limit=50]      the history, newest first (without texts)
GET  /admin/config/versions/{n}             one version, with its text
GET  /admin/config/diff?from=N&to=M         a unified diff (``to`` default: the newest)
POST /admin/config/versions                 {"text", "message", "author"?, "expect"?}: apply
POST /admin/config/rollback                 {"to"?, "message"?, "author"?}: roll back
```

Every route needs the admin key. An apply is checked in this gateway's environment (references
resolve, hosts known) as well as for its text, refused with every problem listed (400), or
refused with 409 when ``expect`` is not the newest version any more. Once stored, this gateway
loads it at once and the others are told (Redis pub/sub) or find it by polling. A gateway
serving from a file has no versions: these routes answer 404 saying how to run from a store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from breakwater.core.config import ConfigError
from breakwater.core.config.versions import ConfigVersion, VersionConflict
from breakwater.core.errors import BreakwaterError, Conflict, InvalidRequest, MethodNotAllowed, NotFound
from breakwater.runtime.process import Process
from breakwater.runtime.stored_config import StoredConfig, announcer, apply, diff, rollback
from breakwater.runtime.swap import Runtimes
from breakwater.server import errors
from breakwater.server.admin import AdminAuth
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, header, read_json_body, send_bytes

Json = dict[str, Any]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
#: a configuration's text may be long, but not unbounded
MAX_BODY = 1024 * 1024


class ConfigAdminApi:
    """Handlers for ``/admin/config``."""

    def __init__(
        self, auth: AdminAuth, stored: StoredConfig | None, runtimes: Callable[[], Runtimes], process: Process
    ) -> None:
        self._auth = auth
        self._stored = stored
        self._runtimes = runtimes
        self._process = process

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/admin/config", self._handler(self._running)),
            ("GET", "/admin/config/versions", self._handler(self._history)),
            ("POST", "/admin/config/versions", self._handler(self._apply)),
            ("GET", "/admin/config/diff", self._handler(self._diff)),
            ("POST", "/admin/config/rollback", self._handler(self._rollback)),
        ]

    def handles(self, path: str) -> bool:
        return path.startswith("/admin/config/versions/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/admin/config/versions/{n}``."""
        await self._handler(self._one)(scope, receive, send)

    def _handler(self, fn: Callable[[Scope, Receive], Awaitable[tuple[int, Json]]]) -> Handler:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            if not await self._auth.check(scope, send):
                return
            try:
                status, body = await fn(scope, receive)
            except BreakwaterError as exc:
                code, headers, payload = errors.openai_error(exc, "admin")
                await send_bytes(send, code, payload, headers)
                return
            except ConfigError as exc:
                refused = InvalidRequest(f"The configuration was refused; nothing was stored. {exc}")
                code, headers, payload = errors.openai_error(refused, "admin")
                data = orjson.loads(payload)
                data["error"]["problems"] = [{"path": p.path, "message": p.message} for p in exc.problems]
                await send_bytes(send, code, orjson.dumps(data), headers)
                return
            await send_bytes(send, status, orjson.dumps(body), JSON_HEADERS)

        return handle

    def _store(self) -> StoredConfig:
        if self._stored is None:
            raise NotFound(
                "This gateway runs from a config file, not from stored versions; start it with "
                "breakwater serve --config-store URL to keep versions (docs/safe-change.md)"
            )
        return self._stored

    async def _running(self, scope: Scope, receive: Receive) -> tuple[int, Json]:
        runtime = self._runtimes().current
        body: Json = {"hash": runtime.config_hash, "version": runtime.version}
        if self._stored is not None:
            body.update(self._stored.readiness(runtime.version))
        return 200, body

    async def _history(self, scope: Scope, receive: Receive) -> tuple[int, Json]:
        limit = _int(_query(scope), "limit", 50)
        if not 1 <= limit <= 1000:
            raise InvalidRequest("Invalid limit: must be between 1 and 1000", param="limit")
        versions = await (await self._store().opened()).config_history(limit)
        return 200, {"object": "list", "data": [v.public() for v in versions]}

    async def _one(self, scope: Scope, receive: Receive) -> tuple[int, Json]:
        if scope["method"] != "GET":
            raise MethodNotAllowed(f"Method {scope['method']} is not allowed on {scope['path']}", ["GET"])
        raw = scope["path"].removeprefix("/admin/config/versions/")
        if not raw.isdigit() or len(raw) > 18:
            raise NotFound(f"No configuration version {raw[:40]!r}: versions are numbered from 1")
        return 200, (await self._get(int(raw))).public(text=True)

    async def _diff(self, scope: Scope, receive: Receive) -> tuple[int, Json]:
        query = _query(scope)
        if "from" not in query:
            raise InvalidRequest("Give the versions to compare: ?from=N[&to=M] (to: the newest)", param="from")
        a = await self._get(_int(query, "from", 0))
        b = await self._get(_int(query, "to", 0) or None)
        return 200, {"from": a.number, "to": b.number, "diff": diff(a, b)}

    async def _apply(self, scope: Scope, receive: Receive) -> tuple[int, Json]:
        stored = self._store()
        body = await _body(scope, receive)
        text, message = body.get("text"), body.get("message", "")
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("'text' must be the configuration's YAML text", param="text")
        if not isinstance(message, str):
            raise InvalidRequest("'message' must be a string", param="message")
        expect = body.get("expect")
        if expect is not None and (not isinstance(expect, int) or isinstance(expect, bool) or expect < 0):
            raise InvalidRequest("'expect' must be the version number the change is based on", param="expect")
        try:
            applied = await apply(
                await stored.opened(),
                text,
                author=_author(scope, body),
                message=message,
                now=self._process.clock.time(),
                environ=self._process.environ,
                expect=expect,
            )
        except VersionConflict as exc:
            raise Conflict(f"{exc}; look at the newest and apply again") from None
        if applied.created:
            await self._announce(stored)
        return (201 if applied.created else 200), {**applied.version.public(), "created": applied.created}

    async def _rollback(self, scope: Scope, receive: Receive) -> tuple[int, Json]:
        stored = self._store()
        body = await _body(scope, receive)
        to, message = body.get("to"), body.get("message", "")
        if to is not None and (not isinstance(to, int) or isinstance(to, bool) or to < 1):
            raise InvalidRequest("'to' must be a version number", param="to")
        if not isinstance(message, str):
            raise InvalidRequest("'message' must be a string", param="message")
        try:
            version = await rollback(
                await stored.opened(),
                to,
                author=_author(scope, body),
                message=message,
                now=self._process.clock.time(),
                environ=self._process.environ,
            )
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        except VersionConflict as exc:
            raise Conflict(f"{exc}; look at the history and roll back again") from None
        await self._announce(stored)
        return 201, version.public()

    async def _get(self, number: int | None) -> ConfigVersion:
        version = await (await self._store().opened()).config_get(number)
        if version is None:
            raise NotFound("No configuration is stored yet" if number is None else f"No configuration version {number}")
        return version

    async def _announce(self, stored: StoredConfig) -> None:
        """This gateway loads the new version now; the others hear it on Redis, or poll."""
        stored.wake()
        config = self._runtimes().current.config
        if config.redis is not None:
            pubsub = announcer(config, self._process.environ)
            try:
                await pubsub.announce()
            finally:
                await pubsub.close()


def _query(scope: Scope) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}


def _int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidRequest(f"Invalid {name}: must be a whole number", param=name)
    return int(raw)


async def _body(scope: Scope, receive: Receive) -> Json:
    raw = await read_json_body(scope, receive, MAX_BODY)
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc.args[0]}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object")
    return body


def _author(scope: Scope, body: Json) -> str:
    """Who applied it: the body's ``author``, else the ``x-breakwater-actor`` header, else "admin-api"."""
    named = body.get("author")
    if isinstance(named, str) and 0 < len(named) <= 200:
        return named
    actor = header(scope, b"x-breakwater-actor")
    if actor:
        return actor.decode("latin-1")[:200]
    return "admin-api"
