"""The ``variants`` route option and the ``refusals`` section: every problem with its key path."""

from __future__ import annotations

import pytest

from breakwater.core.config import ConfigError, parse_config

BASE = """
providers: {m: {type: mock}}
deployments: {a: {provider: m, model: x}, b: {provider: m, model: y}}
routes:
  gpt: {deployments: [a]}
  pick: {branches: {one: {route: gpt}}, default: one}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + text, "t.yaml")
    return [str(p) for p in info.value.problems]


def test_a_valid_route_with_variants() -> None:
    """Arms name a route (a branching one too) or deployments; weight 0 turns an arm off; the
    control is the first arm unless one is marked."""
    config = parse_config(
        BASE
        + """
  chat:
    variants:
      sticky: header:X-Tenant
      arms:
        control: {route: gpt, weight: 99.9}
        canary: {deployments: [b], weight: 0.1}
        branching: {route: pick, weight: 0}
"""
    )
    variants = config.routes["chat"].variants
    assert variants is not None and variants.sticky == "header:x-tenant" and variants.control == "control"
    assert variants.arms["canary"].deployments[0].deployment == "b"


def test_a_marked_control() -> None:
    config = parse_config(
        BASE + "  chat: {variants: {arms: {a: {route: gpt, weight: 1}, b: {route: pick, weight: 1, control: true}}}}\n"
    )
    assert config.routes["chat"].variants is not None and config.routes["chat"].variants.control == "b"


@pytest.mark.parametrize(
    ("route", "problems"),
    [
        (
            "{variants: {arms: {a: {route: gpt, weight: 999.5}, b: {route: gpt, weight: 0.5}}}}",
            ["routes.chat.variants: arm(s) b: a positive weight must be at least 0.1% of the total"],
        ),
        (
            "{variants: {arms: {a: {route: gpt, weight: 0}}}}",
            ["routes.chat.variants: at least one arm needs a positive weight"],
        ),
        (
            "{variants: {arms: {a: {route: gpt, weight: -1}}}}",
            ["routes.chat.variants.arms.a.weight: Input should be greater than or equal to 0"],
        ),
        ("{variants: {arms: {a: {route: gpt}}}}", ["routes.chat.variants.arms.a.weight: required key is missing"]),
        (
            "{variants: {arms: {}}}",
            ["routes.chat.variants.arms: Dictionary should have at least 1 item after validation, not 0"],
        ),
        (
            "{variants: {sticky: cookie, arms: {a: {route: gpt, weight: 1}}}}",
            ["routes.chat.variants.sticky: expected user, key, session or header:<name>"],
        ),
        (
            "{variants: {arms: {a: {route: gpt, weight: 1, control: true}, b: {route: gpt, weight: 1, control: true}}}}",
            ["routes.chat.variants: only one arm may be the control: a, b"],
        ),
        (
            "{variants: {arms: {a: {route: gpt, deployments: [a], weight: 1}}}}",
            ["routes.chat.variants.arms.a: a branch names either a route or its deployments, not both nor neither"],
        ),
        (
            "{variants: {arms: {a: {route: nowhere, weight: 1}, b: {deployments: [nope], weight: 1}}}}",
            [
                "routes.chat.variants.arms.a.route: unknown route 'nowhere' (expected one of: chat, gpt, pick)",
                "routes.chat.variants.arms.b.deployments[0]: unknown deployment 'nope'",
            ],
        ),
        (
            "{variants: {arms: {a: {route: chat, weight: 1}}}}",
            ["routes.chat.variants.arms.a.route: route 'chat' leads back to 'chat'"],
        ),
        (
            "{deployments: [a], variants: {arms: {a: {route: gpt, weight: 1}}}}",
            ["routes.chat.deployments: a route with variants has no deployments of its own"],
        ),
        (
            "{branches: {x: {route: gpt}}, default: x, variants: {arms: {a: {route: gpt, weight: 1}}}}",
            [
                "routes.chat.branches: a route has variants or branches, not both: an arm may name a branching route",
                "routes.chat.default: a route has variants or branches, not both: an arm may name a branching route",
            ],
        ),
    ],
)
def test_variant_problems_have_key_paths(route: str, problems: list[str]) -> None:
    assert _problems(f"  chat: {route}\n") == problems


def test_a_route_with_variants_does_not_cache_itself() -> None:
    """The cache sees the arm's route (it comes after the variants stage): caching goes there."""
    assert _problems("  chat: {cache: {mode: exact}, variants: {arms: {a: {route: gpt, weight: 1}}}}\n") == [
        "routes.chat.cache: a route with variants caches through its arms' routes: set cache there"
    ]


def test_a_cycle_through_a_variant_arm() -> None:
    """A branch leading back through another route's arms is a cycle too."""
    found = _problems(
        "  chat: {variants: {arms: {a: {route: back, weight: 1}}}}\n  back: {branches: {x: {route: chat}}, default: x}\n"
    )
    assert "routes.chat.variants.arms.a.route: route 'back' leads back to 'chat'" in found
    assert "routes.back.branches.x.route: route 'chat' leads back to 'back'" in found


def test_refusal_patterns_must_compile() -> None:
    assert _problems("refusals: {patterns: {en: ['(unclosed']}}\n") == [
        "refusals.patterns: en[0]: not a regular expression: missing ), unterminated subpattern at position 0"
    ]


def test_refusal_patterns_are_lower_case() -> None:
    """The opening is lower-cased before it is searched: an upper-case letter could never match
    (an escape such as \\W is not a letter)."""
    assert _problems("refusals: {patterns: {en: ['I cannot']}}\n") == [
        "refusals.patterns: en[0]: write patterns in lower case (the answer is lower-cased before it is searched)"
    ]
    parse_config(BASE + "refusals: {patterns: {en: ['i cannot\\W']}}\n")


def test_guards_and_a_ramp() -> None:
    """Guards default to a 2-point error-rate and 5-point refusal-rate increase, latency 1.5x; a
    ramp needs guards, exactly two arms and increasing percentages."""
    config = parse_config(
        BASE
        + """
  chat:
    variants:
      arms: {control: {route: gpt, weight: 95}, canary: {deployments: [b], weight: 5}}
      guards: {max_cost_ratio: 1.3, min_requests: 50}
      ramp: {steps: [5, 25, 100], hold_s: 600}
"""
    )
    variants = config.routes["chat"].variants
    assert variants is not None and variants.guards is not None and variants.ramp is not None
    g = variants.guards
    assert (g.max_error_rate_increase, g.max_refusal_rate_increase, g.max_latency_ratio) == (0.02, 0.05, 1.5)
    assert (g.max_cost_ratio, g.min_requests, g.alpha) == (1.3, 50, 0.05)
    assert variants.ramp.steps == [5, 25, 100]

    arms = "arms: {control: {route: gpt, weight: 95}, canary: {deployments: [b], weight: 5}}"
    assert any(
        "a ramp needs guards" in p
        for p in _problems(f"  chat:\n    variants:\n      {arms}\n      ramp: {{steps: [50]}}\n")
    )
    three = "arms: {a: {route: gpt, weight: 1}, b: {route: gpt, weight: 1}, c: {route: gpt, weight: 1}}"
    assert any(
        "exactly two arms" in p
        for p in _problems(f"  chat:\n    variants:\n      {three}\n      guards: {{}}\n      ramp: {{steps: [50]}}\n")
    )
    assert any(
        "increasing" in p and "routes.chat.variants.ramp.steps" in p
        for p in _problems(
            f"  chat:\n    variants:\n      {arms}\n      guards: {{}}\n      ramp: {{steps: [50, 20]}}\n"
        )
    )
    assert any(
        "routes.chat.variants.guards.max_latency_ratio" in p
        for p in _problems(f"  chat:\n    variants:\n      {arms}\n      guards: {{max_latency_ratio: 0.5}}\n")
    )
