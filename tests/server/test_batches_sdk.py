"""OpenAI's Files and Batch APIs through the official ``openai`` SDK (``client.files``,
``client.batches``), unchanged, against a running gateway that runs the batches itself.

The module's gateway runs without access control, its batches in memory, on the in-process mock;
per-key isolation runs on a gateway of its own with keys in a SQLite key store, and the restart
test stops a gateway mid-batch and starts another on the same store (SQLite, and PostgreSQL on
127.0.0.1:5432 when it is there: a database of its own, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx2
import openai
import pytest
import yaml

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.conftest import require_service
from tests.polling import until
from tests.server.conftest import NO_BREAKER, ONE_SHOT, PRICE
from tests.server.running import admin_http, openai_sdk, serve

HELLO = [{"role": "user", "content": "Hello there"}]
PG_HOST, PG_PORT = "127.0.0.1", 5432


def _config(tmp: Path, **batches: Any) -> dict[str, Any]:
    return {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "batches": {"poll_s": 0.05, **batches},
        "providers": {
            "m": {"type": "mock", "wire": "openai"},
            "mc": {"type": "mock", "wire": "anthropic"},
            "slow": {"type": "mock", "wire": "openai", "faults": [{"fault": "latency=150"}]},
        },
        "deployments": {
            "d": {"provider": "m", "model": "mock-gpt", "price": PRICE, **NO_BREAKER},
            "dc": {"provider": "mc", "model": "mock-claude", "price": PRICE, **NO_BREAKER},
            "de": {"provider": "m", "model": "mock-embed", **NO_BREAKER},
            "ds": {"provider": "slow", "model": "mock-gpt", "price": PRICE, **NO_BREAKER},
        },
        "routes": {
            "mock": {"deployments": ["d"], **ONE_SHOT},
            "mock-claude": {"deployments": ["dc"], **ONE_SHOT},
            "embed": {"deployments": ["de"], **ONE_SHOT},
            "slow": {"deployments": ["ds"], **ONE_SHOT},
        },
    }


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def _chat(custom_id: str, model: str = "mock", text: str = "Hello there") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def _done(client: openai.OpenAI, batch_id: str, limit_s: float = 20.0) -> Any:
    """The batch once it has reached a final status."""
    final = ("completed", "failed", "expired", "cancelled")
    until(lambda: client.batches.retrieve(batch_id).status in final, limit_s, f"batch {batch_id} ends")
    return client.batches.retrieve(batch_id)


def _lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).content.splitlines()]


def _ledger_rows(tmp: Path, batch_id: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(tmp / "ledger.db")
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM breakwater_ledger").fetchall()
    except sqlite3.OperationalError:
        rows = []
    finally:
        db.close()
    return [dict(row) for row in rows if json.loads(row["tags"]).get("batch_id") == batch_id]


class Gateway:
    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp = url, tmp
        self.client = openai_sdk(url)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway without access control; batches in memory."""
    tmp = tmp_path_factory.mktemp("batches")
    with serve(create_app(build_config(_config(tmp)))) as url:
        yield Gateway(url, tmp)


def test_a_batch_answers_every_line_once(gateway: Gateway) -> None:
    """A chat batch goes to completed: one output line per input line, with the answer a direct call
    gets, request counts that add up, and one ledger row per line tagged with the batch's id."""
    client = gateway.client
    lines = [_chat("a"), _chat("b", "mock-claude"), _chat("c", text="Other words")]
    uploaded = client.files.create(file=("in.jsonl", _jsonl(lines)), purpose="batch")
    assert (uploaded.object, uploaded.purpose, uploaded.filename) == ("file", "batch", "in.jsonl")
    assert uploaded.bytes == len(_jsonl(lines))
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"job": "nightly"}
    )
    assert (batch.status, batch.metadata) == ("validating", {"job": "nightly"})
    done = _done(client, batch.id)
    assert done.status == "completed"
    assert done.in_progress_at is not None and done.finalizing_at is not None and done.completed_at is not None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (3, 3, 0)
    assert done.error_file_id is None
    output = _lines(client, done.output_file_id)
    assert [line["custom_id"] for line in output] == ["a", "b", "c"]
    direct = client.chat.completions.create(model="mock", messages=HELLO)  # type: ignore[arg-type]
    for line in output:
        assert line["error"] is None and line["id"].startswith("batch_req_")
        response = line["response"]
        assert response["status_code"] == 200 and response["body"]["object"] == "chat.completion"
    assert output[0]["response"]["body"]["choices"][0]["message"]["content"] == direct.choices[0].message.content
    until(lambda: len(_ledger_rows(gateway.tmp, batch.id)) == 3, 10, "the batch's ledger rows are written")
    rows = _ledger_rows(gateway.tmp, batch.id)
    assert sorted(row["request_id"] for row in rows) == sorted(line["response"]["request_id"] for line in output)
    assert all(row["status"] == 200 and row["cost_usd"] is not None for row in rows)
    assert sorted(json.loads(row["tags"])["batch_custom_id"] for row in rows) == ["a", "b", "c"]
    info = client.files.retrieve(done.output_file_id)
    assert info.purpose == "batch_output"


def test_metrics_count_the_batch_lines(gateway: Gateway) -> None:
    """``/metrics`` counts batch lines by outcome (a 404 line is ``failed``) and shows none in flight once done."""

    def count(text: str, outcome: str) -> float:
        found = re.search(rf'^breakwater_batch_lines_total{{outcome="{outcome}"}} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    before = httpx2.get(f"{gateway.url}/metrics", timeout=10).text
    client = gateway.client
    uploaded = client.files.create(
        file=("in.jsonl", _jsonl([_chat("a"), _chat("b", "no-such-route")])), purpose="batch"
    )
    _done(
        client,
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h").id,
    )
    after = httpx2.get(f"{gateway.url}/metrics", timeout=10).text
    assert count(after, "ok") - count(before, "ok") == 1
    assert count(after, "failed") - count(before, "failed") == 1
    assert "breakwater_batch_lines_in_flight 0.0" in after


def test_an_embeddings_batch(gateway: Gateway) -> None:
    """An embeddings batch answers each line with an embeddings list."""
    client = gateway.client
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "embed", "input": f"text {i}"},
        }
        for i in range(2)
    ]
    uploaded = client.files.create(file=("e.jsonl", _jsonl(lines)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    done = _done(client, batch.id)
    output = _lines(client, done.output_file_id)
    assert [line["response"]["body"]["object"] for line in output] == ["list", "list"]
    assert output[0]["response"]["body"]["data"][0]["object"] == "embedding"


def test_a_failing_line_goes_to_the_error_file(gateway: Gateway) -> None:
    """A line the gateway refuses (an unknown model) is counted failed and lands in the error file
    with the status and error body a direct call would get; the others still answer."""
    client = gateway.client
    uploaded = client.files.create(
        file=("in.jsonl", _jsonl([_chat("ok"), _chat("bad", "no-such-route")])), purpose="batch"
    )
    done = _done(
        client,
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h").id,
    )
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 1)
    [error] = _lines(client, done.error_file_id)
    assert error["custom_id"] == "bad" and error["response"]["status_code"] == 404
    assert set(error["response"]["body"]["error"]) == {"message", "type", "param", "code"}
    assert [line["custom_id"] for line in _lines(client, done.output_file_id)] == ["ok"]


def test_a_batch_whose_lines_call_another_endpoint_fails(gateway: Gateway) -> None:
    """A batch whose endpoint is not its lines' url fails validation, with the reason in ``errors``."""
    client = gateway.client
    uploaded = client.files.create(file=("in.jsonl", _jsonl([_chat("a")])), purpose="batch")
    done = _done(
        client, client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h").id
    )
    assert done.status == "failed" and done.failed_at is not None
    assert done.errors is not None and done.errors.data is not None
    assert "/v1/chat/completions" in (done.errors.data[0].message or "")


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"not json\n", "Line 1 is not valid JSON"),
        (_jsonl([_chat("a"), _chat("a")]), "Line 2: custom_id 'a'"),
        (_jsonl([{**_chat("a"), "url": "/v1/images"}]), "Line 1: url must be"),
        (_jsonl([{**_chat("a"), "method": "GET"}]), "method must be 'POST'"),
        (_jsonl([{**_chat("a"), "body": {"messages": []}}]), "body.model"),
        (_jsonl([{**_chat("a"), "body": {"model": "mock", "stream": True}}]), "body.stream"),
        (b"\n\n", "holds no requests"),
    ],
)
def test_an_upload_is_checked_line_by_line(gateway: Gateway, content: bytes, found: str) -> None:
    """A malformed input file is a 400 naming the line and what is wrong, and is not kept."""
    before = len(gateway.client.files.list().data)
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client.files.create(file=("in.jsonl", content), purpose="batch")
    assert found in info.value.message
    assert len(gateway.client.files.list().data) == before


def test_files_are_listed_read_and_deleted(gateway: Gateway) -> None:
    """A file is listed, read back byte for byte, and gone once deleted (then a 404)."""
    client = gateway.client
    content = _jsonl([_chat("ü-1")])
    uploaded = client.files.create(file=("mine.jsonl", content), purpose="batch")
    assert uploaded.id in [f.id for f in client.files.list(purpose="batch")]
    assert client.files.retrieve(uploaded.id).bytes == len(content)
    assert client.files.content(uploaded.id).content == content
    deleted = client.files.delete(uploaded.id)
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)


def test_batches_are_listed_newest_first_by_pages(gateway: Gateway) -> None:
    """``batches.list`` pages newest first with ``after`` and ``limit``; the SDK's iterator walks them all."""
    client = gateway.client
    uploaded = client.files.create(file=("in.jsonl", _jsonl([_chat("a")])), purpose="batch")
    made = [
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h").id
        for _ in range(3)
    ]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == made[::-1][:2] and page.has_more
    assert client.batches.list(limit=2, after=made[1]).data[0].id == made[0]
    every = [b.id for b in client.batches.list(limit=2)]
    assert set(made) <= set(every)
    for batch_id in made:
        _done(client, batch_id)


def test_the_apis_answer_without_v1_too(gateway: Gateway) -> None:
    """A client whose base URL lacks ``/v1`` reaches the same files and batches."""
    client = openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0)
    uploaded = client.files.create(file=("in.jsonl", _jsonl([_chat("a")])), purpose="batch")
    assert gateway.client.files.retrieve(uploaded.id).id == uploaded.id
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert _done(client, batch.id).status == "completed"
    assert httpx2.put(f"{gateway.url}/batches/{batch.id}", timeout=10).status_code == 405
    assert httpx2.get(f"{gateway.url}/files/{uploaded.id}/other", timeout=10).status_code == 404


def test_a_batch_refuses_bad_parameters(gateway: Gateway) -> None:
    """A completion window other than 24h, an unknown endpoint or input file are 400s."""
    client = gateway.client
    uploaded = client.files.create(file=("in.jsonl", _jsonl([_chat("a")])), purpose="batch")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="1h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/completions", completion_window="24h")
    with pytest.raises(openai.BadRequestError) as info:
        client.batches.create(input_file_id="file-none", endpoint="/v1/chat/completions", completion_window="24h")
    assert info.value.param == "input_file_id"  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_none")


def test_cancelling_a_batch_keeps_what_was_answered(gateway: Gateway) -> None:
    """A cancelled batch stops starting lines: it goes cancelling then cancelled, and its output
    file holds the lines answered before; cancelling again returns it as it is."""
    client = gateway.client
    uploaded = client.files.create(
        file=("in.jsonl", _jsonl([_chat(f"s{i}", "slow") for i in range(40)])), purpose="batch"
    )
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    until(lambda: (client.batches.retrieve(batch.id).request_counts or _NO).completed >= 1, 10, "a line is answered")
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status == "cancelling" and cancelled.cancelling_at is not None
    done = _done(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    assert done.request_counts is not None and 1 <= done.request_counts.completed < 40
    assert len(_lines(client, done.output_file_id)) == done.request_counts.completed
    assert client.batches.cancel(batch.id).status == "cancelled"


def test_a_finished_batch_cannot_be_cancelled(gateway: Gateway) -> None:
    """Cancelling a completed batch is a 409."""
    client = gateway.client
    uploaded = client.files.create(file=("in.jsonl", _jsonl([_chat("a")])), purpose="batch")
    done = _done(
        client,
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h").id,
    )
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(done.id)


class _NoCounts:
    completed = 0


_NO = _NoCounts()


# --- keys ---------------------------------------------------------------------------------------

ADMIN = "adm-batches-5d1e"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway with access control: keys, files and batches in one SQLite key store."""
    tmp = tmp_path_factory.mktemp("keyed-batches")
    config = _config(tmp)
    config["access"] = {"store": f"sqlite:///{tmp}/keys.db", "hash_secret": "env:BW_HASH"}
    config["server"] = {"admin_key": "env:BW_ADMIN"}
    app = create_app(build_config(config), environ={"BW_ADMIN": ADMIN, "BW_HASH": "hash-secret-for-tests-0123456789"})
    with serve(app) as url:
        yield url


def _keyed_client(url: str) -> openai.OpenAI:
    answer = admin_http(url, ADMIN).post("/admin/keys", json={"name": "app"})
    assert answer.status_code == 201, answer.text
    return openai_sdk(url, answer.json()["key"])


def test_files_and_batches_are_their_keys_own(keyed: str) -> None:
    """Another key gets 404 for a file, its content, a batch and its cancel, sees none listed and
    cannot batch another key's file; the owner's batch runs as the owner."""
    alice, bob = _keyed_client(keyed), _keyed_client(keyed)
    uploaded = alice.files.create(file=("in.jsonl", _jsonl([_chat("a")])), purpose="batch")
    batch = alice.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    for call in (
        lambda: bob.files.retrieve(uploaded.id),
        lambda: bob.files.content(uploaded.id),
        lambda: bob.files.delete(uploaded.id),
        lambda: bob.batches.retrieve(batch.id),
        lambda: bob.batches.cancel(batch.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    with pytest.raises(openai.BadRequestError):
        bob.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert bob.files.list().data == [] and bob.batches.list().data == []
    done = _done(alice, batch.id)
    assert done.status == "completed"
    assert _lines(alice, done.output_file_id)[0]["response"]["status_code"] == 200


def test_the_apis_need_a_key(keyed: str) -> None:
    """Without a valid key, the Files and Batch APIs answer 401 in OpenAI's format."""
    for method, path in (
        ("GET", "/v1/files"),
        ("POST", "/v1/files"),
        ("GET", "/v1/batches/batch_x"),
        ("POST", "/v1/batches"),
    ):
        answer = httpx2.request(method, f"{keyed}{path}", timeout=10)
        assert answer.status_code == 401, path
        assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


# --- restart ------------------------------------------------------------------------------------


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def batch_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A batch store URL: a SQLite file, or a PostgreSQL database of its own (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/batches.db"
        return
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"bwbatch_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def test_a_batch_resumes_after_a_restart_with_every_line_answered_once(tmp_path: Path, batch_store: str) -> None:
    """A gateway stopped mid-batch leaves it in progress; a new gateway on the same store (SQLite,
    PostgreSQL) resumes it with the lines not yet answered, and every line ends with exactly one result."""
    config = build_config(_config(tmp_path, store=batch_store, concurrency=1))
    lines = [_chat(f"r{i}", "slow") for i in range(8)]
    with serve(create_app(config)) as url:
        client = openai_sdk(url)
        uploaded = client.files.create(file=("in.jsonl", _jsonl(lines)), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        until(
            lambda: (client.batches.retrieve(batch.id).request_counts or _NO).completed >= 2,
            20,
            "two lines are answered",
        )
    with serve(create_app(config)) as url:
        client = openai_sdk(url)
        stopped = client.batches.retrieve(batch.id)
        assert stopped.status == "in_progress"
        assert stopped.request_counts is not None and 2 <= stopped.request_counts.completed < 8
        done = _done(client, batch.id, 30)
        assert done.status == "completed"
        assert done.request_counts is not None
        assert (done.request_counts.total, done.request_counts.completed) == (8, 8)
        output = _lines(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in output) == sorted(line["custom_id"] for line in lines)
    rows = _ledger_rows(tmp_path, batch.id)
    answered = [row for row in rows if row["status"] == 200]
    assert sorted(row["request_id"] for row in answered) == sorted(line["response"]["request_id"] for line in output)


def test_the_documented_config_validates() -> None:
    """Every YAML block of docs/batch.md and the batches section of docs/configuration.md is a valid config."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    blocks = re.findall(r"```yaml\n(.*?)```", (docs / "batch.md").read_text(encoding="utf-8"), re.S)
    configuration = (docs / "configuration.md").read_text(encoding="utf-8")
    section = configuration[configuration.index("## Batches") : configuration.index("## Relative paths")]
    blocks += re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    for block in blocks:
        assert build_config(yaml.safe_load(block)).batches.enabled
