"""The trim stage as the runtime builds it (runtime/trimming.py): which routes get a plan, and
the tokenizer each counts with."""

from __future__ import annotations

from breakwater.core.config import build_config
from breakwater.runtime.process import Process
from breakwater.runtime.runtime import Runtime


def test_a_route_with_variants_trims_through_its_arms() -> None:
    """The variants stage hands requests to the arms' routes before trimming: they get the route's
    plan, unless an arm's route trims on its own; each plan counts with its route's first model."""
    config = build_config(
        {
            "ledger": {"enabled": False},
            "access": {"enabled": False},
            "providers": {"m": {"type": "mock"}},
            "deployments": {"a": {"provider": "m", "model": "gpt-4o"}, "b": {"provider": "m", "model": "gpt-4o-mini"}},
            "routes": {
                "own": {"deployments": ["b"], "trim": {"max_input_tokens": 500}},
                "chat": {
                    "trim": {"max_input_tokens": 1000, "keep_last_turns": 3},
                    "variants": {"arms": {"control": {"deployments": ["a"], "weight": 90}, "canary": {"route": "own", "weight": 10}}},
                },
                "plain": {"deployments": ["a"]},
            },
        }
    )  # fmt: skip
    runtime = Runtime(config, Process({}))
    trim = runtime.trim
    assert trim is not None and runtime.pipeline is not None
    assert sorted(trim.plans) == ["chat", "chat.control", "own"]
    assert trim.plans["chat.control"].keep_last_turns == 3 and trim.plans["own"].max_input_tokens == 500
    assert trim.counted == {("m", "gpt-4o"), ("m", "gpt-4o-mini")}
