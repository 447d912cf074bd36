"""Cancel a request's work the moment its client disconnects.

An ASGI server does not stop a handler whose client went away: uvicorn silently drops the
handler's sends and lets it run to the end, so a long generation keeps running (and costing)
for nobody. ``CancelOnDisconnect`` wraps one POST route. Once the handler has read the whole
body and is still running ``watch_after_s`` later (0.1 s), one small task watches ``receive()``
for ``http.disconnect``; a disconnect before the response is complete cancels the handler's
task, and the cancellation unwinds the engine's ``async with`` blocks and stream generators,
which tear the upstream request down at once. When the handler finishes first, the watcher (or
the timer that would start it) is cancelled with it.

Why the delay: a task per request, started and cancelled, cost 7% of the gateway's throughput
in the benchmark's profile, and a request that ends within 100 ms has nothing worth cancelling;
a timer handle costs a tenth of that. A client that leaves in the first 100 ms is noticed when
the watcher starts, at most 100 ms late.

The wrapper also keeps cancellation quiet, which an ASGI server would otherwise report as
"Exception in ASGI application" with a traceback (and a 500 when nothing was sent yet):

- a client that left is one info line, ``client disconnected``, with the request id;
- a request the server cancels while it stops (uvicorn's graceful-shutdown deadline) gets a 503
  ``ShuttingDown`` in the route's error format if it has not answered yet; a stream is ended
  with an error event by the chat endpoint. One warning line names the request.
"""

from __future__ import annotations

import asyncio
import logging

from breakwater.core.errors import ShuttingDown
from breakwater.server.asgi import ASGIApp, Message, Receive, Scope, Send, send_bytes
from breakwater.server.endpoints import ErrorMapper, RequestIds

__all__ = ["CancelOnDisconnect"]

log = logging.getLogger("breakwater.server")


class CancelOnDisconnect:
    """One route whose work is cancelled when its client disconnects after sending the body.

    Args:
        app: the route's handler.
        ids: the handler's request ids, so the log line names the id the handler uses.
        error: maps an error to the route's status, headers and body (OpenAI or Anthropic format).
    """

    __slots__ = ("_app", "_error", "_ids", "watch_after_s")

    def __init__(self, app: ASGIApp, ids: RequestIds, error: ErrorMapper, watch_after_s: float = 0.1) -> None:
        self._app = app
        self._ids = ids
        self._error = error
        self.watch_after_s = watch_after_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = _request_id(scope, self._ids)
        task = asyncio.current_task()
        assert task is not None  # an ASGI app always runs in a task
        call = _Call(task, receive, send, self.watch_after_s)
        try:
            await self._app(scope, call.receive, call.send)
        except asyncio.CancelledError:
            if call.disconnected:
                task.uncancel()
                log.info("client disconnected", extra={"request_id": rid})
                return
            # not ours: the server is stopping and cut the request (its graceful-shutdown deadline)
            log.warning("request cut short: the gateway is shutting down", extra={"request_id": rid})
            if not call.started:
                exc = ShuttingDown("The gateway is shutting down and could not finish this request; retry it")
                status, headers, body = self._error(exc, rid)
                await send_bytes(call.send, status, body, headers)
            if not call.complete:
                raise
            task.uncancel()
        finally:
            call.stop()


class _Call:
    """One request's ``receive`` and ``send``, watching for a disconnect once the body is read."""

    __slots__ = ("_after", "_receive", "_send", "_task", "_timer", "_watcher", "complete", "disconnected", "started")

    def __init__(self, task: asyncio.Task[object], receive: Receive, send: Send, after: float) -> None:
        self._task = task
        self._receive = receive
        self._send = send
        self._after = after
        self._timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.started = False
        self.complete = False
        self.disconnected = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False) and self._timer is None:
            # the body is read: from here on the only message the server can send is a disconnect
            self._timer = asyncio.get_running_loop().call_later(self._after, self._start_watching)
        return message

    def _start_watching(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch())

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        if not self.disconnected:  # uvicorn drops sends to a closed connection; other servers raise
            await self._send(message)

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        # after a complete response the server reports "disconnect" too: that is no reason to cancel
        if not self.complete:
            self.disconnected = True
            self._task.cancel()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None


def _request_id(scope: Scope, ids: RequestIds) -> str:
    """The id the handler will use: the client's ``x-request-id`` if sane, else a new one.

    A new id is added to the scope's headers, so the handler (``RequestIds.context``, the same
    rule: the last sane header wins) reports the id this wrapper logs.
    """
    rid: str | None = None
    for key, value in scope["headers"]:
        if key == b"x-request-id" and 0 < len(value) <= 128:
            rid = value.decode("latin-1")
    if rid is None:
        rid = ids.new()
        scope["headers"] = [*scope["headers"], (b"x-request-id", rid.encode())]
    return rid
