"""The official ``openai`` SDK's ``client.moderations.create`` against ``/v1/moderations`` on a
running gateway: forwarded to OpenAI-wire deployments (the mock in-process and over a socket),
refused with a 400 on routes without a moderation endpoint, recorded in the ledger, and held to
the caller's key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import admin_http, openai_sdk, serve
from tests.server.test_ledger import _row


@pytest.fixture(scope="module")
def client(gateway_url: str) -> openai.OpenAI:
    return openai_sdk(gateway_url)


@pytest.mark.parametrize("model", ["mock", "remote"])
def test_a_moderation_is_the_upstreams_answer(client: openai.OpenAI, model: str) -> None:
    """A text is classified by the upstream: flagged in the category it hits, clean otherwise; a
    list of strings gets a result each."""
    flagged = client.moderations.create(model=model, input="I will attack them")
    assert flagged.results[0].flagged and flagged.results[0].categories.violence
    assert flagged.results[0].category_scores.violence > 0.5
    both = client.moderations.create(model=model, input=["a calm sentence", "you idiot"])
    assert [r.flagged for r in both.results] == [False, True]
    assert both.results[1].categories.harassment


def test_multimodal_input_is_forwarded(client: openai.OpenAI) -> None:
    """Text and image_url parts are one input, moderated together."""
    parts = [
        {"type": "text", "text": "I will attack"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    answer = client.moderations.create(model="remote", input=parts)  # type: ignore[arg-type]
    assert len(answer.results) == 1 and answer.results[0].flagged
    assert "image" in answer.results[0].category_applied_input_types.violence


@pytest.mark.parametrize("model", ["mock-claude", "mock-gemini", "remote-claude"])
def test_a_route_without_moderation_is_a_clear_400(client: openai.OpenAI, model: str) -> None:
    """A route served by Anthropic or Gemini is a 400 in OpenAI's format naming why."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.moderations.create(model=model, input="hello")
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["param"] == "model" and body["code"] == "unsupported_parameter"
    assert "no moderation endpoint" in body["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "mock"}, 400),
        ({"model": "mock", "input": 5}, 400),
        ({"model": "mock", "input": [{"type": "audio"}]}, 400),
        ({"input": "hello"}, 404),  # omni-moderation-latest: no such route here
    ],
)
def test_bad_requests_are_4xx(gateway_url: str, body: dict[str, object], status: int) -> None:
    """A missing or malformed input is a 400 naming it; no model means omni-moderation-latest, unknown here: 404."""
    response = httpx2.post(f"{gateway_url}/v1/moderations", json=body, timeout=10)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"].startswith("model" if status == 404 else "input")


def test_a_moderation_has_a_ledger_row(client: openai.OpenAI, ledger_path: Path) -> None:
    """The call is one ledger row: route, deployment, status 200, no tokens, cost 0."""
    raw = client.moderations.with_raw_response.create(model="remote", input="hello")
    assert raw.headers["x-breakwater-deployment"] == "r-openai"
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert (row["route"], row["deployment"], row["status"]) == ("remote", "r-openai", 200)
    assert row["input_tokens"] == 0 and row["output_tokens"] == 0
    assert float(row["cost_usd"]) == 0


ADMIN = "adm-moderation-5d1e"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway with access control on, and a moderation route."""
    tmp = tmp_path_factory.mktemp("moderation-access")
    config = build_config(
        {
            "server": {"admin_key": "env:BW_ADMIN"},
            "access": {"store": f"sqlite:///{tmp}/keys.db", "hash_secret": "env:BW_HASH"},
            "ledger": {"enabled": False},
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "omni-moderation-latest"}},
            "routes": {"omni-moderation-latest": {"deployments": ["d"]}, "chat": {"deployments": ["d"]}},
        }
    )
    environ = {"BW_ADMIN": ADMIN, "BW_HASH": "hash-secret-for-tests-0123456789"}
    with serve(create_app(config, environ=environ)) as url:
        yield url


def test_moderation_is_held_to_the_callers_key(keyed: str) -> None:
    """No key is a 401; a key without the route a 403; a key with it is served (model left out)."""
    with pytest.raises(openai.AuthenticationError):
        openai_sdk(keyed, "bw-not-a-key").moderations.create(input="hello")
    with admin_http(keyed, ADMIN) as admin:
        narrow = admin.post("/admin/keys", json={"routes": ["chat"]}).json()["key"]
        wide = admin.post("/admin/keys", json={"routes": ["omni-moderation-latest"]}).json()["key"]
    with pytest.raises(openai.PermissionDeniedError):
        openai_sdk(keyed, narrow).moderations.create(input="hello")
    assert openai_sdk(keyed, wide).moderations.create(input="hello").results[0].flagged is False


def test_moderation_counts_against_the_keys_limits(keyed: str) -> None:
    """A moderation is a request like any other for the key's limits: past its rpm, a 429."""
    with admin_http(keyed, ADMIN) as admin:
        key = admin.post("/admin/keys", json={"routes": ["omni-moderation-latest"], "limits": {"rpm": 2}}).json()["key"]
    client = openai_sdk(keyed, key, max_retries=0)
    for _ in range(2):
        assert client.moderations.create(input="hello").results[0].flagged is False
    with pytest.raises(openai.RateLimitError):
        client.moderations.create(input="hello")
