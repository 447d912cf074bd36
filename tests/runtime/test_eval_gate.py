"""The canary gate's in-server target: an arm of a route with variants asked through its target
route (a route of its own, or the arm's hidden route), its pinned prompt version rendered, each
call a ledger row of user breakwater:eval-gate on the route with the arm in ``variant``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from breakwater.core.config import build_config
from breakwater.core.config.rollout import EvalGate
from breakwater.observability.ledger.row import LedgerRow
from breakwater.runtime.eval_gate import USER, ArmTarget, read_gate
from breakwater.runtime.runtime import Runtime
from breakwater.server.app import BreakwaterApp, create_app

ASK: dict[str, Any] = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}


def gateway(tmp: Path, **extra: Any) -> BreakwaterApp:
    config: dict[str, Any] = {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool")},
        "providers": {
            "good": {"type": "mock", "answers": [{"text": "Paris."}]},
            "bad": {"type": "mock", "answers": [{"text": "Lyon, I think."}]},
            "strict": {
                "type": "mock",
                "answers": [
                    {"text": '{"reason": "right", "pass": true, "score": 1}', "matches": "Output:\\nParis"},
                    {"text": '{"reason": "wrong city", "pass": false, "score": 0}'},
                ],
            },
        },
        "deployments": {
            "g": {"provider": "good", "model": "mock-1"},
            "b": {"provider": "bad", "model": "mock-1"},
            "j": {"provider": "strict", "model": "mock-1"},
        },
        "prompts": {"greet": {"versions": {1: {"messages": [{"role": "system", "content": "Be brief."}]}}}},
        "routes": {
            "stable": {"deployments": ["g"]},
            "judge": {"deployments": ["j"]},
            "chat": {
                "variants": {
                    "arms": {
                        "control": {"route": "stable", "weight": 90, "control": True},
                        "canary": {"deployments": ["b"], "weight": 10, "prompt": "greet@1"},
                    }
                }
            },
        },
    }
    config.update(extra)
    return create_app(build_config(yaml.safe_load(yaml.safe_dump(config))), environ={})


@contextlib.asynccontextmanager
async def running(tmp: Path, rows: list[LedgerRow]) -> AsyncIterator[Runtime]:
    """The gateway started, each ledger row it records appended to ``rows``; its runtime."""
    app = gateway(tmp)
    await app.startup()
    try:
        runtime = app.runtimes.current
        recording = next(s for s in runtime.pipeline.stages if s.name == "recording")
        recording.recorder.also(rows.append)  # type: ignore[attr-defined]
        yield runtime
    finally:
        await app.shutdown()


async def test_each_arm_answers_from_its_own_target_and_is_recorded(tmp_path: Path) -> None:
    rows: list[LedgerRow] = []
    async with running(tmp_path, rows) as runtime:
        control, canary = ArmTarget(runtime, "chat", "control"), ArmTarget(runtime, "chat", "canary")
        good, bad = await control.ask(ASK), await canary.ask({**ASK, "stream": True})
        invalid = await canary.ask({"messages": []})
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


SUITE = """
prompts: ["What is the capital of {{ country }}?"]
defaultTest:
  options: {provider: "breakwater:judge"}
tests:
  - vars: {country: France}
    assert: [{type: llm-rubric, value: names the right capital}]
  - vars: {country: France}
    description: polite
    assert: [{type: not-icontains, value: "as an AI"}]
"""


async def test_the_gate_reads_the_suite_on_both_arms_with_its_judge_route(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    rows: list[LedgerRow] = []
    async with running(tmp_path, rows) as runtime:
        suite = str(tmp_path / "suite.yaml")
        strict = await read_gate(runtime, "chat", "canary", EvalGate(suite=suite))
        lenient = await read_gate(runtime, "chat", "canary", EvalGate(suite=suite, max_drop=0.5, min_pass_rate=0.5))
        floor = await read_gate(runtime, "chat", "canary", EvalGate(suite=suite, max_drop=1, min_pass_rate=0.9))
    assert (strict.passed, strict.canary, strict.control) == (False, 0.5, 1.0)
    assert strict.message == "eval suite suite.yaml: pass rate 0.500 more than 0 under the control's 1.000"
    assert lenient.passed and lenient.message == "eval suite suite.yaml: pass rate 0.500 (control 1.000)"
    assert not floor.passed and floor.message == "eval suite suite.yaml: pass rate 0.500 under 0.9"
    judged = [r for r in rows if r.route == "judge"]
    assert len(judged) == 6 and {(r.user, r.tags["eval"]) for r in judged} == {(USER, "judge")}
    assert len([r for r in rows if r.route == "chat"]) == 12  # 2 cases x 2 arms x 3 reads
