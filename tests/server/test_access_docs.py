"""docs/access.md is true: its config validates, and the error codes and metric names it lists are
the ones the code uses."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from breakwater.core.config import build_config

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "access.md").read_text(encoding="utf-8")
SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src" / "breakwater").rglob("*.py"))


def test_the_config_example_validates() -> None:
    """The access, limits and redis example builds, with the route limits and max_tokens guard it shows."""
    block = re.findall(r"```yaml\n(.*?)```", DOC, flags=re.DOTALL)[0]
    data = yaml.safe_load(block)
    data["providers"] = {"openai": {"type": "openai", "host": "openai", "api_key": "env:OPENAI_API_KEY"}}
    data["deployments"] = {"gpt-4o-mini": {"provider": "openai", "model": "gpt-4o-mini"}}
    config = build_config(data)
    assert config.limits.backend == "redis" and config.redis is not None
    route = config.routes["fast"]
    assert route.limits is not None and route.limits.rpm == 600
    assert route.max_tokens is not None and route.max_tokens.cap == 4096


def test_every_documented_error_code_exists() -> None:
    """Each code in the errors table is raised somewhere in the code."""
    table = DOC.split("## Errors", 1)[1].split("## Metrics", 1)[0]
    codes = set(re.findall(r"`([a-z_]+)`", table)) - {"requests", "tokens", "param", "model", "rate_limit_error"}
    codes -= {"invalid_request_error", "authentication_error", "permission_error", "insufficient_quota", "api_error"}
    codes -= {"service_unavailable_error", "max_tokens"}
    assert codes, "the table lists codes"
    missing = sorted(c for c in codes if f'"{c}"' not in SOURCE)
    assert not missing, f"documented but never raised: {missing}"


def test_every_documented_metric_exists() -> None:
    """Each metric in the metrics table is exported (counters gain _total when rendered)."""
    table = DOC.split("## Metrics", 1)[1].split("## Runbook", 1)[0]
    for name in re.findall(r"`(breakwater_[a-z_]+)", table):
        assert f'"{name.removesuffix("_total")}"' in SOURCE, name
