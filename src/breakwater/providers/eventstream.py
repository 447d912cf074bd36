"""AWS event-stream framing (``application/vnd.amazon.eventstream``), both ways.

Bedrock's ConverseStream answers with binary messages, not server-sent events. Each message is
a prelude (total length, headers length: big-endian uint32s) and its CRC32, the headers, the
payload, then a CRC32 of everything before it (AWS's "Event stream encoding" reference).

Decoding is botocore's parser (``botocore.eventstream.EventStreamBuffer``: prelude and message
checksums, length limits), imported when a Bedrock stream is first read. botocore ships no
encoder, so the few lines that write a message (for the mock and the tests) are here; the
checksums are ``zlib.crc32``, the same CRC-32 the parser checks.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: header value type 7: a UTF-8 string with a uint16 length (the only type Bedrock's events use)
_STRING = 7


@dataclass(frozen=True, slots=True)
class EventMessage:
    """One decoded message: its headers (``:message-type``, ``:event-type``...) and payload bytes."""

    headers: Mapping[str, Any]
    payload: bytes


class EventStreamError(ValueError):
    """The bytes are not an event stream: a checksum, a length or a header is wrong."""


def load() -> None:
    """Import botocore's parser now (while a config with Bedrock is built), not at the first stream."""
    import botocore.eventstream  # noqa: F401


class EventStreamDecoder:
    """Feed bytes as they arrive; get whole messages back. A partial message is buffered."""

    __slots__ = ("_buffer", "_errors", "_unread")

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer, ParserError  # lazily: only Bedrock streams need it

        self._buffer = EventStreamBuffer()
        self._errors = ParserError
        self._unread = 0  # bytes fed and not yet part of a whole message

    def feed(self, data: bytes) -> list[EventMessage]:
        self._buffer.add_data(data)
        self._unread += len(data)
        try:
            messages = list(self._buffer)
        except self._errors as exc:
            raise EventStreamError(f"invalid event-stream message: {type(exc).__name__}") from exc
        self._unread -= sum(m.prelude.total_length for m in messages)
        return [EventMessage(m.headers, m.payload) for m in messages]

    def pending(self) -> bool:
        """Whether bytes of an unfinished message are buffered (the stream was cut mid-message)."""
        return self._unread > 0


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers.

    Args:
        headers: header names and string values, e.g. ``{":message-type": "event"}``.
        payload: the message body (a JSON object for Bedrock events).
    """
    parts = []
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        parts.append(struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", _STRING, len(raw_value)))
        parts.append(raw_value)
    encoded_headers = b"".join(parts)
    total = 12 + len(encoded_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded_headers))
    head = prelude + struct.pack("!I", zlib.crc32(prelude))
    body = head + encoded_headers + payload
    return body + struct.pack("!I", zlib.crc32(body))
