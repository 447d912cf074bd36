"""The mock provider as a raw ASGI 3 application (``breakwater mock`` serves it with uvicorn).

No framework: the mock is used for load tests, so its own overhead must stay far below the
gateway's. Per request it reads the body, calls ``MockService.handle`` and sends the reply;
streams go out chunk by chunk. A ``ConnectionReset`` fault makes the server drop the socket:
before the response head, a head is sent first so the server does not substitute a 500 of its
own; then the exception propagates and the server closes the connection mid-response.

When faults may apply (a schedule, or an ``x-mock-fault`` header), the request runs alongside a
watch for the client's disconnect, so a ``timeout`` or ``stall_after`` whose client gave up is
cancelled instead of sleeping on; plain requests skip the watch, which would cost throughput.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from breakwater.engine.ports import Clock, RandomSource
from breakwater.infra.clock import SystemClock, SystemRandom
from breakwater.infra.mock.faults import ConnectionReset
from breakwater.infra.mock.model import MockModel, ScriptedAnswer
from breakwater.infra.mock.service import MockReply, MockService

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def create_mock_app(
    rules: list[dict[str, Any]] | None = None,
    *,
    clock: Clock | None = None,
    rng: RandomSource | None = None,
    answers: tuple[ScriptedAnswer, ...] = (),
) -> ASGIApp:
    """An ASGI app serving the mock; ``rules`` is the fault schedule (validated here), ``answers``
    the scripted answers.

    Raises:
        ValueError: the schedule is invalid, with every problem listed.
    """
    service = MockService(clock or SystemClock(), rng or SystemRandom(), rules, model=MockModel(answers=answers))
    handle = service.handle
    scheduled = service.scheduled

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return  # websockets: not a vendor API, nothing to answer
        message = await receive()
        body: bytes = message.get("body", b"")
        if message.get("more_body"):
            parts = [body]
            while message.get("more_body"):
                message = await receive()
                parts.append(message.get("body", b""))
            body = b"".join(parts)
        query: bytes = scope.get("query_string", b"")
        headers = _Headers(scope["headers"])
        reply = handle(scope["method"], scope["path"], query.decode("latin-1"), headers, body)
        if scheduled or "x-mock-fault" in headers:
            # a fault may sleep for minutes (timeout, stall_after): stop when the client leaves
            # rather than keep a task per abandoned request alive that long. Without faults the
            # service never waits, so the plain path skips this watcher's cost.
            await _until_disconnect(_respond(reply, send), receive)
        else:
            await _respond(reply, send)

    return app


async def _respond(pending: Awaitable[MockReply], send: Send) -> None:
    try:
        reply = await pending
    except ConnectionReset:
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEAD})
        raise
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    if reply.chunks is None:
        # a content-length spares the server chunked framing of a body it already has whole
        raw_headers.append((b"content-length", b"%d" % len(reply.body)))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body})
        return
    await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
    async for chunk in reply.chunks:  # a ConnectionReset here propagates: the server drops the socket
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _until_disconnect(work: Coroutine[Any, Any, None], receive: Receive) -> None:
    """Run ``work`` until it ends or the client disconnects, whichever comes first."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()  # the client left, or this request is itself being cancelled
    if not task.done():
        await asyncio.wait((task,))  # let the cancellation unwind before returning
    if not task.cancelled():
        task.result()  # re-raises a ConnectionReset, so the server drops the socket


async def _disconnected(receive: Receive) -> None:
    # the body was read already, so by the ASGI spec the next message can only be
    # http.disconnect (uvicorn also sends one once the response is complete; by then the work
    # is done and this result is ignored)
    await receive()


# no content-length: the client expects a chunked body that never completes
_STREAM_HEAD = ((b"content-type", b"application/json"),)


class _Headers(Mapping[str, str]):
    """The request's raw ASGI header list as a read-only mapping, decoded only on lookup.

    The service reads one or two headers per request; decoding all of them into a dict first
    was a measurable share of the per-request cost. Names are lower case per the ASGI spec.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, key: str) -> str:
        name = key.encode("latin-1")
        for k, v in self._raw:
            if k == name:
                return v.decode("latin-1")
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k.decode("latin-1") for k, _ in self._raw)

    def __len__(self) -> int:
        return sum(1 for _ in self._raw)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
