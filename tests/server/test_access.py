"""Access control end to end on a running gateway: keys made through the admin API, the
authorization matrix as the official SDKs see it, the admin API's own protection, and a
clock-driven expiry and rotation overlap."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.infra.clock import ManualClock
from breakwater.server.app import create_app
from tests.server.running import admin_http, anthropic_sdk, openai_sdk, serve

ADMIN = "adm-access-91c3"
HI: list[Any] = [{"role": "user", "content": "hi"}]


@dataclass
class Gateway:
    url: str
    admin: httpx2.Client
    clock: ManualClock
    store: Path

    def openai(self, key: str) -> openai.OpenAI:
        return openai_sdk(self.url, key)

    def anthropic(self, key: str) -> anthropic.Anthropic:
        return anthropic_sdk(self.url, key)

    def create(self, **spec: Any) -> dict[str, Any]:
        r = self.admin.post("/admin/keys", json=spec)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("access")
    config = build_config(
        {
            "server": {"admin_key": "env:BW_ADMIN"},
            "access": {"store": f"sqlite:///{tmp}/keys.db", "hash_secret": "env:BW_HASH"},
            "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool")},
            "providers": {"m": {"type": "mock"}, "c": {"type": "mock", "wire": "anthropic"}},
            "deployments": {
                "d": {"provider": "m", "model": "mock-gpt"},
                "dc": {"provider": "c", "model": "mock-claude"},
            },
            "routes": {
                "fast": {"deployments": ["d"]},
                "slow": {"deployments": ["d"]},
                "claude": {"deployments": ["dc"]},
            },
        }
    )
    clock = ManualClock(wall=1_795_867_200.0)
    app = create_app(config, environ={"BW_ADMIN": ADMIN, "BW_HASH": "hash-secret-for-tests-0123456789"}, clock=clock)
    with serve(app) as url:
        admin = admin_http(url, ADMIN)
        yield Gateway(url, admin, clock, tmp / "keys.db")


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict)
    return body


def test_a_valid_key_is_served(gateway: Gateway) -> None:
    """A key made through the admin API works with the OpenAI and Anthropic SDKs (Bearer and x-api-key)."""
    key = gateway.create(name="app", user="alice")["key"]
    answer = gateway.openai(key).chat.completions.create(model="fast", messages=HI)
    assert answer.choices[0].message.content
    claude = gateway.anthropic(key).messages.create(model="claude", max_tokens=50, messages=HI)
    assert claude.content


def test_a_missing_key_gets_401(gateway: Gateway) -> None:
    """No credential header at all: 401 missing_api_key, before the body is even read."""
    r = httpx2.post(f"{gateway.url}/v1/chat/completions", json={"model": "fast", "messages": HI})
    assert r.status_code == 401
    assert (r.json()["error"]["type"], r.json()["error"]["code"]) == ("invalid_request_error", "missing_api_key")


@pytest.mark.parametrize(
    "credential",
    ["bw-" + "A" * 43, "sk-not-a-breakwater-key", ADMIN],  # the admin key is not a virtual key
)
def test_wrong_keys_get_401(gateway: Gateway, credential: str) -> None:
    """An unknown key, a foreign key or the admin key: 401 invalid_request_error, invalid_api_key."""
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.openai(credential).chat.completions.create(model="fast", messages=HI)
    error = error_of(caught.value)
    assert caught.value.status_code == 401
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert credential not in str(error)


@pytest.mark.parametrize(("action", "code"), [("revoke", "key_revoked"), ("disable", "key_disabled")])
def test_revoked_and_disabled_keys_get_401(gateway: Gateway, action: str, code: str) -> None:
    """A revoked or disabled key is refused at once on this replica, in both SDKs' formats."""
    made = gateway.create(name=action)
    gateway.openai(made["key"]).chat.completions.create(model="fast", messages=HI)
    r = gateway.admin.post(f"/admin/keys/{made['id']}/{action}")
    assert r.status_code == 200 and r.json()["status"] == f"{action}d"
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.openai(made["key"]).chat.completions.create(model="fast", messages=HI)
    assert error_of(caught.value)["code"] == code
    assert made["prefix"] in error_of(caught.value)["message"] and made["key"] not in str(error_of(caught.value))
    with pytest.raises(anthropic.AuthenticationError) as refused:
        gateway.anthropic(made["key"]).messages.create(model="claude", max_tokens=50, messages=HI)
    body = refused.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "authentication_error"


def test_a_disabled_key_can_be_enabled_again_but_a_revoked_one_cannot(gateway: Gateway) -> None:
    """enable undoes disable; revoke is final (enable leaves the key revoked)."""
    made = gateway.create()
    gateway.admin.post(f"/admin/keys/{made['id']}/disable")
    assert gateway.admin.post(f"/admin/keys/{made['id']}/enable").json()["status"] == "active"
    gateway.openai(made["key"]).chat.completions.create(model="fast", messages=HI)
    gateway.admin.post(f"/admin/keys/{made['id']}/revoke")
    assert gateway.admin.post(f"/admin/keys/{made['id']}/enable").json()["status"] == "revoked"


def test_an_expired_key_gets_401(gateway: Gateway) -> None:
    """A key past its expiry is refused with key_expired."""
    made = gateway.create(expires_in_s=3600)
    gateway.openai(made["key"]).chat.completions.create(model="fast", messages=HI)
    gateway.clock.advance(3600)
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.openai(made["key"]).chat.completions.create(model="fast", messages=HI)
    assert error_of(caught.value)["code"] == "key_expired"


def test_rotation_keeps_the_old_key_for_the_overlap_only(gateway: Gateway) -> None:
    """After a rotation both keys work during the overlap; after it only the new one, and the key's id stays."""
    made = gateway.create(name="rotating")
    r = gateway.admin.post(f"/admin/keys/{made['id']}/rotate", json={"overlap_s": 600})
    assert r.status_code == 200
    rotated = r.json()
    assert rotated["id"] == made["id"] and rotated["key"] != made["key"] and rotated["status"] == "rotating"
    assert rotated["previous_prefix"] == made["prefix"]
    for key in (made["key"], rotated["key"]):
        gateway.openai(key).chat.completions.create(model="fast", messages=HI)
    gateway.clock.advance(600)
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.openai(made["key"]).chat.completions.create(model="fast", messages=HI)
    assert error_of(caught.value)["code"] == "key_rotated"
    gateway.openai(rotated["key"]).chat.completions.create(model="fast", messages=HI)


def test_a_route_the_key_may_not_use_gets_403(gateway: Gateway) -> None:
    """A key limited to some routes gets 403 on others, and /v1/models lists only its routes."""
    key = gateway.create(routes=["fast"])["key"]
    client = gateway.openai(key)
    client.chat.completions.create(model="fast", messages=HI)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="slow", messages=HI)
    error = error_of(caught.value)
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "model_not_allowed", "model")
    assert [m.id for m in client.models.list()] == ["fast"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("slow")
    with pytest.raises(anthropic.PermissionDeniedError):
        gateway.anthropic(key).messages.create(model="claude", max_tokens=50, messages=HI)


def test_a_disabled_team_stops_its_keys(gateway: Gateway) -> None:
    """Disabling a team refuses all its keys (team_disabled) until it is enabled again."""
    assert gateway.admin.post("/admin/teams", json={"name": "search"}).status_code == 201
    key = gateway.create(team="search")["key"]
    gateway.openai(key).chat.completions.create(model="fast", messages=HI)
    gateway.admin.post("/admin/teams/search/disable")
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.openai(key).chat.completions.create(model="fast", messages=HI)
    assert error_of(caught.value)["code"] == "team_disabled"
    gateway.admin.post("/admin/teams/search/enable")
    gateway.openai(key).chat.completions.create(model="fast", messages=HI)


@pytest.mark.parametrize("path", ["/admin/keys", "/admin/deployments", "/admin/usage", "/admin/audit"])
def test_the_admin_api_takes_only_the_admin_key(gateway: Gateway, path: str) -> None:
    """A virtual key at the admin API gets 403 permission (never served); no key or a wrong one gets 401."""
    key = gateway.create()["key"]
    as_key = httpx2.get(f"{gateway.url}{path}", headers={"authorization": f"Bearer {key}"})
    assert as_key.status_code == 403
    assert as_key.json()["error"]["code"] == "admin_only"
    for headers in ({}, {"authorization": "Bearer not-the-admin-key"}):
        r = httpx2.get(f"{gateway.url}{path}", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    assert gateway.admin.get(path).status_code == 200


def test_admin_changes_are_audited_without_secrets(gateway: Gateway) -> None:
    """Each admin action leaves an audit entry naming the actor and the change; no key or hash in it."""
    made = gateway.create(name="audited")
    gateway.admin.patch(
        f"/admin/keys/{made['id']}", json={"routes": ["fast"]}, headers={"x-breakwater-actor": "ops@example.com"}
    )
    entries = gateway.admin.get("/admin/audit", params={"target": f"key:{made['id']}"}).json()["data"]
    assert [e["action"] for e in entries] == ["key.update", "key.create"]
    update = entries[0]
    assert update["actor"].startswith("ops@example.com (") and update["before"]["routes"] == []
    assert update["after"]["routes"] == ["fast"]
    text = str(entries)
    assert made["key"] not in text and "hash" not in text


def test_bad_admin_input_gets_400_naming_the_field(gateway: Gateway) -> None:
    """Unknown fields, wrong types, unknown teams or routes: 400 with the field, nothing written."""
    before = len(gateway.admin.get("/admin/keys").json()["data"])
    for body, param in [
        ({"limits": {"rpm": 0}}, "limits.rpm"),
        ({"colour": "blue"}, "colour"),
        ({"team": "no-such-team"}, "team"),
        ({"routes": ["no-such-route"]}, "routes"),
        ({"limits": {"budget": {"usd": "ten"}}}, "limits.budget.usd"),
    ]:
        r = gateway.admin.post("/admin/keys", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == param
    r = gateway.admin.post("/admin/keys", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert len(gateway.admin.get("/admin/keys").json()["data"]) == before
    assert gateway.admin.get("/admin/keys/key_nope").status_code == 404


def test_keys_are_listed_by_prefix_and_never_stored_in_clear(gateway: Gateway) -> None:
    """Listings show prefixes, never keys or hashes; the key store's files do not hold a key."""
    made = gateway.create(name="listed")
    listed = gateway.admin.get("/admin/keys").json()["data"]
    mine = next(k for k in listed if k["id"] == made["id"])
    assert mine["prefix"] == made["key"][:11] and "key" not in mine and "hash" not in mine
    raw = b"".join(p.read_bytes() for p in gateway.store.parent.glob("keys.db*"))
    assert made["key"].encode() not in raw and made["key"][11:].encode() not in raw


def test_refused_credentials_are_counted_by_reason(gateway: Gateway) -> None:
    """/metrics counts authentication failures by reason (a guessing client shows as invalid_api_key)."""
    for _ in range(2):
        httpx2.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "fast", "messages": HI},
            headers={"authorization": "Bearer bw-" + "B" * 43},
        )
    metrics = httpx2.get(f"{gateway.url}/metrics").text
    found = re.search(r'^breakwater_auth_failures_total\{reason="invalid_api_key"\} (\S+)$', metrics, re.MULTILINE)
    assert found is not None and float(found.group(1)) >= 2


def test_readyz_reports_access(gateway: Gateway) -> None:
    """/readyz says access control is on and how limits are counted."""
    body = httpx2.get(f"{gateway.url}/readyz").json()
    assert body["status"] == "ready" and body["access"] == "on"
    assert body["limits"] == {"backend": "memory", "state": "ok"}
