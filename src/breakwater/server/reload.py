"""Reloading the configuration: on SIGHUP, and with ``POST /admin/reload`` (admin key).

Both run ``runtime/swap.Runtimes.reload``: the configuration is read again, validated, built
and swapped in while in-flight requests and streams finish on the old one. The endpoint answers
``200`` with the new configuration's hash and what was kept, or ``400`` listing every problem
(the running configuration stays). With ``--workers N``, send SIGHUP to the supervisor: uvicorn
restarts its workers one by one, each reading the configuration again.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from breakwater.core.config import ConfigError
from breakwater.core.errors import InvalidRequest
from breakwater.runtime.runtime import Runtime
from breakwater.runtime.swap import Runtimes
from breakwater.server import errors
from breakwater.server.admin import AdminAuth
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, send_bytes

log = logging.getLogger("breakwater.server")


class ReloadSignal:
    """SIGHUP reloads the configuration (installed at lifespan startup, on the main thread)."""

    def __init__(self, reload: Callable[[], Awaitable[Runtime]]) -> None:
        self._reload = reload
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
            return False
        self._loop = asyncio.get_running_loop()
        self._loop.add_signal_handler(signal.SIGHUP, self._on_signal)
        return True

    def uninstall(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGHUP)
            self._loop = None

    def _on_signal(self) -> None:
        task = asyncio.ensure_future(self._run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        try:
            await self._reload()
        except ConfigError as exc:
            log.error("SIGHUP: the configuration was not reloaded; the running one stays:\n%s", exc)


class ReloadApi:
    """``POST /admin/reload``."""

    def __init__(self, auth: AdminAuth, runtimes: Callable[[], Runtimes]) -> None:
        self._auth = auth
        self._runtimes = runtimes

    async def reload(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._auth.check(scope, send):
            return
        try:
            runtime = await self._runtimes().reload()
        except ConfigError as exc:
            problems = [{"path": p.path, "message": p.message} for p in exc.problems]
            refused = InvalidRequest(f"The configuration was not reloaded; the running one stays. {exc}")
            status, headers, body = errors.openai_error(refused, "admin")
            payload = orjson.loads(body)
            payload["error"]["problems"] = problems
            await send_bytes(send, status, orjson.dumps(payload), headers)
            return
        answer = {"status": "reloaded", "config": {"hash": runtime.config_hash}, "kept": runtime.kept}
        await send_bytes(send, 200, orjson.dumps(answer), JSON_HEADERS)
