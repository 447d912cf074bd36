"""The canary gate's in-server target: an arm of a route with variants asked through its target
route (a route of its own, or the arm's hidden route), its pinned prompt version rendered, each
call a ledger row of user breakwater:eval-gate on the route with the arm in ``variant``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from breakwater.core.config import build_config
from breakwater.observability.ledger.row import LedgerRow
from breakwater.runtime.eval_gate import USER, ArmTarget
from breakwater.server.app import BreakwaterApp, create_app

ASK: dict[str, Any] = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}


def gateway(tmp: Path) -> BreakwaterApp:
    config = {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool")},
        "providers": {
            "good": {"type": "mock", "answers": [{"text": "Paris."}]},
            "bad": {"type": "mock", "answers": [{"text": "Lyon, I think."}]},
        },
        "deployments": {"g": {"provider": "good", "model": "mock-1"}, "b": {"provider": "bad", "model": "mock-1"}},
        "prompts": {"greet": {"versions": {1: {"messages": [{"role": "system", "content": "Be brief."}]}}}},
        "routes": {
            "stable": {"deployments": ["g"]},
            "chat": {
                "variants": {
                    "arms": {
                        "control": {"route": "stable", "weight": 90},
                        "canary": {"deployments": ["b"], "weight": 10, "prompt": "greet@1"},
                    }
                }
            },
        },
    }
    return create_app(build_config(yaml.safe_load(yaml.safe_dump(config))), environ={})


async def test_each_arm_answers_from_its_own_target_and_is_recorded(tmp_path: Path) -> None:
    app = gateway(tmp_path)
    rows: list[LedgerRow] = []
    await app.startup()
    try:
        runtime = app.runtimes.current
        recording = next(s for s in runtime.pipeline.stages if s.name == "recording")
        recording.recorder.also(rows.append)  # type: ignore[attr-defined]
        control, canary = ArmTarget(runtime, "chat", "control"), ArmTarget(runtime, "chat", "canary")
        good, bad = await control.ask(ASK), await canary.ask({**ASK, "stream": True})
        invalid = await canary.ask({"messages": []})
    finally:
        await app.shutdown()
    assert good.output is not None and good.output.text == "Paris."
    assert bad.output is not None and bad.output.text == "Lyon, I think."  # a whole answer, though a stream was asked
    assert bad.output.prompt == "user: What is the capital of France?" and good.output.cost_usd == 0.0
    assert invalid.output is None and invalid.status == 400 and "messages" in (invalid.error or "")
    assert canary.label == "chat/canary"
    assert [(r.route, r.variant, r.user, r.tags, r.deployment) for r in rows] == [
        ("chat", "control", USER, {"eval": "gate"}, "g"),
        ("chat", "canary", USER, {"eval": "gate"}, "b"),
    ]
    assert (rows[0].prompt_name, rows[1].prompt_name, rows[1].prompt_version) == (None, "greet", 1)
