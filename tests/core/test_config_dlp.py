"""``routes.X.dlp`` and ``providers.X.dlp``: defaults, and a mistake reported with its path."""

from __future__ import annotations

from typing import Any

import pytest

from breakwater.core.config import ConfigError, build_config


def _config(route: dict[str, Any] | None = None, provider: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "providers": {"m": {"type": "mock", **({} if provider is None else {"dlp": provider})}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"chat": {"deployments": ["d"], **({} if route is None else {"dlp": route})}},
    }


def test_defaults() -> None:
    """A route's dlp logs every kind unless told otherwise; a provider's defers to the route."""
    config = build_config(_config({}, {}))
    route, provider = config.routes["chat"].dlp, config.providers["m"].dlp
    assert route is not None and route.action == "log" and route.kinds == {}
    assert provider is not None and provider.action is None and provider.kinds == {}
    assert build_config(_config()).routes["chat"].dlp is None


@pytest.mark.parametrize(
    ("route", "provider", "where"),
    [
        ({"kinds": {"passport": "block"}}, None, "routes.chat.dlp.kinds"),
        ({"action": "encrypt"}, None, "routes.chat.dlp.action"),
        (None, {"kinds": {"email": "hide"}}, "providers.m.dlp.kinds"),
    ],
)
def test_an_unknown_kind_or_action_is_refused_with_its_path(
    route: dict[str, Any] | None, provider: dict[str, Any] | None, where: str
) -> None:
    """Kinds and actions are closed lists: a typo is a config error naming where it is."""
    with pytest.raises(ConfigError) as info:
        build_config(_config(route, provider))
    assert any(where in str(p) for p in info.value.problems), info.value.problems
