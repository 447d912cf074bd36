"""ASGI vocabulary and the small I/O steps every route shares: read a body, send a response.

Breakwater's server is plain ASGI 3 with no framework: the request path is a dict lookup and a
handful of awaits, which is most of why its overhead stays in the sub-millisecond range.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from breakwater.core.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to buffer the stream
]


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` lower-case)."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


async def read_json_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, after the content-type and size checks.

    The size is checked against ``content-length`` before reading and again while reading, so an
    oversize body is refused without being buffered whole.
    """
    content_type = header(scope, b"content-type")
    if content_type is not None:
        media = content_type.split(b";", 1)[0].strip().lower()
        if media != b"application/json" and not media.endswith(b"+json"):
            raise UnsupportedMediaType(
                f"Unsupported content type '{media.decode('latin-1')}'; send 'Content-Type: application/json'"
            )
    return await read_body(scope, receive, limit)


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, whatever its content type, refused past ``limit`` bytes (as declared,
    then as read)."""
    length = header(scope, b"content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise InvalidRequest("Invalid Content-Length header") from None
        if declared > limit:
            raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("The client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
