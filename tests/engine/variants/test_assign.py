"""Sticky assignment: the same subject always gets the same arm; shares follow the weights over
10k subjects (99/1 and 99.9/0.1); raising an arm's weight only moves subjects into it; routes
are independent; a request without its subject falls back to the user, the key, the request id."""

from __future__ import annotations

import asyncio
import math

import pytest

from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer
from breakwater.engine.variants.assign import Arm, Assigner
from breakwater.engine.variants.stage import Plan, VariantsStage, subject

SUBJECTS = [f"user:u{i}" for i in range(10_000)]


def _assigner(route: str = "chat", **weights: float) -> Assigner:
    return Assigner(route, tuple(Arm(name, f"route-{name}", w) for name, w in weights.items()))


def _counts(assigner: Assigner) -> dict[str, int]:
    counts = {arm.name: 0 for arm in assigner.arms}
    for s in SUBJECTS:
        counts[assigner.assign(s).name] += 1
    return counts


def test_the_same_subject_always_gets_the_same_arm() -> None:
    """Asked again (and by a new assigner built from the same config: another replica, a reload)."""
    first, again = _assigner(control=50, canary=50), _assigner(control=50, canary=50)
    for s in SUBJECTS[:500]:
        arm = first.assign(s).name
        assert first.assign(s).name == arm == again.assign(s).name


@pytest.mark.parametrize(("control", "canary"), [(99, 1), (99.9, 0.1), (50, 50)])
def test_shares_follow_the_weights_within_tolerance(control: float, canary: float) -> None:
    """Over 10k subjects the canary's count is within 4 standard deviations of its expected share."""
    counts = _counts(_assigner(control=control, canary=canary))
    share = canary / (control + canary)
    expected, sd = share * len(SUBJECTS), math.sqrt(len(SUBJECTS) * share * (1 - share))
    assert abs(counts["canary"] - expected) <= 4 * sd, counts
    assert counts["canary"] > 0


def _moves(steps: list[Assigner]) -> set[tuple[str, str]]:
    """Every (from, to) arm pair some subject moved along, step after step."""
    moves: set[tuple[str, str]] = set()
    before = {s: steps[0].assign(s).name for s in SUBJECTS}
    for assigner in steps[1:]:
        after = {s: assigner.assign(s).name for s in SUBJECTS}
        moves |= {(before[s], after[s]) for s in SUBJECTS if before[s] != after[s]}
        before = after
    return moves


def test_a_canary_raised_against_its_control_only_takes_control_subjects() -> None:
    """Two arms, 99/1 -> 95/5 -> 80/20: subjects only move from control into the canary."""
    steps = [_assigner(control=99, canary=1), _assigner(control=95, canary=5), _assigner(control=80, canary=20)]
    assert _moves(steps) == {("control", "canary")}


def test_raising_one_arm_only_moves_subjects_into_it() -> None:
    """Several arms: raising one weight (the others kept) moves subjects into that arm only, and
    lowering it moves subjects only out of it."""
    up = [_assigner(control=99, canary=1, other=10), _assigner(control=99, canary=5, other=10)]
    assert {to for _, to in _moves(up)} == {"canary"}
    assert {frm for frm, _ in _moves(up[::-1])} == {"canary"}


def test_an_arm_at_weight_zero_takes_nobody_and_moves_nobody() -> None:
    with_off = _assigner(control=90, canary=10, off=0)
    without = _assigner(control=90, canary=10)
    assert all(with_off.assign(s).name == without.assign(s).name for s in SUBJECTS[:2000])


def test_routes_are_independent() -> None:
    """The canary's subjects of one route are not the canary's of another (the route keys the hash)."""
    a, b = _assigner("chat", control=50, canary=50), _assigner("search", control=50, canary=50)
    same = sum(a.assign(s).name == b.assign(s).name for s in SUBJECTS)
    assert abs(same - len(SUBJECTS) / 2) < 4 * math.sqrt(len(SUBJECTS) / 4)


def _plan(sticky: str) -> Plan:
    return Plan("chat", sticky, _assigner(control=50, canary=50))


def _ctx(
    user: str | None = None,
    key: str | None = None,
    session: str | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> RequestContext:
    ctx = RequestContext("req-1")
    ctx.caller.user, ctx.caller.key_id, ctx.caller.session = user, key, session
    ctx.headers = headers
    return ctx


@pytest.mark.parametrize(
    ("sticky", "ctx", "body_user", "expected"),
    [
        ("user", _ctx(user="ann", key="k1"), None, "user:ann"),
        ("user", _ctx(key="k1"), "bob", "user:bob"),
        ("user", _ctx(key="k1"), None, "key:k1"),
        ("key", _ctx(user="ann", key="k1"), None, "key:k1"),
        ("key", _ctx(user="ann"), None, "user:ann"),
        ("session", _ctx(user="ann", session="s9"), None, "session:s9"),
        ("header:x-tenant", _ctx(user="ann", headers=((b"x-tenant", b"acme"),)), None, "header:x-tenant:acme"),
        ("header:x-tenant", _ctx(user="ann"), None, "user:ann"),
        ("user", _ctx(), None, "request:req-1"),
    ],
)
def test_the_subject_and_its_fallbacks(sticky: str, ctx: RequestContext, body_user: str | None, expected: str) -> None:
    assert subject(_plan(sticky), ctx, body_user) == expected


def test_the_stage_sends_the_request_to_its_arm_and_restores_the_route() -> None:
    """The inner call sees the arm's route; afterwards the request and the outcome name the route
    the client asked for, and the outcome names the arm."""
    seen: list[str] = []

    async def inner(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        seen.append(request.model)
        raise RuntimeError("upstream down")

    stage = VariantsStage({"chat": _plan("user")})
    call = stage.chat(inner)
    request = ChatRequest(model="chat", messages=[Message("user", [TextPart("hi")])])
    ctx = _ctx(user="ann")
    with pytest.raises(RuntimeError):
        asyncio.run(call(request, ctx))
    arm = ctx.outcome.variant
    assert seen == [f"route-{arm}"] and request.model == "chat" and ctx.outcome.route == "chat"
