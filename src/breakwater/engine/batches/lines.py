"""A batch input file's lines: checked line by line when uploaded, read again when run.

Each non-blank line is a JSON object ``{"custom_id", "method": "POST", "url", "body"}``
(OpenAI's batch input format, https://platform.openai.com/docs/api-reference/batch/request-input):
``custom_id`` a non-empty string unique in the file, ``url`` one of ``ENDPOINTS``, ``body`` the
request body of that endpoint (a JSON object with a ``model``). A streamed body is refused: a
batch line's answer is one JSON body. Every problem names its line (from 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest

#: the endpoints a batch line may call
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
#: the longest ``custom_id`` accepted
MAX_CUSTOM_ID = 512


@dataclass(frozen=True, slots=True)
class Line:
    """One request of a batch."""

    #: position among the file's lines (from 0; blank lines are not counted)
    index: int
    custom_id: str
    url: str
    body: dict[str, Any]


def read_lines(content: bytes, max_lines: int) -> list[Line]:
    """The file's requests, each checked.

    Raises:
        InvalidRequest: a line that is not a valid request (the first one found, by line number),
            a repeated ``custom_id``, no request at all, or more than ``max_lines``.
    """
    lines: list[Line] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        if len(lines) >= max_lines:
            raise InvalidRequest(f"The file holds more than {max_lines} requests, the most a batch may have")
        line = _line(raw, number, len(lines))
        if line.custom_id in seen:
            raise InvalidRequest(f"Line {number}: custom_id '{line.custom_id}' is used by an earlier line")
        seen.add(line.custom_id)
        lines.append(line)
    if not lines:
        raise InvalidRequest("The file holds no requests: one JSON object per line is expected")
    return lines


def _line(raw: bytes, number: int, index: int) -> Line:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"Line {number} is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"Line {number} must be a JSON object")
    unknown = sorted(set(value) - {"custom_id", "method", "url", "body"})
    if unknown:
        raise InvalidRequest(f"Line {number}: unknown field '{unknown[0]}'")
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID:
        raise InvalidRequest(
            f"Line {number}: custom_id must be a non-empty string of at most {MAX_CUSTOM_ID} characters"
        )
    if value.get("method") != "POST":
        raise InvalidRequest(f"Line {number}: method must be 'POST'")
    url = value.get("url")
    if url not in ENDPOINTS:
        raise InvalidRequest(f"Line {number}: url must be one of {', '.join(ENDPOINTS)}")
    body = value.get("body")
    if not isinstance(body, dict):
        raise InvalidRequest(f"Line {number}: body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest(f"Line {number}: body.model must be a non-empty string")
    if body.get("stream") is True:
        raise InvalidRequest(f"Line {number}: body.stream is not supported in a batch (each answer is one JSON body)")
    return Line(index, custom_id, url, body)
