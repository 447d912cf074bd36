"""The gatekeeper loads a model's encoding before a reservation that counts tokens, and only then."""

from __future__ import annotations

from decimal import Decimal

import pytest

from breakwater.core.config import build_config
from breakwater.core.keys import VirtualKey
from breakwater.core.limits import Budget, Limits
from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.engine.access.gatekeeper import Gatekeeper
from breakwater.engine.context import RequestContext
from breakwater.engine.limits.checks import Sessions
from breakwater.engine.limits.quota import Quota
from breakwater.infra.clock import ManualClock
from breakwater.infra.counters import MemoryCounters
from breakwater.runtime.wiring import Wiring


class RecordingTokens:
    """Counts four bytes a token; records which models had their encoding loaded."""

    def __init__(self) -> None:
        self.loaded: list[tuple[str | None, str]] = []

    def count(self, provider: str | None, model: str, text: str) -> int:
        return len(text.encode()) // 4

    async def load(self, provider: str | None, model: str) -> None:
        self.loaded.append((provider, model))

    def decode(self, ids: list[int]) -> str:
        raise ValueError("not used")


@pytest.mark.parametrize(
    ("limits", "loads"),
    [
        (Limits(), False),
        (Limits(rpm=100, max_concurrent=5), False),
        (Limits(tpm=100_000), True),
        (Limits(budget=Budget(Decimal("10"))), True),
    ],
)
async def test_a_reservation_that_counts_tokens_loads_the_encoding_first(limits: Limits, loads: bool) -> None:
    """A key with a tpm limit or a budget makes the first request wait for its model's encoding;
    a key with no limits, or only request and concurrency limits, never loads one."""
    gate, tokens, model = _gatekeeper(Sessions())
    ctx = RequestContext("t")
    ctx.caller.key = VirtualKey(id="k1", prefix="bw-abcdefgh", hash="h", limits=limits)
    await gate.admit_chat(ctx, ChatRequest(model="r", messages=[Message("user", [TextPart("hello")])]))
    assert tokens.loaded == ([model] if loads else [])


@pytest.mark.parametrize(
    ("sessions", "loads"), [(Sessions(max_calls=3), False), (Sessions(max_spend_usd=Decimal("1")), True)]
)
async def test_a_session_loads_the_encoding_only_when_its_spend_is_capped(sessions: Sessions, loads: bool) -> None:
    gate, tokens, model = _gatekeeper(sessions)
    ctx = RequestContext("t")
    ctx.caller.session = "s1"
    await gate.admit_chat(ctx, ChatRequest(model="r", messages=[Message("user", [TextPart("hello")])]))
    assert tokens.loaded == ([model] if loads else [])


def _gatekeeper(sessions: Sessions) -> tuple[Gatekeeper, RecordingTokens, tuple[str | None, str]]:
    """A gatekeeper over one gpt-4o route, its recording tokens, and the model it would load."""
    config = build_config(
        {
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "gpt-4o"}},
            "routes": {"r": {"deployments": ["d"]}},
        }
    )
    clock = ManualClock()
    router = Wiring(config, {}, sender=None, clock=clock, rng=None).router()  # type: ignore[arg-type]
    tokens = RecordingTokens()
    gate = Gatekeeper(router, Quota(MemoryCounters(), clock, sessions=sessions), None, tokens=tokens)
    return gate, tokens, (router.routes["r"].deployments[0].target.provider, "gpt-4o")
