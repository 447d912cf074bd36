"""OpenAI's Files and Batch APIs: ``/v1/files`` and ``/v1/batches`` (docs/batch.md).

Every call is authenticated by the pipeline's ``begin`` (not a pipeline call itself: no ledger
row; each batch line gets its own when it runs). Files and batches belong to the key that made
them (their owner): another key's are a 404, as if they did not exist. An upload is read whole
up to ``batches.max_file_bytes`` and checked line by line (``engine/batches/lines.py``, in a
worker thread: tens of megabytes of JSON must not stall the event loop) before it is kept; a
batch is created ``validating`` and run by the process's ``BatchRunner``
(``engine/batches/runner.py``), which is woken at once. The store's failures are a 503.

Files expire as OpenAI's do: an upload's ``expires_after[anchor]`` / ``expires_after[seconds]``
form fields (``FileExpirationAfter``), else 30 days; a batch's output and error files after its
``output_expires_after`` (``BatchFileExpirationAfter``), else 30 days. Every call passes the
clock's ``now`` to the store, so an expired file is a 404 (a 400 as a batch's input) at once.

Paths: ``POST/GET /v1/files``, ``GET/DELETE /v1/files/{id}``, ``GET /v1/files/{id}/content``,
``POST/GET /v1/batches``, ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

import orjson

from breakwater.core.config.batches import BatchSettings
from breakwater.core.errors import Conflict, InvalidRequest, MethodNotAllowed, NotFound
from breakwater.core.ids import IdGenerator
from breakwater.engine.batches.lines import ENDPOINTS, read_lines
from breakwater.engine.batches.store import BATCH_FILE_TTL_S, EXPIRY_BOUNDS_S, BatchRecord, BatchStore, FileInfo
from breakwater.engine.context import RequestContext
from breakwater.server import errors
from breakwater.server.asgi import Headers, Receive, Scope, Send, header, read_body, read_json_body, send_bytes
from breakwater.server.endpoints import Endpoints, fail_with, parse_json
from breakwater.server.multipart import Part, parse_form

log = logging.getLogger("breakwater.server")

T = TypeVar("T")

FILES, BATCHES = "/files", "/batches"
#: the collection paths, with and without ``/v1`` (clients configured either way, like the other routes)
PATHS = tuple(f"{prefix}{path}" for prefix in ("/v1", "") for path in (FILES, BATCHES))
_ITEMS = tuple(f"{collection}/" for collection in PATHS)
#: OpenAI's metadata bounds: 16 pairs, keys up to 64 characters, values up to 512
_MAX_METADATA, _MAX_KEY, _MAX_VALUE = 16, 64, 512
#: room for the multipart framing around a file of the largest size
_FORM_OVERHEAD = 64 * 1024
_WINDOW_S = {"24h": 86_400.0}
_CREATE_FIELDS = {"input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"}
_DIGITS = re.compile(rb"[0-9]{1,12}")

Result = tuple[int, bytes, Headers]


class BatchApi:
    """The Files and Batch API handlers of one running configuration.

    Args:
        endpoints: authentication, request ids and the clock.
        store: where files and batches are kept.
        settings: the ``batches`` section.
        wake: tells the batch runner there is work (a batch created or cancelled).
    """

    def __init__(
        self, endpoints: Endpoints, store: BatchStore, settings: BatchSettings, wake: Callable[[], None]
    ) -> None:
        self._ep = endpoints
        self._store = store
        self._settings = settings
        self._wake = wake
        self._ids = IdGenerator(12)

    def handles(self, path: str) -> bool:
        return path.startswith(_ITEMS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any of the paths: authenticated, dispatched, every failure in OpenAI's error format."""
        ep = self._ep
        ctx = RequestContext(ep.ids.of(scope))
        try:
            ctx = ep.caller_of(scope)
            owner = ctx.caller.key_id or ""
            status, body, headers = await self._dispatch(scope, receive, owner)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI error body
            await fail_with(send, errors.openai_error, exc, ctx)
            return
        await send_bytes(send, status, body, [*headers, (b"x-request-id", ctx.request_id.encode())])

    async def _dispatch(self, scope: Scope, receive: Receive, owner: str) -> Result:
        method, full = scope["method"], scope["path"]
        path = full.removeprefix("/v1")
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        if path in (FILES, BATCHES):
            allow = ["GET", "POST"]
            if method == "POST":
                if path == FILES:
                    return await self._upload(scope, receive, owner)
                return await self._create(scope, receive, owner)
            if method == "GET":
                return await (self._files(owner, query) if path == FILES else self._batches(owner, query))
        else:
            kind, _, rest = path.removeprefix("/").partition("/")
            item, _, action = rest.partition("/")
            if not item or "/" in action:
                raise NotFound(f"Unknown path {full}")
            if kind == "files":
                if action == "content":
                    allow = ["GET"]
                    if method == "GET":
                        return await self._content(item, owner)
                elif action:
                    raise NotFound(f"Unknown path {full}")
                else:
                    allow = ["DELETE", "GET"]
                    if method == "GET":
                        return _json(await self._file(item, owner))
                    if method == "DELETE":
                        return await self._delete(item, owner)
            elif action == "cancel":
                allow = ["POST"]
                if method == "POST":
                    return await self._cancel(item, owner)
            elif action:
                raise NotFound(f"Unknown path {full}")
            else:
                allow = ["GET"]
                if method == "GET":
                    return _json((await self._batch(item, owner)).public())
        raise MethodNotAllowed(f"Method {method} is not allowed on {full}; use {' or '.join(allow)}", allow)

    # --- files ----------------------------------------------------------------------------------

    async def _upload(self, scope: Scope, receive: Receive, owner: str) -> Result:
        settings = self._settings
        form = parse_form(
            header(scope, b"content-type"), await read_body(scope, receive, settings.max_file_bytes + _FORM_OVERHEAD)
        )
        purpose = form.get("purpose")
        if purpose is None:
            raise InvalidRequest("Missing required field 'purpose'", param="purpose")
        if purpose.content != b"batch":
            raise InvalidRequest("The gateway keeps files for batches only: 'purpose' must be 'batch'", param="purpose")
        upload = form.get("file")
        if upload is None or upload.filename is None:
            raise InvalidRequest("Missing required file field 'file'", param="file")
        content = upload.content
        if len(content) > settings.max_file_bytes:
            raise InvalidRequest(
                f"The file is {len(content)} bytes; the limit is {settings.max_file_bytes}", param="file"
            )
        # tens of megabytes of JSON: checked in a worker thread, not on the event loop serving requests
        lives = _upload_lives(form)
        await asyncio.to_thread(read_lines, content, settings.max_lines)
        name = upload.filename[:255] or "upload.jsonl"
        now = self._ep.clock.time()
        info = FileInfo(f"file-{self._ids.new()}", owner, "batch", name, len(content), now, now + lives)
        await self._call(self._store.file_put(info, content))
        return _json(info.public())

    async def _files(self, owner: str, query: dict[str, str]) -> Result:
        limit = _limit(query, 10_000, 10_000)
        purpose = query.get("purpose") or None
        files = await self._call(
            self._store.file_list(owner, purpose, query.get("after") or None, limit + 1, self._now())
        )
        return _json(_page([f.public() for f in files], limit))

    async def _file(self, file_id: str, owner: str) -> dict[str, Any]:
        info = await self._call(self._store.file_get(file_id, owner, self._now()))
        if info is None:
            raise NotFound(f"No such File object: {file_id}", param="id")
        return info.public()

    async def _content(self, file_id: str, owner: str) -> Result:
        content = await self._call(self._store.file_content(file_id, owner, self._now()))
        if content is None:
            raise NotFound(f"No such File object: {file_id}", param="id")
        return 200, content, [(b"content-type", b"application/octet-stream")]

    async def _delete(self, file_id: str, owner: str) -> Result:
        if not await self._call(self._store.file_delete(file_id, owner, self._now())):
            raise NotFound(f"No such File object: {file_id}", param="id")
        return _json({"id": file_id, "object": "file", "deleted": True})

    # --- batches --------------------------------------------------------------------------------

    async def _create(self, scope: Scope, receive: Receive, owner: str) -> Result:
        body = parse_json(await read_json_body(scope, receive, self._ep.max_body_bytes))
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object")
        input_file_id, endpoint, window = body.get("input_file_id"), body.get("endpoint"), body.get("completion_window")
        if not isinstance(input_file_id, str) or not input_file_id:
            raise InvalidRequest("'input_file_id' must be a file id", param="input_file_id")
        if not isinstance(endpoint, str) or endpoint not in ENDPOINTS:
            raise InvalidRequest(f"'endpoint' must be one of {', '.join(ENDPOINTS)}", param="endpoint")
        if not isinstance(window, str) or window not in _WINDOW_S:
            raise InvalidRequest("'completion_window' must be '24h'", param="completion_window")
        metadata = _metadata(body.get("metadata"))
        output_lives = _output_lives(body.get("output_expires_after"))
        unknown = sorted(set(body) - _CREATE_FIELDS)
        if unknown:
            raise InvalidRequest(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
        now = self._now()
        info = await self._call(self._store.file_get(input_file_id, owner, now))
        if info is None or info.purpose != "batch":
            raise InvalidRequest(f"No batch input file with id '{input_file_id}'", param="input_file_id")
        record = BatchRecord(
            f"batch_{self._ids.new()}",
            owner,
            endpoint,
            input_file_id,
            window,
            "validating",
            now,
            now + _WINDOW_S[window],
            metadata,
            output_expires_s=output_lives,
        )
        await self._call(self._store.batch_save(record, None))
        self._wake()
        return _json(record.public())

    async def _batches(self, owner: str, query: dict[str, str]) -> Result:
        limit = _limit(query, 20, 100)
        batches = await self._call(self._store.batch_list(owner, query.get("after") or None, limit + 1))
        return _json(_page([b.public() for b in batches], limit))

    async def _batch(self, batch_id: str, owner: str) -> BatchRecord:
        record = await self._call(self._store.batch_get(batch_id, owner))
        if record is None:
            raise NotFound(f"No batch found with id '{batch_id}'", param="batch_id")
        return record

    async def _cancel(self, batch_id: str, owner: str) -> Result:
        for _ in range(5):  # the runner may move the batch meanwhile: try again on what it became
            record = await self._batch(batch_id, owner)
            if record.status in ("cancelling", "cancelled"):
                return _json(record.public())
            if record.status not in ("validating", "in_progress"):
                raise Conflict(f"Cannot cancel a batch with status '{record.status}'")
            moved = record.moved("cancelling", self._ep.clock.time())
            if await self._call(self._store.batch_save(moved, record.status)):
                self._wake()
                return _json(moved.public())
        raise Conflict("The batch kept changing while it was being cancelled; retry")

    def _now(self) -> float:
        return self._ep.clock.time()

    async def _call(self, work: Awaitable[T]) -> T:
        return await errors.store_call(
            work, "batch", "The gateway's batch store is unavailable; retry shortly", "batch_store_unavailable"
        )


def _lifetime(anchor: Any, seconds: Any, field: str, sub: str) -> float:
    """Seconds a file lives from OpenAI's ``{anchor: "created_at", seconds}``; a 400 naming the
    field (``field`` + ``sub`` % part: ``expires_after[seconds]``, ``output_expires_after.seconds``)."""
    if anchor != "created_at":
        param = field + sub % "anchor"
        raise InvalidRequest(f"'{param}' must be 'created_at'", param=param)
    low, high = EXPIRY_BOUNDS_S
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
        param = field + sub % "seconds"
        raise InvalidRequest(f"'{param}' must be an integer from {low} to {high}", param=param)
    return float(seconds)


def _upload_lives(form: dict[str, Part]) -> float:
    """An upload's lifetime: its ``expires_after[anchor]`` and ``expires_after[seconds]`` form
    fields, as the SDKs send ``expires_after``, else 30 days (OpenAI's default for ``batch`` files)."""
    if "expires_after" in form:
        raise InvalidRequest(
            "Send 'expires_after' as the fields 'expires_after[anchor]' and 'expires_after[seconds]'",
            param="expires_after",
        )
    anchor, seconds = form.get("expires_after[anchor]"), form.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return BATCH_FILE_TTL_S
    text = None if anchor is None else anchor.content.decode("utf-8", "replace")
    number = int(seconds.content) if seconds is not None and _DIGITS.fullmatch(seconds.content) else None
    return _lifetime(text, number, "expires_after", "[%s]")


def _output_lives(value: Any) -> float | None:
    """A batch's ``output_expires_after`` in seconds (``None``: unset, 30 days)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("'output_expires_after' must be an object", param="output_expires_after")
    unknown = sorted(set(value) - {"anchor", "seconds"})
    if unknown:
        param = f"output_expires_after.{unknown[0]}"
        raise InvalidRequest(f"Unrecognized request argument supplied: {param}", param=param)
    return _lifetime(value.get("anchor"), value.get("seconds"), "output_expires_after", ".%s")


def _json(body: dict[str, Any]) -> Result:
    return 200, orjson.dumps(body), [(b"content-type", b"application/json")]


def _page(data: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """OpenAI's list object; ``data`` holds one item past the page when there are more."""
    page = data[:limit]
    listed: dict[str, Any] = {"object": "list", "data": page, "has_more": len(data) > limit}
    if page:  # strings in OpenAI's schema, so left out of an empty page
        listed.update(first_id=page[0]["id"], last_id=page[-1]["id"])
    return listed


def _limit(query: dict[str, str], default: int, most: int) -> int:
    raw = query.get("limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidRequest("'limit' must be an integer", param="limit") from None
    if not 1 <= limit <= most:
        raise InvalidRequest(f"'limit' must be between 1 and {most}", param="limit")
    return limit


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > _MAX_METADATA:
        raise InvalidRequest(f"'metadata' must be an object of at most {_MAX_METADATA} pairs", param="metadata")
    for key, item in value.items():
        if len(key) > _MAX_KEY or not isinstance(item, str) or len(item) > _MAX_VALUE:
            raise InvalidRequest(
                f"'metadata' keys are strings of at most {_MAX_KEY} characters, values of at most {_MAX_VALUE}",
                param="metadata",
            )
    return dict(value)
