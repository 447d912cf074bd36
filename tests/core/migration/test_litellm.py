"""A LiteLLM proxy config converted to a Breakwater config, and the list of what did not carry over."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.cli.main import main
from breakwater.core.config import build_config
from breakwater.core.migration.litellm import convert
from tests.server.test_vertex import service_account

FIXTURE = Path(__file__).parents[2] / "data" / "litellm" / "proxy_config.yaml"
ENV = {"AZURE_US_API_BASE": "https://contoso-us.openai.azure.com"}


def _fixture() -> Any:
    return yaml.safe_load(FIXTURE.read_text())


def test_a_realistic_config_converts_to_one_build_config_accepts() -> None:
    """Six providers' entries, load-balanced groups and fallbacks become a valid config."""
    conversion = convert(_fixture(), ENV)
    config = build_config(conversion.config)
    assert {name: (p.type, p.host) for name, p in config.providers.items()} == {
        "azure": ("openai", "azure"),
        "azure-2": ("openai", "azure"),
        "openai": ("openai", "openai"),
        "anthropic": ("anthropic", None),
        "bedrock": ("bedrock", None),
        "vertex-ai": ("vertex", None),
        "ollama": ("openai", "ollama"),
        "openai-2": ("openai", "openai"),
    }
    assert config.providers["azure"].base_url == "https://contoso-eu.openai.azure.com"
    assert config.providers["azure-2"].base_url == "https://contoso-us.openai.azure.com"
    assert config.providers["azure"].api_key == "env:AZURE_EU_API_KEY"
    assert config.providers["ollama"].base_url == "http://gpu-1.internal:11434/v1"
    aws = config.providers["bedrock"].aws
    assert aws is not None and (aws.region, aws.access_key_id) == ("us-west-2", "env:AWS_ACCESS_KEY_ID")
    vertex = config.providers["vertex-ai"]
    assert (vertex.project, vertex.location, vertex.credentials) == (
        "acme-ml-prod",
        "us-east5",
        "file:/secrets/vertex.json",
    )
    # the load-balanced group: weighted by rpm, each Azure region and OpenAI a deployment
    gpt = config.routes["gpt-4o"]
    assert gpt.strategy == "weighted"
    assert [(t.deployment, t.weight) for t in gpt.deployments] == [
        ("gpt-4o-eu", 600),
        ("gpt-4o", 300),
        ("gpt-4o-openai", 100),
    ]
    assert (gpt.retry.max_attempts, gpt.timeouts and gpt.timeouts.total) == (3, 60)
    assert gpt.unsupported_params == "drop"
    assert gpt.fallbacks.general == ["claude-sonnet"]
    # LiteLLM's order: becomes an ordered route over three providers
    claude = config.routes["claude-sonnet"]
    assert claude.strategy == "ordered"
    assert [t.deployment for t in claude.deployments] == [
        "claude-sonnet",
        "claude-sonnet-bedrock",
        "claude-sonnet-vertex-ai",
    ]
    assert config.deployments["claude-sonnet-bedrock"].model == "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert config.deployments["claude-sonnet-vertex-ai"].model == "claude-sonnet-4-5@20250929"
    assert claude.fallbacks.general == ["gpt-4o"]
    assert claude.fallbacks.content_filter == ["gpt-4o"]
    assert config.routes["gpt-4o-mini"].fallbacks.context_window == ["gemini-flash"]
    # timeouts, limits of the model and prices per token
    timeouts = config.deployments["gpt-4o-openai"].timeouts
    assert timeouts is not None and (timeouts.total, timeouts.first_token) == (120, 20)
    flash = config.deployments["gemini-flash"]
    assert (flash.context_window, flash.max_output_tokens) == (1048576, 65536)
    price = config.deployments["llama-local"].price
    assert price is not None and (str(price.input_per_mtok), str(price.output_per_mtok)) == ("0.1", "0.4")
    assert config.routes["openai/*"].provider == "openai"
    assert "sagemaker-llama" not in config.routes


def test_the_unmapped_list_names_every_key_path_left_behind() -> None:
    """Each key that did not carry over is one line with its LiteLLM key path."""
    notes = {(n.path, n.kind) for n in convert(_fixture(), ENV).notes}
    assert notes == {
        ("model_list[0].litellm_params.rpm", "approximated"),
        ("model_list[1].litellm_params.api_base", "approximated"),
        ("model_list[1].litellm_params.rpm", "approximated"),
        ("model_list[2].litellm_params.rpm", "approximated"),
        ("model_list[3].litellm_params.temperature", "unmapped"),
        ("model_list[9].litellm_params.api_key", "unmapped"),
        ("model_list[9].model_info.base_model", "unmapped"),
        ("model_list[11].litellm_params.model", "unmapped"),
        ("router_settings.routing_strategy", "approximated"),
        ("router_settings.fallbacks[1].claude-sonnet", "unmapped"),
        ("router_settings.allowed_fails", "unmapped"),
        ("router_settings.cooldown_time", "unmapped"),
        ("router_settings.redis_host", "unmapped"),
        ("router_settings.redis_port", "unmapped"),
        ("router_settings.redis_password", "unmapped"),
        ("litellm_settings.success_callback", "unmapped"),
        ("litellm_settings.cache", "unmapped"),
        ("litellm_settings.cache_params", "unmapped"),
        ("general_settings.master_key", "unmapped"),
        ("general_settings.database_url", "unmapped"),
        ("environment_variables.LANGFUSE_HOST", "unmapped"),
    }


def test_an_inline_key_becomes_a_reference_and_is_never_written() -> None:
    """An api_key written in the LiteLLM file is replaced by env:NAME; the value appears nowhere."""
    conversion = convert(_fixture(), ENV)
    assert conversion.config["providers"]["openai-2"]["api_key"] == "env:OPENAI_EMBEDDINGS_API_KEY"
    everything = json.dumps(conversion.config) + "".join(str(n) for n in conversion.notes)
    assert "sk-live-do-not-copy" not in everything


def test_an_endpoint_from_an_unset_variable_is_listed_and_a_placeholder_written() -> None:
    """api_base: os.environ/X with X unset: Breakwater takes base_url literally, so it must be filled in."""
    conversion = convert(_fixture(), {})
    assert conversion.config["providers"]["azure-2"]["base_url"] == "https://YOUR-RESOURCE.openai.azure.com"
    paths = {n.path for n in conversion.notes if n.kind == "unmapped"}
    assert "model_list[1].litellm_params.api_base" in paths


def test_import_command_writes_a_config_check_config_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`breakwater import litellm -o` writes YAML that `breakwater check-config` accepts (variables set)."""
    credentials = tmp_path / "vertex.json"
    credentials.write_text(json.dumps(service_account("https://oauth2.googleapis.com/token")))
    source = tmp_path / "litellm.yaml"
    source.write_text(FIXTURE.read_text().replace("/secrets/vertex.json", str(credentials)))
    for name in (
        "AZURE_EU_API_KEY",
        "AZURE_US_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "OPENAI_EMBEDDINGS_API_KEY",
    ):
        monkeypatch.setenv(name, "test-value")
    monkeypatch.setenv("AZURE_US_API_BASE", ENV["AZURE_US_API_BASE"])
    out = tmp_path / "breakwater.yaml"
    assert main(["import", "litellm", str(source), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "8 providers, 10 deployments, 7 routes" in err
    assert "  model_list[11].litellm_params.model: unmapped: provider 'sagemaker'" in err
    assert main(["check-config", str(out)]) == 0
    assert "OK (8 providers, 10 deployments, 7 routes)" in capsys.readouterr().out


def test_import_of_a_missing_or_broken_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that cannot be read or is not YAML: exit 1 with one line, no traceback."""
    assert main(["import", "litellm", str(tmp_path / "absent.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("model_list: [\n")
    assert main(["import", "litellm", str(broken)]) == 1
    assert "not valid YAML" in capsys.readouterr().err
    broken.write_text("- just a list\n")
    assert main(["import", "litellm", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "no model could be converted" in err and ": unmapped: expected a mapping at the top level" in err


def test_strategies_and_wildcards_that_do_not_map_are_listed() -> None:
    """least-busy maps exactly; a bare '*' group and an unknown strategy are listed, not guessed."""
    data = {
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "groq/llama-3.1-8b-instant", "api_key": "os.environ/G"}},
            {"model_name": "a", "litellm_params": {"model": "deepseek/deepseek-chat", "api_key": "os.environ/D"}},
            {"model_name": "*", "litellm_params": {"model": "*"}},
        ],
        "router_settings": {"routing_strategy": "least-busy"},
    }
    conversion = convert(data, {})
    config = build_config(conversion.config)
    assert config.routes["a"].strategy == "least_in_flight"
    assert {p.host for p in config.providers.values()} >= {"groq", "deepseek"}
    assert [n.path for n in conversion.notes] == ["model_list[2].litellm_params.model"]
    data["router_settings"] = {"routing_strategy": "provider-budget-routing"}
    assert "router_settings.routing_strategy" in [n.path for n in convert(data, {}).notes]


def test_the_documented_output_and_snippet_are_the_real_ones() -> None:
    """docs/migration.md quotes real lines of the fixture's conversion, and its retires: snippet validates."""
    doc = (Path(__file__).parents[3] / "docs" / "migration.md").read_text(encoding="utf-8")
    real = {f"  {note}" for note in convert(_fixture(), ENV).notes}
    quoted = [line for line in doc.splitlines() if re.match(r"  (model_list|router_settings|general_settings)", line)]
    assert len(quoted) == 5 and set(quoted) <= real
    snippet = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", doc, flags=re.DOTALL)[0])
    azure = {"type": "openai", "host": "azure", "base_url": "https://x.openai.azure.com", "api_version": "2024-10-21"}
    config = build_config({"providers": {"azure": azure}, **snippet})
    assert str(config.deployments["gpt-4o-eu"].retires) == "2026-09-30"
