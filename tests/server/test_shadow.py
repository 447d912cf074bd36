"""Shadow traffic end to end: requests through the official OpenAI SDK (plain and streamed) on
a shadowed route are mirrored to a candidate route; each candidate call is a ledger row naming
the request it mirrors and how the answers compared; the admin API and ``breakwater shadow
report`` read the pairs back; a candidate that stalls never holds the caller."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from breakwater.cli.main import main
from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.polling import until
from tests.server.running import openai_sdk, serve

PARIS = "Paris is the capital of France."
ANSWERS = [
    {"model": "mock-prod", "text": PARIS},
    {"model": "mock-next", "matches": "(?i)france", "text": "paris is the capital   of France."},
    {"model": "mock-next", "text": "I do not know."},
]


def _config(tmp: Path) -> dict[str, Any]:
    price = {"input_per_mtok": "1", "output_per_mtok": "2"}
    return {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {
            "m": {"type": "mock", "answers": ANSWERS},
            "stuck": {"type": "mock", "faults": [{"fault": "latency=600000"}]},
        },
        "deployments": {
            "prod": {"provider": "m", "model": "mock-prod", "price": price},
            "next": {"provider": "m", "model": "mock-next", "price": {"input_per_mtok": "3", "output_per_mtok": "4"}},
            "stuck": {
                "provider": "stuck",
                "model": "mock-next",
                "timeouts": {"total": 900, "first_token": 900, "idle": 900},
            },
        },
        "routes": {
            "prod": {"deployments": ["prod"], "shadow": {"route": "next", "similarity": True}},
            "next": {"deployments": ["next"]},
            "held": {"deployments": ["prod"], "shadow": {"route": "stuck", "queue": 2, "concurrency": 1}},
            "stuck": {"deployments": ["stuck"], "retry": {"max_attempts": 1}},
        },
    }


def _rows(tmp: Path, where: str) -> list[dict[str, Any]]:
    path = tmp / "ledger.db"
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(f"SELECT * FROM breakwater_ledger WHERE {where}")]
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def test_a_shadowed_route_mirrors_plain_and_streamed_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    with serve(create_app(build_config(config))) as url:
        client = openai_sdk(url)
        first = client.chat.completions.with_raw_response.create(
            model="prod", messages=[{"role": "user", "content": "What is the capital of France?"}]
        )
        assert first.parse().choices[0].message.content == PARIS  # the caller gets the primary's answer
        chunks = list(
            client.chat.completions.create(
                model="prod", messages=[{"role": "user", "content": "Name a city."}], stream=True
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == PARIS
        until(lambda: len(_rows(tmp_path, "shadow_of IS NOT NULL")) == 2, 10, "both candidate calls are in the ledger")
        primary = _rows(tmp_path, f"request_id = '{first.headers['x-request-id']}'")[0]
        assert primary["route"] == "prod" and primary["shadow_of"] is None

        pairs = {r["shadow_of"]: r for r in _rows(tmp_path, "shadow_of IS NOT NULL")}
        mirror = pairs[first.headers["x-request-id"]]
        assert (mirror["route"], mirror["user"], mirror["status"]) == ("next", "breakwater:shadow", 200)
        assert mirror["shadow_exact"] == 1  # the same answer but for case and spacing
        assert mirror["shadow_similarity"] > 0.8  # embedded by the bundled local model
        assert mirror["cost_usd"] is not None and mirror["stream"] == 0
        other = next(r for k, r in pairs.items() if k != first.headers["x-request-id"])
        assert other["shadow_exact"] == 0  # "I do not know."
        assert other["shadow_similarity"] < mirror["shadow_similarity"]

        admin = httpx2.get(f"{url}/admin/shadow", params={"route": "prod"}, timeout=10).json()
        assert (admin["pairs"], admin["candidates"], admin["exact_agreement"]) == (2, ["next"], 0.5)
        assert admin["candidate_errors"] == 0 and admin["complete"] is True
        assert admin["similarity_measured"] == 2
        assert admin["primary"]["cost_per_request_usd"] is not None
        assert admin["candidate"]["latency_p50_ms"] is not None
        assert httpx2.get(f"{url}/admin/shadow", timeout=10).status_code == 400
        metrics = httpx2.get(f"{url}/metrics", timeout=10).text
        assert 'breakwater_shadow_requests_total{result="mirrored",route="prod"} 2.0' in metrics

    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["shadow", "report", "prod", "--config", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["pairs"], report["exact_agreement"]) == (2, 0.5)
    assert main(["shadow", "report", "prod", "--config", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Shadow of route prod -> next: 2 pairs" in text and "exact agreement         50.0%" in text


def test_a_stalled_candidate_never_holds_the_caller(tmp_path: Path) -> None:
    """The candidate never answers: every caller is answered all the same; the queue fills and
    further mirrors are dropped, counted."""
    app = create_app(build_config(_config(tmp_path)))
    with serve(app) as url:
        client = openai_sdk(url)
        for i in range(5):
            answer = client.chat.completions.create(model="held", messages=[{"role": "user", "content": f"q{i}"}])
            assert answer.choices[0].message.content == PARIS
        stage = app.runtime.shadow
        assert stage is not None
        # one mirror with the stuck candidate, two queued, two dropped; no candidate row yet
        until(lambda: stage.queued("held") == 2, 10, "two mirrors wait in the queue")
        assert stage.counts.mirrored == {"held": 3} and stage.counts.dropped == {"held": 2}
        assert _rows(tmp_path, "shadow_of IS NOT NULL") == []
        metrics = httpx2.get(f"{url}/metrics", timeout=10).text
        assert 'breakwater_shadow_requests_total{result="dropped",route="held"} 2.0' in metrics
        assert 'breakwater_shadow_queue_depth{route="held"} 2.0' in metrics
    # stopping the gateway cut the stuck call short: its row says so, the queued ones were dropped
    rows = _rows(tmp_path, "shadow_of IS NOT NULL")
    assert len(rows) == 1 and rows[0]["status"] == 499
    assert stage.counts.dropped == {"held": 4}
