"""Files that expire, through the official ``openai`` SDK against a running gateway whose clock
the tests move: an upload's ``expires_after``, the 30-day default, a batch's
``output_expires_after``, bad values refused with a 400 naming the field, and an expired file gone
for every call at once, then swept (``breakwater_batch_files_expired_total``).

The gateway runs without access control on the in-process mock, its batches in memory and, in a
second round, in a SQLite batch store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.infra.clock import ManualClock
from breakwater.server.app import create_app
from tests.polling import until
from tests.server.running import openai_sdk, serve
from tests.server.test_batches_sdk import _chat, _config, _done, _jsonl

DAY = 86_400


class Gateway:
    def __init__(self, url: str, clock: ManualClock) -> None:
        self.url, self.clock = url, clock
        self.client = openai_sdk(url)

    def swept(self) -> float:
        text = httpx2.get(f"{self.url}/metrics", timeout=10).text
        found = re.search(r"^breakwater_batch_files_expired_total (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("expiry")
    store = "memory" if request.param == "memory" else f"sqlite:///{tmp}/batches.db"
    clock = ManualClock(wall=1_795_867_200.0)
    with serve(create_app(build_config(_config(tmp, store=store)), environ={}, clock=clock)) as url:
        yield Gateway(url, clock)


def _upload(gateway: Gateway, **options: Any) -> Any:
    return gateway.client.files.create(file=("in.jsonl", _jsonl([_chat("a")])), purpose="batch", **options)


def test_an_upload_is_gone_once_its_expires_after_has_passed(gateway: Gateway) -> None:
    """``expires_after`` sets ``expires_at``; up to it the file is there, from it on every call
    finds nothing: retrieving, its content, deleting (404s), the listing, and a batch on it (400);
    the runner's sweep then deletes it."""
    client = gateway.client
    uploaded = _upload(gateway, expires_after={"anchor": "created_at", "seconds": 3600})
    assert uploaded.expires_at == uploaded.created_at + 3600
    gateway.clock.advance(3599)
    assert client.files.retrieve(uploaded.id).expires_at == uploaded.expires_at
    assert uploaded.id in [f.id for f in client.files.list()]
    swept = gateway.swept()
    gateway.clock.advance(1)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)
    assert uploaded.id not in [f.id for f in client.files.list()]
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert refused.value.param == "input_file_id"
    with pytest.raises(openai.NotFoundError):
        client.files.delete(uploaded.id)
    until(lambda: gateway.swept() > swept, 10, "the expired file is swept")


def test_an_upload_without_expires_after_lives_30_days(gateway: Gateway) -> None:
    """A ``batch`` file named no expiry expires 30 days after it was made, as OpenAI's do."""
    uploaded = _upload(gateway)
    assert uploaded.expires_at == uploaded.created_at + 30 * DAY
    assert gateway.client.files.retrieve(uploaded.id).expires_at == uploaded.expires_at


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "3599"}, "expires_after[seconds]"),
        ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "2592001"}, "expires_after[seconds]"),
        ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "1e4"}, "expires_after[seconds]"),
        ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "-3600"}, "expires_after[seconds]"),
        ({"expires_after[anchor]": "created_at"}, "expires_after[seconds]"),
        ({"expires_after[anchor]": "last_active_at", "expires_after[seconds]": "3600"}, "expires_after[anchor]"),
        ({"expires_after[seconds]": "3600"}, "expires_after[anchor]"),
        ({"expires_after": '{"anchor": "created_at", "seconds": 3600}'}, "expires_after"),
    ],
)
def test_a_bad_expires_after_is_a_400_naming_the_field(gateway: Gateway, fields: dict[str, str], param: str) -> None:
    """An anchor other than ``created_at``, or seconds not an integer from 3600 to 2592000, is a 400
    in OpenAI's format naming the form field; nothing is kept."""
    before = [f.id for f in gateway.client.files.list()]
    response = httpx2.post(
        f"{gateway.url}/v1/files",
        files={"file": ("in.jsonl", _jsonl([_chat("a")]))},
        data={"purpose": "batch", **fields},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert [f.id for f in gateway.client.files.list()] == before


def test_a_batchs_output_file_expires_after_its_output_expires_after(gateway: Gateway) -> None:
    """``output_expires_after`` sets the output file's ``expires_at`` from when it was made; past it,
    the file is a 404."""
    client = gateway.client
    uploaded = _upload(gateway)
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        output_expires_after={"anchor": "created_at", "seconds": 7200},
    )
    done = _done(client, batch.id)
    assert done.status == "completed" and done.output_file_id is not None
    output = client.files.retrieve(done.output_file_id)
    assert output.purpose == "batch_output" and output.expires_at == output.created_at + 7200
    gateway.clock.advance(7200)
    with pytest.raises(openai.NotFoundError):
        client.files.content(done.output_file_id)


def test_a_batch_without_output_expires_after_keeps_its_output_30_days(gateway: Gateway) -> None:
    """A batch that names no ``output_expires_after`` gets output files that live 30 days."""
    client = gateway.client
    uploaded = _upload(gateway)
    done = _done(
        client,
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h").id,
    )
    assert done.output_file_id is not None
    output = client.files.retrieve(done.output_file_id)
    assert output.expires_at == output.created_at + 30 * DAY


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ({"anchor": "created_at", "seconds": 60}, "output_expires_after.seconds"),
        ({"anchor": "created_at", "seconds": 3600.5}, "output_expires_after.seconds"),
        ({"anchor": "created_at", "seconds": True}, "output_expires_after.seconds"),
        ({"anchor": "created_at"}, "output_expires_after.seconds"),
        ({"anchor": "completed_at", "seconds": 3600}, "output_expires_after.anchor"),
        ({"anchor": "created_at", "seconds": 3600, "days": 1}, "output_expires_after.days"),
        ("30d", "output_expires_after"),
    ],
)
def test_a_bad_output_expires_after_is_a_400_naming_the_field(gateway: Gateway, value: Any, param: str) -> None:
    """A batch's ``output_expires_after`` has the bounds of a file's ``expires_after``: else a 400
    naming the field, and no batch."""
    client = gateway.client
    uploaded = _upload(gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            output_expires_after=value,
        )
    assert refused.value.param == param
