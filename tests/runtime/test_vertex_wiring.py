"""A Vertex provider in the config: its fields checked, its credentials resolved (and hidden), its
deployments wired to the right publisher's adapter behind a bearer sender, its models priced."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

import pytest

from breakwater.core.config import ConfigError, build_config
from breakwater.core.config.paths import anchor_paths
from breakwater.core.prices import PriceBook, lookup
from breakwater.infra.clock import ManualClock, SystemRandom
from breakwater.infra.google_auth import BearerSender
from breakwater.runtime.wiring import Wiring, check_environment
from tests.server.test_vertex import service_account


def vertex_config(**provider: Any) -> dict[str, Any]:
    vertex = {"type": "vertex", "project": "harbour-prod", "location": "us-east5", **provider}
    return {
        "providers": {"vertex": vertex},
        "deployments": {
            "gemini": {"provider": "vertex", "model": "gemini-2.0-flash-001"},
            "claude": {"provider": "vertex", "model": "claude-3-5-sonnet-v2@20241022"},
        },
        "routes": {"gemini": {"deployments": ["gemini"]}, "claude": {"deployments": ["claude"]}},
    }


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_config(data)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("provider", "complaint"),
    [
        ({"project": None}, "needs 'project' and 'location'"),
        ({"location": None}, "needs 'project' and 'location'"),
        ({"api_key": "env:KEY"}, "not 'api_key'"),
        ({"credentials": '{"type": "service_account"}'}, "must be a reference"),
        ({"location": "us east"}, "location"),
    ],
)
def test_vertex_provider_fields_are_checked(provider: dict[str, Any], complaint: str) -> None:
    """A Vertex provider needs a project and a location, and takes credentials by reference only."""
    data = vertex_config(**provider)
    data["providers"]["vertex"] = {k: v for k, v in data["providers"]["vertex"].items() if v is not None}
    assert any(complaint in p and "providers.vertex" in p for p in _problems(data))


def test_vertex_fields_on_another_provider_are_refused() -> None:
    """project, location and credentials on a non-Vertex provider are an error, not ignored."""
    data = vertex_config()
    data["providers"]["other"] = {"type": "gemini", "api_key": "env:K", "project": "harbour-prod"}
    assert any("for providers of type vertex" in p for p in _problems(data))


def test_auto_prompt_cache_is_allowed_for_claude_on_vertex() -> None:
    """Automatic cache breakpoints are allowed for a Claude deployment on Vertex, not a Gemini one."""
    data = vertex_config()
    data["deployments"]["claude"]["prompt_cache"] = {"auto": True}
    build_config(data)
    data["deployments"]["gemini"]["prompt_cache"] = {"auto": True}
    assert any("deployments.gemini.prompt_cache" in p for p in _problems(data))


def test_check_environment_names_credentials_that_do_not_resolve(tmp_path: Path) -> None:
    """An unset variable, or one without a credentials JSON, is a problem at providers.<name>.credentials."""
    config = build_config(vertex_config(credentials="env:VERTEX_SA"))
    assert [str(p) for p in check_environment(config, {})] == [
        "providers.vertex.credentials: environment variable VERTEX_SA is not set"
    ]
    problems = [str(p) for p in check_environment(config, {"VERTEX_SA": "{not json"})]
    assert problems == ["providers.vertex.credentials: env:VERTEX_SA does not hold a credentials JSON document"]
    account = json.dumps(service_account("http://127.0.0.1:9/token"))
    assert check_environment(config, {"VERTEX_SA": account}) == []
    assert check_environment(build_config(vertex_config()), {}) == []  # ADC: nothing to resolve now


def _wiring(environ: dict[str, str], **provider: Any) -> Wiring:
    config = build_config(vertex_config(**provider))
    return Wiring(config, environ, sender=None, clock=ManualClock(), rng=SystemRandom(0))  # type: ignore[arg-type]


def test_deployments_get_their_publisher_adapter_and_one_token_source() -> None:
    """Each deployment gets its publisher's adapter, the location URL and a bearer sender sharing the
    provider's one token source; no credential is read while wiring (ADC here)."""
    wiring = _wiring({})
    router = wiring.router()
    gemini = router.routes["gemini"].deployments[0]
    claude = router.routes["claude"].deployments[0]
    assert (gemini.adapter.wire, claude.adapter.wire) == ("vertex-gemini", "vertex-anthropic")
    base = "https://us-east5-aiplatform.googleapis.com/v1/projects/harbour-prod/locations/us-east5"
    assert gemini.target.base_url == claude.target.base_url == base
    assert gemini.target.api_key is None
    assert isinstance(gemini.sender, BearerSender) and isinstance(claude.sender, BearerSender)
    assert list(wiring.access_tokens) == ["vertex"]
    assert wiring.access_tokens["vertex"].refreshes == 0


def test_secrets_include_the_credentials_and_their_private_key() -> None:
    """The credentials JSON and the private key inside it are given to the log redactors."""
    account = service_account("http://127.0.0.1:9/token")
    secrets = _wiring({"SA": json.dumps(account)}, credentials="env:SA").secrets()
    assert account["private_key"] in secrets
    assert json.dumps(account) in secrets


def test_vertex_models_are_priced_as_their_vendors_list_them() -> None:
    """Gemini and Claude on Vertex (claude-...@date names) find their list prices; an unknown model is unpriced."""
    wiring = _wiring({})
    assert wiring.price_host("vertex") == "vertex"
    assert wiring.unpriced(PriceBook()) == []
    claude = lookup("vertex", "claude-3-5-sonnet-v2@20241022")
    gemini = lookup("vertex", "gemini-2.0-flash-001")
    assert claude is not None and claude.input == Decimal(3) and claude.output == Decimal(15)
    assert gemini is not None and gemini.input == lookup("gemini", "gemini-2.0-flash-001").input  # type: ignore[union-attr]
    book = PriceBook()
    assert book.price_for("tuned", "vertex", "harbour-tides-tuned-7") is None
    assert book.unknown["harbour-tides-tuned-7"] == 1


def test_vertex_on_a_private_endpoint_is_still_priced() -> None:
    """A base_url (a private endpoint) keeps Vertex's list prices; the mock host is free."""
    assert _wiring({}, base_url="https://vertex.internal.example").price_host("vertex") == "vertex"
    assert _wiring({}, host="mock", base_url="http://127.0.0.1:9").price_host("vertex") == "mock"


def test_a_relative_credentials_file_is_beside_the_config() -> None:
    """``credentials: file:sa.json`` in a config file names the file beside it; env: is left as written."""
    anchored = anchor_paths(build_config(vertex_config(credentials="file:secrets/sa.json")), PurePath("/etc/bw"))
    assert anchored.providers["vertex"].credentials == "file:/etc/bw/secrets/sa.json"
    kept = anchor_paths(build_config(vertex_config(credentials="env:SA")), PurePath("/etc/bw"))
    assert kept.providers["vertex"].credentials == "env:SA"


def test_check_environment_says_how_to_install_google_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without google-auth's requests transport importable, a Vertex provider is a problem naming the extra."""
    monkeypatch.setitem(sys.modules, "google.auth.transport.requests", None)  # import raises ImportError
    assert [str(p) for p in check_environment(build_config(vertex_config()), {})] == [
        "providers.vertex.type: Vertex AI needs google-auth: pip install 'breakwater[vertex]'"
    ]
