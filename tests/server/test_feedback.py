"""``POST /v1/feedback`` on a running gateway: feedback on the caller's own requests, right after the
answer (its ledger row still in the writer's memory); other keys' and unknown requests alike 404;
bad bodies 400 and missing keys 401 in OpenAI's error format; the usage report's mean score."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import BreakwaterApp, create_app
from tests.polling import until
from tests.server.running import HELLO, admin_http, anthropic_sdk, openai_sdk, serve

ADMIN = "adm-feedback-3e8a"
COMMENT = "the answer was rude-7f3c9"


@dataclass
class Gateway:
    url: str
    app: BreakwaterApp
    admin: httpx2.Client

    def key(self) -> str:
        r = self.admin.post("/admin/keys", json={"name": "app"})
        assert r.status_code == 201, r.text
        key: str = r.json()["key"]
        return key

    def feedback(self, key: str | None, body: Any = None, **kw: Any) -> httpx2.Response:
        headers = {} if key is None else {"authorization": f"Bearer {key}"}
        return httpx2.post(f"{self.url}/v1/feedback", json=body, headers=headers, timeout=10, **kw)


def _config(tmp: Path, *, access: bool, flush_interval_s: float) -> dict[str, Any]:
    return {
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"store": f"sqlite:///{tmp}/keys.db", "hash_secret": "env:BW_HASH"} if access else {"enabled": False},
        "ledger": {
            "url": f"sqlite:///{tmp}/ledger.db",
            "spool_path": str(tmp / "spool"),
            "flush_interval_s": flush_interval_s,
        },
        "providers": {"m": {"type": "mock"}, "c": {"type": "mock", "wire": "anthropic"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}, "dc": {"provider": "c", "model": "mock-claude"}},
        "routes": {"fast": {"deployments": ["d"]}, "claude": {"deployments": ["dc"]}},
    }


def _gateway(tmp: Path, *, access: bool, flush_interval_s: float) -> Iterator[Gateway]:
    config = build_config(_config(tmp, access=access, flush_interval_s=flush_interval_s))
    app = create_app(config, environ={"BW_ADMIN": ADMIN, "BW_HASH": "hash-secret-for-tests-0123456789"})
    with serve(app) as url:
        yield Gateway(url, app, admin_http(url, ADMIN))


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Access control on; the ledger writer flushes once an hour, so rows stay in its memory."""
    yield from _gateway(tmp_path_factory.mktemp("feedback-keyed"), access=True, flush_interval_s=3600.0)


@pytest.fixture(scope="module")
def open_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Access control off; the writer flushes every 50 ms."""
    yield from _gateway(tmp_path_factory.mktemp("feedback-open"), access=False, flush_interval_s=0.05)


def _unflushed(gateway: Gateway, request_id: str) -> bool:
    ledger = gateway.app.ledger
    assert ledger is not None
    return ledger.writer.route_of(request_id, None) is not None


def test_feedback_right_after_an_answer_is_stored_while_its_row_is_unflushed(keyed: Gateway) -> None:
    """A score on the caller's own answer (plain, streamed, Anthropic), its row still in the writer's
    memory, is answered 201 with the stored feedback; several on one request are all kept."""
    key = keyed.key()
    plain = openai_sdk(keyed.url, key).chat.completions.with_raw_response.create(model="fast", messages=HELLO)  # type: ignore[arg-type]
    with openai_sdk(keyed.url, key).chat.completions.with_streaming_response.create(
        model="fast",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    ) as stream:
        list(stream.parse())
    claude = anthropic_sdk(keyed.url, key).messages.with_raw_response.create(
        model="claude",
        max_tokens=20,
        messages=HELLO,  # type: ignore[arg-type]
    )
    for response in (plain, stream, claude):
        rid = response.headers["x-request-id"]
        until(lambda rid=rid: _unflushed(keyed, rid), 5, "the row is submitted")  # type: ignore[misc]
        r = keyed.feedback(key, {"request_id": rid, "score": 1, "comment": COMMENT, "tags": {"reason": "tone"}})
        assert r.status_code == 201, r.text
        body = r.json()
        assert {k: body[k] for k in ("object", "request_id", "score", "comment", "tags")} == {
            "object": "feedback",
            "request_id": rid,
            "score": 1.0,
            "comment": COMMENT,
            "tags": {"reason": "tone"},
        }
        assert r.headers["x-request-id"] and r.headers["x-request-id"] != rid
        assert _unflushed(keyed, rid)  # not in the store yet: found in the writer's memory
    again = keyed.feedback(key, {"request_id": plain.headers["x-request-id"], "score": 0.25})
    assert again.status_code == 201 and again.json()["comment"] is None


def test_another_keys_request_and_an_unknown_one_both_answer_404(keyed: Gateway) -> None:
    """Feedback on another key's request gets the same 404 as on an id never seen: nothing is revealed."""
    owner, other = keyed.key(), keyed.key()
    rid = (
        openai_sdk(keyed.url, owner)
        .chat.completions.with_raw_response.create(model="fast", messages=HELLO)
        .headers["x-request-id"]
    )  # type: ignore[arg-type]
    answers = [keyed.feedback(other, {"request_id": r, "score": 1}) for r in (rid, "never-seen-id")]
    errors = [a.json()["error"] for a in answers]
    assert [a.status_code for a in answers] == [404, 404]
    assert [(e["type"], e["code"], e["param"]) for e in errors] == [
        ("invalid_request_error", "not_found", "request_id")
    ] * 2
    assert errors[0]["message"].replace(rid, "ID") == errors[1]["message"].replace("never-seen-id", "ID")


@pytest.mark.parametrize("credential", [None, "bw-" + "A" * 43])
def test_a_missing_or_unknown_key_gets_401(keyed: Gateway, credential: str | None) -> None:
    """Without a valid key: 401, as on chat completions."""
    r = keyed.feedback(credential, {"request_id": "x", "score": 1})
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b'{"request_id": "x", "score": 2}', "score"),
        (b'{"request_id": "x", "score": "good"}', "score"),
        (b'{"request_id": "x", "score": 1, "comment": "' + b"x" * 2001 + b'"}', "comment"),
        (b'{"request_id": "x", "score": 1, "tags": {"k": 1}}', "tags"),
        (b'{"request_id": "x", "score": 1', None),
        (b"[1]", None),
        (b"", None),
    ],
    ids=["score-over-1", "score-text", "long-comment", "tag-not-text", "bad-json", "not-object", "empty"],
)
def test_a_bad_body_gets_400(keyed: Gateway, content: bytes, param: str | None) -> None:
    """A bad score, an oversize comment, bad tags or a body that is not a JSON object: 400 naming the field."""
    r = httpx2.post(
        f"{keyed.url}/v1/feedback",
        content=content,
        headers={"authorization": f"Bearer {keyed.key()}", "content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.headers["x-request-id"]


def test_feedback_is_counted_and_its_comment_never_logged(keyed: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    """``breakwater_feedback_total{route}`` counts feedback; the comment reaches no log line, even on a 404."""
    key = keyed.key()
    caplog.set_level(logging.DEBUG)
    rid = (
        openai_sdk(keyed.url, key)
        .chat.completions.with_raw_response.create(model="fast", messages=HELLO)
        .headers["x-request-id"]
    )  # type: ignore[arg-type]
    assert keyed.feedback(key, {"request_id": rid, "score": 0.5, "comment": COMMENT}).status_code == 201
    assert keyed.feedback(key, {"request_id": "nope", "score": 0.5, "comment": COMMENT}).status_code == 404
    metrics = httpx2.get(f"{keyed.url}/metrics").text
    assert 'breakwater_feedback_total{route="fast"}' in metrics
    assert 'breakwater_feedback_score_bucket{le="0.5",route="fast"}' in metrics
    assert COMMENT not in caplog.text


def test_every_answer_carries_its_request_id_and_the_row_holds_it(open_gateway: Gateway) -> None:
    """Errors, streams and the model list carry x-request-id; the ledger row's request_id is that id,
    so feedback on it is found (access control off: any caller's)."""
    client = openai_sdk(open_gateway.url)
    with client.chat.completions.with_streaming_response.create(model="fast", messages=HELLO, stream=True) as stream:  # type: ignore[arg-type]
        list(stream.parse())
    missing = httpx2.post(f"{open_gateway.url}/v1/chat/completions", json={"model": "nope", "messages": HELLO})
    assert missing.status_code == 404
    models = httpx2.get(f"{open_gateway.url}/v1/models")
    assert models.status_code == 200 and models.headers["x-request-id"]
    for rid in (stream.headers["x-request-id"], missing.headers["x-request-id"]):
        # found by the row's request_id: the id the answer carried is the row's
        r = open_gateway.feedback(None, {"request_id": rid, "score": 1})
        assert r.status_code == 201, r.text


def test_the_usage_report_shows_the_mean_of_each_requests_newest_score(open_gateway: Gateway) -> None:
    """``/admin/usage`` counts the requests with feedback and averages each one's newest score."""
    client = openai_sdk(open_gateway.url)
    before = _route_usage(open_gateway)
    first, second = (
        client.chat.completions.with_raw_response.create(model="claude", messages=HELLO).headers["x-request-id"]  # type: ignore[arg-type]
        for _ in range(2)
    )
    for rid, score in ((first, 1.0), (first, 0.0), (second, 1.0)):  # first's newest is 0
        assert open_gateway.feedback(None, {"request_id": rid, "score": score}).status_code == 201
    until(lambda: _route_usage(open_gateway)["requests"] == before["requests"] + 2, 10, "the rows land")
    usage = _route_usage(open_gateway)
    assert (usage["feedback"], usage["feedback_score"]) == (2, 0.5)


def _route_usage(gateway: Gateway) -> dict[str, Any]:
    r = gateway.admin.get("/admin/usage", params={"by": "route"})
    assert r.status_code == 200, r.text
    groups = {g["group"]: g for g in r.json()["data"]}
    return groups.get("claude", {"requests": 0})
