"""``GET /admin/usage`` on a running gateway: groups from the ledger, paging, bad parameters, admin key."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.observability.ledger.rows import make_row, sqlite_ledger_with
from tests.server.running import admin_http, serve

START = 1_700_006_400.0  # 2023-11-15T00:00:00Z
ADMIN = "adm-usage-5c1d"


def _config(ledger: dict[str, Any]) -> dict[str, Any]:
    return {
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"enabled": False},
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"mock": {"deployments": ["d"]}},
        "ledger": ledger,
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx2.Client]:
    """A gateway (no retention: the rows are old) whose SQLite ledger holds 5 users' rows (user-i: i + 1 requests at $0.01 each)."""
    tmp = tmp_path_factory.mktemp("usage")
    path = tmp / "ledger.db"
    rows = [
        dataclasses.replace(make_row(n), id=f"u{u}-{k}", ts=START + n, user=f"user-{u}", cost_usd=Decimal("0.01"))
        for n, (u, k) in enumerate((u, k) for u in range(5) for k in range(u + 1))
    ]
    sqlite_ledger_with(path, rows)
    config = build_config(
        _config({"url": f"sqlite:///{path}", "spool_path": str(tmp / "spool"), "retention_days": None})
    )
    with serve(create_app(config, environ={"BW_ADMIN": ADMIN})) as url:
        yield admin_http(url, ADMIN)


def test_groups_costliest_first(gateway: httpx2.Client) -> None:
    """Usage by user over an explicit window: an OpenAI-style list, costliest user first, exact cost."""
    response = gateway.get("/admin/usage", params={"by": "user", "since": "2023-11-15", "until": str(START + 86400)})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert body["next_page_token"] is None
    assert [g["group"] for g in body["data"]] == ["user-4", "user-3", "user-2", "user-1", "user-0"]
    assert body["data"][0]["requests"] == 5
    assert body["data"][0]["cost_usd"] == "0.0500000000"


def test_pages_follow_the_token(gateway: httpx2.Client) -> None:
    """limit=2 gives three pages; each page's next_page_token fetches the next; the last has none."""
    seen: list[str] = []
    params = {"by": "user", "since": str(START), "until": str(START + 86400), "limit": "2"}
    token = None
    for _ in range(3):
        response = gateway.get("/admin/usage", params={**params, **({"page_token": token} if token else {})})
        assert response.status_code == 200
        seen += [g["group"] for g in response.json()["data"]]
        token = response.json()["next_page_token"]
    assert token is None
    assert seen == ["user-4", "user-3", "user-2", "user-1", "user-0"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"by": "colour"}, "by"),
        ({"by": "tag"}, "by"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"since": "1h", "until": "2h"}, "since"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_400(gateway: httpx2.Client, params: dict[str, str], param: str) -> None:
    """A bad parameter is a 400 in OpenAI's error format, naming the parameter."""
    response = gateway.get("/admin/usage", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_needs_the_admin_key(gateway: httpx2.Client) -> None:
    """Without the admin key the usage view is a 401, like every /admin route."""
    response = gateway.get("/admin/usage", headers={"authorization": "Bearer wrong"})
    assert response.status_code == 401


def test_disabled_ledger_is_404(tmp_path: Path) -> None:
    """With the ledger disabled, /admin/usage says so with a 404 instead of an empty list."""
    config = build_config(_config({"enabled": False}))
    with serve(create_app(config, environ={"BW_ADMIN": ADMIN})) as url:
        response = httpx2.get(f"{url}/admin/usage", headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert response.status_code == 404
    assert "disabled" in response.json()["error"]["message"]
