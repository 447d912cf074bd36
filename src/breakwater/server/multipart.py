"""``multipart/form-data`` bodies (RFC 7578): the one upload the gateway takes, ``POST /v1/files``.

Parsed by the standard library's MIME parser over the whole body (already read and size-capped
by the caller), so no form library is needed: a field is a part with a ``Content-Disposition:
form-data; name=...`` header; a file part has a ``filename`` too. Anything unreadable is an
``InvalidRequest`` (400), never an exception of the parser's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser

from breakwater.core.errors import InvalidRequest, UnsupportedMediaType


@dataclass(frozen=True, slots=True)
class Part:
    """One form field: its name, its file name (file parts only) and its bytes."""

    name: str
    filename: str | None
    content: bytes


def parse_form(content_type: bytes | None, body: bytes) -> dict[str, Part]:
    """The fields of a ``multipart/form-data`` body by name (the first of a repeated name).

    Raises:
        UnsupportedMediaType: the body is not ``multipart/form-data`` with a boundary.
        InvalidRequest: the body does not hold the parts its boundary says.
    """
    media = (content_type or b"").split(b";", 1)[0].strip().lower()
    if media != b"multipart/form-data" or b"boundary=" not in (content_type or b"").lower():
        raise UnsupportedMediaType("Send the file as 'Content-Type: multipart/form-data' with a boundary")
    head = b"Content-Type: " + (content_type or b"") + b"\r\nMIME-Version: 1.0\r\n\r\n"
    try:
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    except Exception as exc:  # noqa: BLE001 - the parser's own errors become a 400
        raise InvalidRequest(f"The multipart body could not be read ({type(exc).__name__})") from None
    if not message.is_multipart() or message.defects:
        raise InvalidRequest("The multipart body could not be read: its parts do not match its boundary")
    parts: dict[str, Part] = {}
    for part in message.iter_parts():
        name = _param(part, "name")
        if name is None or name in parts:
            continue
        payload = part.get_payload(decode=True)
        parts[name] = Part(name, _param(part, "filename"), payload if isinstance(payload, bytes) else b"")
    return parts


def _param(part: Message, name: str) -> str | None:
    value = part.get_param(name, header="content-disposition")
    if isinstance(value, tuple):  # RFC 2231 encoded: (charset, language, text)
        return str(value[2])
    return None if value is None else str(value)
