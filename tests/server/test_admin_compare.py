"""``GET /admin/compare`` on a running gateway: the route's variants from a seeded ledger, bad
parameters as 400s naming the parameter, the admin key, a disabled ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.fuzzing import FUZZ
from tests.observability.ledger.rows import START, sqlite_ledger_with
from tests.observability.ledger.test_compare import ROWS
from tests.server.running import admin_http, serve

ADMIN = "adm-compare-7e2a"
WINDOW = {"since": str(START), "until": str(START + 86400)}


def _config(ledger: dict[str, Any]) -> dict[str, Any]:
    return {
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"enabled": False},
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {
            "gpt": {"deployments": ["d"]},
            "chat": {
                "variants": {
                    "arms": {"control": {"route": "gpt", "weight": 99}, "canary": {"deployments": ["d"], "weight": 1}}
                }
            },
        },
        "ledger": ledger,
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx2.Client]:
    """A gateway (no retention: the rows are old) whose SQLite ledger holds the seeded comparison."""
    tmp = tmp_path_factory.mktemp("compare")
    path = tmp / "ledger.db"
    sqlite_ledger_with(path, ROWS)
    config = build_config(
        _config({"url": f"sqlite:///{path}", "spool_path": str(tmp / "spool"), "retention_days": None})
    )
    with serve(create_app(config, environ={"BW_ADMIN": ADMIN})) as url:
        yield admin_http(url, ADMIN)


def test_the_variants_against_the_control(gateway: httpx2.Client) -> None:
    response = gateway.get("/admin/compare", params={"route": "chat", **WINDOW})
    assert response.status_code == 200
    body = response.json()
    assert body["route"] == "chat" and body["control"] == "control"
    assert [(v["variant"], v["requests"]) for v in body["variants"]] == [
        ("control", 100),
        ("canary", 100),
        ("retired", 1),
    ]
    canary = body["variants"][1]
    assert canary["vs_control"]["error_rate"]["significant"] is True
    assert canary["vs_control"]["refusal_rate"]["significant"] is False


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "route"),
        ({"route": "chat", "since": "yesterday"}, "since"),
        ({"route": "chat", "since": "1h", "until": "2h"}, "since"),
        ({"route": "chat", "control": "nope"}, "control"),
        ({"route": "chat", "colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_400(gateway: httpx2.Client, params: dict[str, str], param: str) -> None:
    response = gateway.get("/admin/compare", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_needs_the_admin_key(gateway: httpx2.Client) -> None:
    assert (
        gateway.get("/admin/compare", params={"route": "chat"}, headers={"authorization": "Bearer wrong"}).status_code
        == 401
    )


def test_disabled_ledger_is_404(tmp_path: Path) -> None:
    config = build_config(_config({"enabled": False}))
    with serve(create_app(config, environ={"BW_ADMIN": ADMIN})) as url:
        response = httpx2.get(
            f"{url}/admin/compare?route=chat", headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
        )
    assert response.status_code == 404


@settings(FUZZ, max_examples=60)
@given(
    params=st.dictionaries(
        st.sampled_from(["route", "since", "until", "control", "x"]), st.text(max_size=30), max_size=4
    )
)
def test_any_query_is_answered_without_a_5xx(gateway: httpx2.Client, params: dict[str, str]) -> None:
    """Whatever the query string, the answer is 200 or a 4xx with an OpenAI error body."""
    response = gateway.get("/admin/compare", params=params)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.json()["error"]["type"]
