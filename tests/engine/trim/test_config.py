"""``routes.X.trim``'s checks: what a summarising trimmer needs, and where a trimmer may be."""

from __future__ import annotations

import pytest

from breakwater.core.config import ConfigError, parse_config

BASE = """
providers: {m: {type: mock}}
deployments: {d: {provider: m, model: x}}
routes:
  cheap: {deployments: [d]}
"""


def _problems(routes: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + routes, "t.yaml")
    return [str(p) for p in info.value.problems]


def test_a_trimmer_with_its_summarise_route_is_valid() -> None:
    """Both modes parse with what they need."""
    config = parse_config(
        BASE
        + "  chat: {deployments: [d], trim: {max_input_tokens: 4000, mode: summarise, summarise_route: cheap}}\n"
        + "  plain: {deployments: [d], trim: {max_input_tokens: 4000}}\n",
        "t.yaml",
    )
    trim = config.routes["plain"].trim
    assert trim is not None and trim.mode == "drop" and trim.keep_last_turns == 1


def test_summarise_mode_needs_a_known_route_other_than_itself() -> None:
    """No route, an unknown one and the route itself are each refused at their key path."""
    assert any(
        "summarise_route" in p
        for p in _problems("  a: {deployments: [d], trim: {max_input_tokens: 900, mode: summarise}}\n")
    )
    [unknown] = _problems(
        "  a: {deployments: [d], trim: {max_input_tokens: 900, mode: summarise, summarise_route: nope}}\n"
    )
    assert unknown.startswith("routes.a.trim.summarise_route") and "unknown route 'nope'" in unknown
    [itself] = _problems(
        "  a: {deployments: [d], trim: {max_input_tokens: 900, mode: summarise, summarise_route: a}}\n"
    )
    assert "its own history" in itself


def test_a_wildcard_route_cannot_trim() -> None:
    """``openai/*`` names no single model to count with: refused."""
    problems = _problems("  m/*: {provider: m, trim: {max_input_tokens: 900}}\n")
    assert any(p.startswith("routes.m/*.trim") for p in problems)
