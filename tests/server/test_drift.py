"""The drift watch end to end: the mock's scripted answers degrade over (injected) time; requests
through the official OpenAI SDK, plain and streamed, are graded off the path; the score drop
raises one ``quality_drop`` alert per crossing (webhook and log), a second only after recovery and
a new drop; ``/metrics`` and ``/admin/drift`` show the score; the eval score table holds scores
and nothing of the content."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import httpx2
import pytest

from breakwater.core.config import build_config
from breakwater.infra.clock import ManualClock
from breakwater.server.app import BreakwaterApp, create_app
from tests.polling import until
from tests.server.running import openai_sdk, serve

#: in every prompt: must never reach the database (capture is off on the route)
MARKER = "zq-marker-7731 jane.doe@example.com"
GOOD = "Paris is the capital of France."
ANSWERS = [{"matches": "good", "text": GOOD}, {"text": "I do not know."}]


def _config(tmp: Path) -> dict[str, Any]:
    return {
        "access": {"enabled": False},
        "alerts": {"webhook": "env:HOOK"},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {"m": {"type": "mock", "answers": ANSWERS}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {
            "chat": {
                "deployments": ["d"],
                "drift": {
                    "share": 1.0,
                    "asserts": [{"type": "icontains", "value": "paris"}],
                    "window_s": 60,
                    "baseline_s": 60,
                    "margin": 0.2,
                    "min_samples": 3,
                },
            },
            "plain": {"deployments": ["d"]},
        },
    }


def _scores(tmp: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(tmp / "ledger.db")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM breakwater_eval_scores ORDER BY rowid")]
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def test_a_degrading_route_alerts_once_per_crossing(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    """Good answers, then bad ones an injected minute later: one alert; recovery clears it without
    an alert; a new drop alerts again. The answers reach the SDK untouched; scores are stored."""
    hook, received = webhook
    clock = ManualClock(wall=1_800_000_000.0)
    app = create_app(build_config(_config(tmp_path)), environ={"HOOK": hook}, clock=clock)
    sent = 0
    caplog.set_level(logging.WARNING, logger="breakwater.alerts")

    with serve(app) as url:
        client = openai_sdk(url)

        def phase(good: bool, count: int) -> None:
            """``count`` requests (every other one streamed), then wait until each score is stored."""
            nonlocal sent
            prompt = f"{'good' if good else 'bad'} question {MARKER}"
            for i in range(count):
                messages = [{"role": "user", "content": prompt}]
                if i % 2:
                    chunks = client.chat.completions.create(model="chat", messages=messages, stream=True)
                    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                else:
                    text = client.chat.completions.create(model="chat", messages=messages).choices[0].message.content
                assert (text == GOOD) is good  # the caller's answer, untouched
            sent += count
            until(lambda: len(_scores(tmp_path)) == sent, 10, f"{sent} eval scores are stored")

        client.chat.completions.create(model="plain", messages=[{"role": "user", "content": "bad"}])  # not watched
        phase(good=True, count=4)  # the baseline
        clock.advance(60)
        phase(good=False, count=5)  # the drop: alerts once, at the third bad sample
        assert _delivered(app) == 1
        until(lambda: len(received) == 1, 10, "the webhook got the alert")
        clock.advance(60)
        phase(good=True, count=4)  # recovered against the bad baseline: cleared, no alert
        assert _delivered(app) == 1
        status = httpx2.get(f"{url}/admin/drift", timeout=10).json()["data"][0]
        assert (status["route"], status["current"], status["baseline"], status["alerting"]) == ("chat", 1.0, 0.0, False)
        clock.advance(60)
        phase(good=False, count=4)  # a new drop: a second alert
        assert _delivered(app) == 2
        until(lambda: len(received) == 2, 10, "the webhook got the second alert")

        status = httpx2.get(f"{url}/admin/drift", timeout=10).json()["data"][0]
        assert (status["current"], status["baseline"], status["samples"], status["baseline_samples"]) == (
            0.0, 1.0, 4, 4
        )  # fmt: skip
        assert status["alerting"] is True and status["scored"] == 17 and status["dropped"] == 0
        assert httpx2.get(f"{url}/admin/drift", params={"route": "plain"}, timeout=10).status_code == 404
        assert httpx2.get(f"{url}/admin/drift", params={"routes": "chat"}, timeout=10).status_code == 400
        metrics = httpx2.get(f"{url}/metrics", timeout=10).text
        assert 'breakwater_eval_score{route="chat"} 0.0' in metrics
        assert 'breakwater_eval_baseline_score{route="chat"} 1.0' in metrics
        assert 'breakwater_eval_samples_total{result="scored",route="chat"} 17.0' in metrics
        assert 'breakwater_eval_alerting{route="chat"} 1.0' in metrics

    alerts = [body["alert"] for body in received]
    assert [(a["rule"], a["subject"]) for a in alerts] == [("quality_drop", "chat")] * 2
    assert alerts[0]["value"] == 0.0 and alerts[0]["baseline"] == 1.0 and alerts[0]["threshold"] == 0.8
    assert "route 'chat'" in received[0]["text"]
    assert [r.getMessage() for r in caplog.records if "quality_drop" in r.getMessage()] == [
        f"alert quality_drop: {a['message']}" for a in alerts
    ]

    scores = _scores(tmp_path)
    assert set(scores[0]) == {"request_id", "ts", "route", "score", "passed", "failed"}
    assert [s["score"] for s in scores] == [1.0] * 4 + [0.0] * 5 + [1.0] * 4 + [0.0] * 4
    assert scores[5]["failed"] == '["icontains"]' and scores[0]["failed"] == "[]"
    db = sqlite3.connect(tmp_path / "ledger.db")
    try:
        ids = {r[0] for r in db.execute("SELECT request_id FROM breakwater_ledger WHERE route = 'chat'")}
        assert {s["request_id"] for s in scores} == ids  # joined to the ledger rows by request id
        assert db.execute("SELECT count(*) FROM breakwater_ledger WHERE prompt IS NOT NULL").fetchone()[0] == 0
    finally:
        db.close()
    for file in tmp_path.glob("ledger.db*"):  # the database and its WAL: nothing of the content
        data = file.read_bytes()
        assert b"zq-marker-7731" not in data and b"jane.doe" not in data and GOOD.encode() not in data


def _delivered(app: BreakwaterApp) -> int:
    """Alerts the runtime's outbox has raised (logged at once, posted in the background)."""
    return app.runtime.outbox.delivered
