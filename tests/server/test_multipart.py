"""``multipart/form-data`` parsing (``server/multipart.py``): what the SDKs send, and what they never
should, each a clear 400 or 415."""

from __future__ import annotations

import httpx2
import pytest

from breakwater.core.errors import InvalidRequest, UnsupportedMediaType
from breakwater.server.multipart import parse_form

CONTENT = b'{"a": 1}\r\n{"b": "\xc3\xbc"}\n--not-a-boundary\n'


def _form(**files: tuple[str, bytes]) -> tuple[bytes, bytes]:
    request = httpx2.Request("POST", "http://x/v1/files", files=files, data={"purpose": "batch"})
    return request.headers["content-type"].encode(), request.read()


def test_fields_and_files_come_back_byte_for_byte() -> None:
    """A file part keeps its exact bytes (CRLFs, non-ASCII, lines like boundaries) and name; a plain field has no file name."""
    content_type, body = _form(file=("ü in.jsonl", CONTENT))
    form = parse_form(content_type, body)
    assert form["file"].content == CONTENT and form["file"].filename == "ü in.jsonl"
    assert form["purpose"].content == b"batch" and form["purpose"].filename is None


def test_a_quoted_boundary_a_preamble_and_a_repeated_name() -> None:
    """A quoted boundary and a preamble are read; of a repeated field, the first counts."""
    body = (
        b'preamble\r\n--b 1\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b'--b 1\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nother\r\n'
        b"--b 1\r\nContent-Disposition: form-data; name*=UTF-8''f%C3%BCle; filename=\"x.jsonl\"\r\n"
        b"Content-Type: application/jsonl\r\n\r\n{}\r\n--b 1--\r\n"
    )
    form = parse_form(b'multipart/form-data; boundary="b 1"', body)
    assert form["purpose"].content == b"batch"
    assert form["füle"].content == b"{}" and form["füle"].filename == "x.jsonl"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        b"application/json",
        b"multipart/form-data",
        b"multipart/mixed; boundary=x",
        b"multipart/form-data; boundary=",
    ],
)
def test_a_body_that_is_not_a_form_is_415(content_type: bytes | None) -> None:
    """No multipart/form-data content type with a boundary: 415."""
    with pytest.raises(UnsupportedMediaType):
        parse_form(content_type, b"--x\r\n\r\n--x--")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no boundary here",
        b"--xyz",  # no close, no part
        b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nunfinished',
        b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n--xyz--',  # no blank line after the headers
        b"--xyzjunk\r\n",
        b"text--xyz\r\n\r\n--xyz--",  # a boundary not at a line start
    ],
)
def test_a_malformed_form_is_400(body: bytes) -> None:
    """A body whose parts do not match its boundary is an InvalidRequest."""
    with pytest.raises(InvalidRequest):
        parse_form(b"multipart/form-data; boundary=xyz", body)


def test_an_empty_form_has_no_fields() -> None:
    """Only the close delimiter: a form without fields (the upload then says what is missing)."""
    assert parse_form(b"multipart/form-data; boundary=xyz", b"--xyz--\r\n") == {}
