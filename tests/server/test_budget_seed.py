"""Budgets survive a restart on the memory backend: at start-up each budget is seeded with the
spend the ledger already holds for its current period (a team's over its keys, a user's under
the ``*`` entry), and refuses accordingly."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai

from breakwater.core.config import build_config
from breakwater.engine.access.operations import AccessOperations, KeySpec, LimitsSpec, TeamSpec, parse
from breakwater.infra.clock import ManualClock
from breakwater.infra.keystore import SqliteKeyStore
from breakwater.observability.ledger import SqliteLedger
from breakwater.server.app import create_app
from tests.observability.ledger.rows import make_row
from tests.server.running import admin_http, openai_sdk, serve

WALL = 1_795_867_200.0  # 2026-11-28 12:00 UTC
SECRET = "seed-test-hash-secret-0123456789"
ADMIN = "adm-seed-2f1a"


def test_budgets_start_from_the_ledgers_spend(tmp_path: Path) -> None:
    """A key that spent $0.95 of its $1 day budget earlier today (before a restart) shows that spend
    and is refused once it reaches the cap; yesterday's spend and other keys' do not count."""
    clock = ManualClock(wall=WALL)

    async def prepare() -> tuple[str, str]:
        store = SqliteKeyStore(tmp_path / "keys.db")
        await store.open()
        admin = AccessOperations(store, SECRET.encode(), clock, routes=["fast"])
        await admin.create_team(
            parse(TeamSpec, {"name": "ops", "limits": {"budget": {"usd": "50", "period": "month"}}}), actor="t"
        )
        record, plain = await admin.create_key(
            KeySpec(
                team="ops", user="alice", limits=LimitsSpec.model_validate({"budget": {"usd": "1", "period": "day"}})
            ),
            actor="t",
        )
        await admin.set_limits(
            "user", "*", LimitsSpec.model_validate({"budget": {"usd": "10", "period": "week"}}), actor="t"
        )
        await store.close()
        ledger = SqliteLedger(tmp_path / "ledger.db")
        await ledger.open()
        rows = [
            dataclasses.replace(
                make_row(0, prefix="a"), ts=WALL - 3600, key_id=record.id, user="alice", cost_usd=Decimal("0.95")
            ),
            dataclasses.replace(
                make_row(2, prefix="b"), ts=WALL - 86400, key_id=record.id, user="alice", cost_usd=Decimal("7")
            ),
            dataclasses.replace(
                make_row(4, prefix="c"), ts=WALL - 60, key_id="key_other", user="bob", cost_usd=Decimal("3")
            ),
        ]
        await ledger.write(rows)
        await ledger.close()
        return record.id, plain

    key_id, plain = asyncio.run(prepare())
    config: dict[str, Any] = {
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"store": f"sqlite:///{tmp_path}/keys.db", "hash_secret": "env:BW_HASH"},
        "ledger": {
            "url": f"sqlite:///{tmp_path}/ledger.db",
            "spool_path": str(tmp_path / "spool"),
            "retention_days": None,
        },
        "providers": {"m": {"type": "mock"}},
        "deployments": {
            "d": {"provider": "m", "model": "mock-gpt", "price": {"input_per_mtok": "1000", "output_per_mtok": "1000"}}
        },
        "routes": {"fast": {"deployments": ["d"]}},
    }
    app = create_app(build_config(config), environ={"BW_ADMIN": ADMIN, "BW_HASH": SECRET}, clock=clock)
    with serve(app) as url:
        admin = admin_http(url, ADMIN)
        budgets = {(b["scope"], b["subject"]): b for b in admin.get("/admin/budgets").json()["data"]}
        assert budgets[("key", key_id)]["spent_usd"] == "0.95"  # today only: yesterday's $7 is another day
        assert budgets[("team", "ops")]["spent_usd"] == "7.95"  # this month, over the team's keys
        alice = admin.get("/admin/budgets", params={"scope": "user", "subject": "alice"}).json()["data"]
        assert alice[0]["spent_usd"] == "7.95"  # this week (Monday on): yesterday counts
        client = openai_sdk(url, plain)
        refused = None
        for _ in range(30):
            try:
                client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
            except openai.RateLimitError as exc:
                refused = exc
                break
        assert refused is not None and isinstance(refused.body, dict) and refused.body["code"] == "budget_exceeded"
        assert "for key bw-" in refused.body["message"]  # the key's day budget, not the user's week one
