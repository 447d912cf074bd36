"""Limits and budgets shared by two ``breakwater serve`` replicas (issue 6), and keys kept out of
their logs.

Each test runs two replica processes (one worker each) over the same Redis (a namespace of its
own, deleted afterwards), the same SQLite key store and hash secret, each with its own ledger;
keys are made through replica A's admin API and used once B knows them. Many concurrent clients
alternate between the replicas; every answer must be a 200 or a 429, and the totals admitted
must be the limit, exactly or within one request. Each test ends well inside a minute, so the
per-minute windows never roll over while they are counted.

The request is chosen so that Breakwater's estimate is exact: "hello world how are you" is five
tokens to both the mock (``\\w+|[^\\w\\s]``) and cl100k (the encoding ``mock-gpt`` is counted
with), so the prompt is 3 + 4 + 5 = 12 tokens either way, and ``max_tokens: 5`` cuts the mock's
longer answer to exactly 5. Needs Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis

from tests.cli.replicas import (
    ADMIN_KEY,
    HASH_SECRET,
    ROUTE,
    Load,
    Outcome,
    Replica,
    admin,
    cost,
    create_key,
    gauge,
    replicas,
    scrub_redis,
    status_with,
    tally,
    wait_accepted,
)
from tests.conftest import require_service
from tests.polling import until

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
TEXT = "hello world how are you"
#: Breakwater's prompt estimate for TEXT, equal to the mock's count: 3 + 4 per message + 5
PROMPT_TOKENS = 12
EXACT: dict[str, Any] = {"model": ROUTE, "messages": [{"role": "user", "content": TEXT}], "max_tokens": 5}


@pytest.fixture
def namespace() -> Iterator[str]:
    """A Redis namespace of this test's own on the shared Redis, deleted afterwards."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    name = f"bwtest-replicas-{uuid.uuid4().hex[:12]}:"
    yield name
    scrub_redis(REDIS_URL, name)


def _local_admissions(*group: Replica) -> list[float]:
    return [gauge(r, "breakwater_limits_local_admissions") for r in group]


def test_rpm_is_shared_across_replicas(tmp_path: Path, namespace: str) -> None:
    """A 600 RPM key hammered by 48 clients through both replicas gets exactly 600 requests
    admitted (within 1%), every one counted in Redis, none on a replica's local counters."""
    with replicas(tmp_path, REDIS_URL, namespace) as (a, b):
        key = create_key(a, name="rpm", limits={"rpm": 600})["key"]
        wait_accepted(b, key)
        started = time.monotonic()
        outcomes = asyncio.run(Load([a, b], key, EXACT, concurrency=48, attempts=900).run())
        elapsed = time.monotonic() - started
        local = _local_admissions(a, b)
    ok, refused, other = tally(outcomes)
    print(f"rpm 600: {len(ok)} admitted, {len(refused)} refused in {elapsed:.1f} s; local admissions {local}")
    assert not other, "every answer is a 200 or a 429"
    assert local == [0, 0], "a replica admitted on local counters: the count below would mean nothing"
    assert 594 <= len(ok) <= 606
    assert {o.replica for o in ok} == {0, 1}, "both replicas admitted requests"
    assert all(o.body["error"]["code"] == "rate_limit_exceeded" for o in refused)
    assert all(o.body["error"]["type"] == "requests" for o in refused)


def test_tpm_is_shared_across_replicas(tmp_path: Path, namespace: str) -> None:
    """A key allowed 150 requests' worth of tokens per minute, hammered through both replicas,
    gets answers whose usage adds up to its limit (within 1%, never more than 1% over), because
    each reservation equals the request's real usage."""
    with replicas(tmp_path, REDIS_URL, namespace) as (a, b):
        probe = create_key(a, name="probe", limits={"tpm": 1_000_000})["key"]
        wait_accepted(b, probe)
        per_request: list[int] = []
        for replica in (a, b, a):
            r = httpx.post(
                f"{replica.url}/v1/chat/completions",
                json=EXACT,
                headers={"authorization": f"Bearer {probe}"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            usage = r.json()["usage"]
            assert (usage["prompt_tokens"], usage["completion_tokens"]) == (PROMPT_TOKENS, 5)
            per_request.append(int(r.headers["x-ratelimit-remaining-tokens"]))
        total = PROMPT_TOKENS + 5
        # what each answer's header says is left drops by exactly the request's real usage
        assert [1_000_000 - per_request[0], per_request[0] - per_request[1], per_request[1] - per_request[2]] == [
            total
        ] * 3

        limit = 150 * total
        key = create_key(a, name="tpm", limits={"tpm": limit})["key"]
        wait_accepted(b, key)
        outcomes = asyncio.run(Load([a, b], key, EXACT, concurrency=48, attempts=260).run())
        local = _local_admissions(a, b)
    ok, refused, other = tally(outcomes)
    used = sum(o.body["usage"]["total_tokens"] for o in ok)
    print(f"tpm {limit}: {len(ok)} admitted using {used} tokens, {len(refused)} refused; local admissions {local}")
    assert not other, "every answer is a 200 or a 429"
    assert local == [0, 0], "a replica admitted on local counters"
    assert 0.99 * limit <= used <= 1.01 * limit
    assert all(o.body["error"]["type"] == "tokens" for o in refused)


def test_budget_is_shared_across_replicas(tmp_path: Path, namespace: str) -> None:
    """A $10 daily budget spent through both replicas at once ends within one request's
    maximum cost of $10: each admitted request reserves its maximum cost and settles at its real
    cost; refusals are 429 budget_exceeded; /admin/budgets on both replicas shows the spend the
    answers' usage adds up to."""
    budget = Decimal("10")
    body = {**EXACT, "max_tokens": 60}  # room the answer does not use: each reservation is more than the cost
    maximum = cost(PROMPT_TOKENS, 60)
    with replicas(tmp_path, REDIS_URL, namespace) as (a, b):
        probe = create_key(a, name="probe")["key"]
        r = httpx.post(
            f"{a.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {probe}"}, timeout=30
        )
        assert r.status_code == 200, r.text
        usage = r.json()["usage"]
        assert usage["prompt_tokens"] == PROMPT_TOKENS and usage["completion_tokens"] < 60
        each = cost(usage["prompt_tokens"], usage["completion_tokens"])
        assert 100 <= budget / each <= 300, "the budget fits a few hundred requests"

        made = create_key(a, name="budget", limits={"budget": {"usd": str(budget), "period": "day"}})
        key, key_id = made["key"], made["id"]
        wait_accepted(b, key)
        fits = int(budget / each)
        outcomes = asyncio.run(Load([a, b], key, body, concurrency=48, attempts=fits + 200).run())

        # then one request at a time, each sent once nothing is reserved any more, until one is
        # refused: the budget is spent, not merely reserved by requests still running
        def budgets(replica: Replica) -> dict[str, Any]:
            with admin(replica) as client:
                r = client.get("/admin/budgets", params={"scope": "key", "subject": key_id})
            assert r.status_code == 200, r.text
            [row] = r.json()["data"]
            return dict(row)

        def settled() -> bool:
            row = budgets(a)
            return bool(row["spent_usd"] == row["committed_usd"])

        tail: list[Outcome] = []
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {key}"}) as client:
            for turn in range(400):
                until(settled, 20, "every reservation was settled")
                index = turn % 2
                begun = time.monotonic()
                r = client.post(f"{(a, b)[index].url}/v1/chat/completions", json=body)
                tail.append(Outcome(index, begun, time.monotonic() - begun, r.status_code, r.json()))
                if r.status_code != 200:
                    break
        until(settled, 20, "every reservation was settled")
        rows = [budgets(a), budgets(b)]
        local = _local_admissions(a, b)
    ok, refused, other = tally(outcomes + tail)
    spent = sum((cost(o.body["usage"]["prompt_tokens"], o.body["usage"]["completion_tokens"]) for o in ok), Decimal(0))
    print(
        f"budget ${budget}: {len(ok)} admitted ({len(tail) - 1} of them one at a time at the end), "
        f"{len(refused)} refused; spend ${spent} (cost ${each}, maximum ${maximum}, allowed "
        f"${budget - maximum}..${budget + maximum}); /admin/budgets {[r['spent_usd'] for r in rows]}; "
        f"local admissions {local}"
    )
    assert not other, "every answer is a 200 or a 429"
    assert local == [0, 0], "a replica admitted on local counters"
    assert budget - maximum <= spent <= budget + maximum
    assert spent >= budget, "the last refusal came with nothing reserved: the budget was really spent"
    assert all(Decimal(r["spent_usd"]) == spent for r in rows), "both replicas see the spend the answers add up to"
    assert tail[-1].status == 429, "the budget ran out"
    for o in refused:
        assert (o.body["error"]["type"], o.body["error"]["code"]) == ("insufficient_quota", "budget_exceeded")


def _session(a: Replica, b: Replica) -> list[str]:
    """Keys made, used, mistyped, revoked and rotated across both replicas, and the admin API
    called with a virtual key; returns every key that existed."""
    hi = {"model": ROUTE, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}

    def chat(replica: Replica, key: str, fault: str | None = None, **extra: Any) -> int:
        headers = {"authorization": f"Bearer {key}"}
        if fault is not None:
            headers["x-mock-fault"] = fault  # the in-process mock fails as told: the gateway logs it
        r = httpx.post(f"{replica.url}/v1/chat/completions", json={**hi, **extra}, headers=headers, timeout=30)
        return r.status_code

    first = create_key(a, name="first", limits={"rpm": 1000})
    second = create_key(b, name="second", user="alice")
    for made in (first, second):
        wait_accepted(a, made["key"])
        wait_accepted(b, made["key"])
    for replica in (a, b):
        assert chat(replica, first["key"]) == 200
        assert chat(replica, second["key"], stream=True) == 200
        assert chat(replica, first["key"], fault="status=500") in (502, 503)
        assert chat(replica, second["key"], fault="status=401", stream=True) in (502, 503)
        r = httpx.post(  # Anthropic's header
            f"{replica.url}/v1/messages",
            json={"model": ROUTE, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-api-key": first["key"]},
            timeout=30,
        )
        assert r.status_code == 200, r.text

    unknown = "bw-" + secrets.token_urlsafe(32)  # well-formed, never issued
    for replica in (a, b):
        assert chat(replica, unknown) == 401
        assert chat(replica, "sk-" + secrets.token_urlsafe(24)) == 401
        assert chat(replica, first["key"] + "x") == 401

    with admin(a) as client:
        assert client.post(f"/admin/keys/{second['id']}/revoke").status_code == 200
    until(lambda: status_with(b, second["key"]) == 401, 20, "replica B refuses the revoked key")
    assert chat(a, second["key"]) == 401 and chat(b, second["key"]) == 401

    with admin(b) as client:
        r = client.post(f"/admin/keys/{first['id']}/rotate", json={"overlap_s": 600})
    assert r.status_code == 200, r.text
    rotated = r.json()["key"]
    wait_accepted(a, rotated)
    for replica in (a, b):
        assert chat(replica, rotated) == 200
        assert chat(replica, first["key"]) == 200  # within the overlap
        for key in (rotated, first["key"]):
            r = httpx.get(f"{replica.url}/admin/keys", headers={"authorization": f"Bearer {key}"}, timeout=30)
            assert r.status_code in (401, 403), "a virtual key is not the admin key"
        with admin(replica) as client:
            assert client.get("/admin/keys").status_code == 200
            assert client.get("/admin/audit").status_code == 200

    return [first["key"], second["key"], rotated, unknown]


def _pieces(key: str) -> list[str]:
    """The key, the key without its ``bw-`` prefix, and every 20-character piece of it."""
    return [key, key.removeprefix("bw-"), *(key[i : i + 20] for i in range(len(key) - 19))]


def test_keys_never_appear_in_logs_or_the_store(tmp_path: Path, namespace: str) -> None:
    """After keys are made, used, mistyped, revoked and rotated on both replicas at debug level,
    and the admin API is called with a virtual key, no log line of either replica holds any key,
    part of one, the hash secret or the admin key, and neither do the key store's or the ledgers'
    files, nor the names of the counters in Redis."""
    with replicas(tmp_path, REDIS_URL, namespace, log_level="debug") as (a, b):
        keys = _session(a, b)
        live = _files(tmp_path)
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        try:
            counters = [name.decode() for name in client.scan_iter(match=f"{namespace}*")]
        finally:
            client.close()
    lines = a.out + a.err + b.out + b.err
    print(f"{len(lines)} log lines, {len(live)} store and ledger files, {len(counters)} Redis keys")
    for replica in (a, b):
        assert any("upstream call failed" in line for line in replica.err), "requests with a key were logged"
    secrets_ = [piece for key in keys for piece in _pieces(key)] + [HASH_SECRET, ADMIN_KEY]
    for line in lines:
        for piece in secrets_:
            assert piece not in line, f"a secret ({piece[:6]}...) in a log line: {line[:200]}"
    for name, data in [*live.items(), *_files(tmp_path).items()]:  # while running (WAL) and after
        for piece in secrets_:
            assert piece.encode() not in data, f"a secret ({piece[:6]}...) in {name}"
    assert counters, "the replicas counted in Redis"
    for name in counters:
        assert not any(piece in name for piece in secrets_), f"a secret in the Redis key {name}"


def _files(tmp_path: Path) -> dict[str, bytes]:
    """The bytes of the key store's and the ledgers' SQLite files (database, WAL, shared memory)."""
    return {p.name: p.read_bytes() for p in sorted(tmp_path.iterdir()) if ".db" in p.name}
