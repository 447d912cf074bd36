"""``multipart/form-data`` bodies (RFC 7578): the one upload the gateway takes, ``POST /v1/files``.

The body (already read and size-capped by the caller) is split at its boundary with ``bytes.find``,
so a 64 MB upload costs a few copies, not a MIME parser's pass over every line; each part's small
header block goes to the standard library's header parser for its ``Content-Disposition``
parameters (``name``, ``filename``, RFC 2231 encodings included). A part's content is taken as
sent (RFC 7578 deprecates ``Content-Transfer-Encoding``). Anything unreadable is an
``InvalidRequest`` (400), never an exception of the parser's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

from breakwater.core.errors import InvalidRequest, UnsupportedMediaType

_HEADERS = BytesHeaderParser(policy=policy.HTTP)


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
    boundary = _boundary(content_type)
    delimiter = b"--" + boundary
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2 : start] != b"\r\n"):
        raise InvalidRequest("The multipart body could not be read: its boundary was not found")
    parts: dict[str, Part] = {}
    position = start + len(delimiter)
    while True:
        if body.startswith(b"--", position):  # the close delimiter
            return parts
        if not body.startswith(b"\r\n", position):
            raise InvalidRequest("The multipart body could not be read: a boundary line is malformed")
        head_end = body.find(b"\r\n\r\n", position + 2)
        next_at = body.find(b"\r\n" + delimiter, position + 2)
        if next_at < 0 or head_end < 0 or head_end > next_at:
            raise InvalidRequest("The multipart body could not be read: it ends inside a part")
        headers = _HEADERS.parsebytes(body[position + 2 : head_end + 2])
        name = _param(headers, "name")
        if name is not None and name not in parts:
            parts[name] = Part(name, _param(headers, "filename"), body[head_end + 4 : next_at])
        position = next_at + 2 + len(delimiter)


def _boundary(content_type: bytes | None) -> bytes:
    if content_type is not None:
        headers = _HEADERS.parsebytes(b"Content-Type: " + content_type + b"\r\n\r\n")
        boundary = headers.get_param("boundary") if headers.get_content_type() == "multipart/form-data" else None
        if isinstance(boundary, str) and 0 < len(boundary) <= 70:  # RFC 2046's limit
            try:
                return boundary.encode("ascii")
            except UnicodeEncodeError:
                pass
    raise UnsupportedMediaType("Send the file as 'Content-Type: multipart/form-data' with a boundary")


def _param(headers: Message, name: str) -> str | None:
    value = headers.get_param(name, header="content-disposition")
    if isinstance(value, tuple):  # RFC 2231 encoded: (charset, language, text)
        return str(value[2])
    return None if value is None else str(value)
