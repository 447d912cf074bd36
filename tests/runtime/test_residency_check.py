"""What check-config reports about data residency (``runtime/residency.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.cli.main import main
from breakwater.core.config import build_config
from breakwater.runtime.residency import residency_warnings


def _config(**routes: Any) -> dict[str, Any]:
    return {
        "providers": {
            "us": {"type": "mock", "region": "us"},
            "eu": {"type": "mock", "region": "eu-west-1", "data_terms": "EU only"},
            "plain": {"type": "mock"},
        },
        "deployments": {
            "d-us": {"provider": "us", "model": "m"},
            "d-eu": {"provider": "eu", "model": "m"},
            "d-ch": {"provider": "eu", "model": "m", "region": "ch"},
        },
        "routes": routes,
    }


def test_a_restricted_route_with_an_unreachable_fallback_and_a_deployment_it_never_uses() -> None:
    config = build_config(
        _config(
            chat={"deployments": ["d-us", "d-eu"], "allowed_regions": ["eu"], "fallbacks": {"general": ["backup"]}},
            backup={"deployments": ["d-us"]},
            nowhere={"deployments": ["d-us"], "allowed_regions": ["eu"]},
        )
    )
    found = residency_warnings(config)
    assert "route 'chat': deployment 'd-us' (region us) is outside its allowed regions (eu) and is never used" in found
    assert "route 'chat': fallback route 'backup' has no deployment in its allowed regions (eu): unreachable" in found
    assert (
        "route 'nowhere': no deployment in its allowed regions (eu): every request fails with region_unavailable"
        in found
    )


def test_tenant_restrictions_are_checked_for_each_declared_region() -> None:
    """Keys and teams live in the store: each declared region is tried as a tenant's restriction."""
    config = build_config(
        _config(
            chat={"deployments": ["d-eu"], "fallbacks": {"general": ["backup"]}, "shadow": {"route": "backup"}},
            backup={"deployments": ["d-us"]},
            fine={"deployments": ["d-eu", "d-us"], "fallbacks": {"general": ["chat"]}},
        )
    )
    found = residency_warnings(config)
    assert (
        "route 'chat': fallback route 'backup' has no deployment in a tenant restricted to eu-west-1 (eu-west-1): "
        "unreachable" in found
    )
    assert (
        "route 'chat': shadow candidate 'backup' has no deployment in a tenant restricted to eu-west-1 (eu-west-1): "
        "unreachable" in found
    )
    assert not [f for f in found if f.startswith("route 'fine'") and "eu-west-1" in f]


def test_nothing_restricted_nothing_said() -> None:
    config = build_config(
        {
            "providers": {"p": {"type": "mock"}},
            "deployments": {"d": {"provider": "p", "model": "m"}},
            "routes": {"r": {"deployments": ["d"], "fallbacks": {"general": ["s"]}}, "s": {"deployments": ["d"]}},
        }
    )
    assert residency_warnings(config) == []


def test_check_config_prints_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "breakwater.yaml"
    path.write_text(yaml.safe_dump(_config(chat={"deployments": ["d-us"], "allowed_regions": ["eu"]})))
    assert main(["check-config", str(path)]) == 0
    assert "WARNING: residency: route 'chat': no deployment in its allowed regions (eu)" in capsys.readouterr().out


def test_a_region_must_be_lower_case_words() -> None:
    with pytest.raises(Exception, match="region"):
        build_config({**_config(), "providers": {"p": {"type": "mock", "region": "EU West"}}})
