"""A branching route's baseline (``runtime/branching.baseline_of``): the branch its savings are
counted against, and the deployment that branch is priced at."""

from __future__ import annotations

from typing import Any

from breakwater.core.config import build_config
from breakwater.engine.context import Baseline
from breakwater.runtime.branching import baseline_of


def _config(routes: dict[str, Any]) -> Any:
    return build_config(
        {
            "providers": {"m": {"type": "mock"}, "o": {"type": "openai", "host": "openai", "api_key": "env:NONE"}},
            "deployments": {
                "small": {"provider": "m", "model": "mock-small"},
                "big": {"provider": "m", "model": "mock-big"},
                "gpt": {"provider": "o", "model": "gpt-4o"},
            },
            "routes": {"small": {"deployments": ["small"]}, "big": {"deployments": ["big", "small"]}, **routes},
        }
    )


BRANCHES = {"cheap": {"route": "small"}, "strong": {"route": "big"}, "own": {"deployments": ["gpt", "big"]}}


def test_the_baseline_is_named_or_the_strongest_choice() -> None:
    """``baseline`` when set; else a cascade's last step, else ``default``; priced at the branch's
    first deployment, its own or its route's."""
    config = _config(
        {
            "named": {"branches": BRANCHES, "default": "cheap", "baseline": "own"},
            "ruled": {"branches": BRANCHES, "default": "strong"},
            "cascaded": {"branches": BRANCHES, "cascade": {"steps": ["cheap", "strong"], "checks": {}}},
        }
    )
    assert baseline_of(config, "named") == Baseline("own", "gpt", "o", "gpt-4o")
    assert baseline_of(config, "ruled") == Baseline("strong", "big", "m", "mock-big")
    assert baseline_of(config, "cascaded") == Baseline("strong", "big", "m", "mock-big")
    assert baseline_of(config, "small") is None  # not a branching route
    assert baseline_of(config, "nowhere") is None


def test_a_baseline_through_another_branching_route_takes_its_baseline() -> None:
    """A baseline branch whose route branches too is priced at that route's baseline."""
    config = _config(
        {
            "inner": {"branches": BRANCHES, "default": "cheap", "baseline": "strong"},
            "outer": {"branches": {"via": {"route": "inner"}, "cheap": {"route": "small"}}, "default": "via"},
        }
    )
    assert baseline_of(config, "outer") == Baseline("via", "big", "m", "mock-big")
