"""The config model: every problem reported with its key path; examples and defaults are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakwater.core.config import ConfigError, parse_config
from breakwater.core.defaults import default_config
from breakwater.runtime.wiring import check_environment

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
FAKE_ENV = {
    name: "sk-test"
    for name in (
        "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GROQ_API_KEY",
        "TOGETHER_API_KEY", "DEEPSEEK_API_KEY", "MISTRAL_API_KEY", "OPENROUTER_API_KEY", "FIREWORKS_API_KEY",
        "BEDROCK_ACCESS_KEY_ID", "BEDROCK_SECRET_ACCESS_KEY",
    )
}  # fmt: skip


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_are_valid(path: Path, tmp_path: Path) -> None:
    """Every example config validates, including credentials that resolve from the environment."""
    secret = tmp_path / "key"
    secret.write_text("sk-file\n")
    config = parse_config(path.read_text().replace("/run/secrets/llm_key", str(secret)), path.name)
    assert config.routes
    assert check_environment(config, FAKE_ENV) == []


def test_all_problems_reported_with_paths() -> None:
    """Several problems in one file are all reported, each with its key path."""
    problems = _problems(
        """
providers:
  openai: {type: openai, host: openai, api_key: sk-live-123}
  weird: {type: carrier-pigeon}
deployments:
  fast: {provider: openai, model: gpt-4o, timeouts: {total: 0}}
  lost: {provider: nowhere, model: x}
routes:
  chat: {deployments: [fast, gpt-5]}
  empty: {deployments: []}
  typo: {deployments: [fast], stratgy: weighted}
"""
    )
    text = "\n".join(problems)
    assert "providers.openai.api_key: must be a reference" in text
    assert "providers.weird.type:" in text
    assert "deployments.fast.timeouts.total:" in text
    assert "routes.typo.stratgy: unknown key" in text
    assert "sk-live-123" not in text


def test_cross_references_checked() -> None:
    """Unknown providers and deployments are reported with the names that do exist."""
    problems = _problems(
        """
providers:
  openai: {type: openai, host: openai}
deployments:
  fast: {provider: openai, model: gpt-4o}
  lost: {provider: nowhere, model: x}
routes:
  chat: {deployments: [fast, gpt-5]}
  empty: {deployments: []}
  "bad/*": {deployments: [fast]}
  "mid*dle": {deployments: [fast]}
"""
    )
    assert "deployments.lost.provider: unknown provider 'nowhere' (expected one of: openai)" in problems
    assert "routes.chat.deployments[1]: unknown deployment 'gpt-5' (expected one of: fast, lost)" in problems
    assert "routes.empty.deployments: a route needs at least one deployment" in problems
    assert "routes.bad/*.provider: a wildcard route needs the provider it forwards to" in problems
    assert any(p.startswith("routes.mid*dle:") for p in problems)


def test_invalid_yaml_names_the_line() -> None:
    """A YAML syntax error is one problem naming its line."""
    problems = _problems("providers:\n  a: [unclosed\n")
    assert len(problems) == 1
    assert "line" in problems[0]
    assert "not valid YAML" in problems[0]


def test_environment_problems() -> None:
    """Unset credentials, unknown hosts and Azure without api_version are reported; the key path says where."""
    config = parse_config(
        """
providers:
  a: {type: openai, host: azure, base_url: "https://x.openai.azure.com", api_key: env:NOPE_KEY}
  b: {type: openai, host: nosuchhost, base_url: "http://h/v1", api_key: "file:/nonexistent/key"}
"""
    )
    problems = [str(p) for p in check_environment(config, {})]
    assert "providers.a.api_key: environment variable NOPE_KEY is not set" in problems
    assert "providers.a.api_version: Azure OpenAI needs an api_version" in problems
    assert any(p.startswith("providers.b.host: unknown host 'nosuchhost'") for p in problems)
    assert any(p.startswith("providers.b.api_key: cannot read credential file /nonexistent/key") for p in problems)


def test_default_config_follows_environment() -> None:
    """The embedded default has the mock routes (one caching its answers), plus a wildcard route per
    provider key found, honouring base URLs."""
    assert set(default_config({}).routes) == {"mock", "mock-cached"}
    assert default_config({}).routes["mock-cached"].cache.mode == "exact"
    config = default_config(
        {"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-2", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    )
    assert set(config.routes) == {"mock", "mock-cached", "openai/*", "anthropic/*"}
    assert config.providers["openai"].base_url == "http://127.0.0.1:9/v1"
    assert config.providers["openai"].api_key == "env:OPENAI_API_KEY"


def test_fallback_routes_are_checked() -> None:
    """Fallback lists must name other, existing, non-wildcard routes; each bad entry is reported with its path."""
    problems = _problems(
        """
providers: {m: {type: mock}}
deployments: {d: {provider: m, model: x}}
routes:
  a:
    deployments: [d]
    fallbacks: {general: [a, nope], context_window: ["m/*"], content_filter: [b]}
  b: {deployments: [d], strategy: fastest}
  "m/*": {provider: m}
"""
    )
    assert "routes.a.fallbacks.general[0]: a route cannot fall back to itself" in problems
    assert any(
        p.startswith("routes.a.fallbacks.general[1]: unknown route 'nope' (expected one of: a, b)") for p in problems
    )
    assert any(p.startswith("routes.a.fallbacks.context_window[0]: unknown route 'm/*'") for p in problems)
    assert not any("content_filter" in p for p in problems)
    assert any(p.startswith("routes.b.strategy:") for p in problems)


def test_reliability_guide_example_is_valid() -> None:
    """The complete example at the top of docs/reliability.md validates, credentials included."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_config(example, "docs/reliability.md")
    assert config.routes["chat"].fallbacks.general == ["chat-backup"]
    assert config.routes["chat"].stream_failure == "continue"
    assert check_environment(config, FAKE_ENV) == []


def test_branching_routes_are_checked() -> None:
    """Branches name routes or deployments that exist, never leading back; rules, default and
    cascade steps name branches; a route chooses by rules or cascades, not both; a bad regular
    expression is named; scripted answers are for the mock only."""
    problems = _problems(
        r"""
providers:
  m: {type: mock, answers: [{text: hi, matches: "("}]}
  o: {type: openai, host: openai, answers: [{text: hi}]}
deployments:
  a: {provider: m, model: x}
routes:
  small: {deployments: [a]}
  loop: {branches: {back: {route: pick}}, default: back}
  pick:
    branches: {cheap: {route: small}, own: {deployments: [nope]}, cycle: {route: loop}, gone: {route: nowhere}}
    rules: [{if: {last_user_matches: "("}, then: cheap}, {if: {tools: true}, then: strong}]
    cascade: {steps: [cheap, premium], checks: {judge: {route: judge-me}}}
    baseline: premium
  plain: {deployments: [a], default: cheap, baseline: cheap}
"""
    )
    expected = [
        "routes.pick.branches.own.deployments[0]: unknown deployment 'nope'",
        "routes.pick.branches.cycle.route: route 'loop' leads back to 'pick'",
        "routes.pick.branches.gone.route: unknown route 'nowhere' (expected one of: loop, pick, plain, small)",
        "routes.pick.rules[1].then: unknown branch 'strong' (expected one of: cheap, cycle, gone, own)",
        "routes.pick.cascade.steps[1]: unknown branch 'premium' (expected one of: cheap, cycle, gone, own)",
        "routes.pick.cascade.checks.judge.route: unknown route 'judge-me'",
        "routes.pick.cascade: a cascade tries its steps in order: no rules, learned or default",
        "routes.plain.default: needs 'branches' to choose from",
        "routes.pick.baseline: unknown branch 'premium' (expected one of: cheap, cycle, gone, own)",
        "routes.plain.baseline: needs 'branches' to choose from",
        "providers.o.answers: only a provider of type 'mock' takes answers",
    ]
    for problem in expected:
        assert problem in problems, problem
    assert any(p.startswith("routes.pick.rules[0].if.last_user_matches: not a regular expression") for p in problems)
    config = parse_config('providers:\n  m: {type: mock, answers: [{text: hi, matches: "("}, {txt: hi}]}\n')
    found = [str(p) for p in check_environment(config, {})]
    assert any(p.startswith("providers.m.answers[0]: 'matches' is not a regular expression") for p in found)
    assert any(p.startswith("providers.m.answers[1]: unknown key(s) txt") for p in found)


def test_routing_guide_examples_are_valid() -> None:
    """Every route example in docs/routing.md validates once the deployments and routes it only
    names are stood in for by mock ones."""
    import yaml

    from breakwater.core.config import build_config

    text = (Path(__file__).resolve().parents[2] / "docs" / "routing.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    examples = [yaml.safe_load(b) for b in blocks if "routes:" in b]
    assert len(examples) >= 4
    for data in examples:
        data.setdefault("providers", {})["stand-in"] = {"type": "mock"}
        deployments = data.setdefault("deployments", {})
        for dep in deployments.values():
            dep["provider"] = "stand-in"
        routes = data["routes"]
        named: set[str] = set()
        for route in list(routes.values()):
            named.update(t if isinstance(t, str) else t["deployment"] for t in route.get("deployments", []))
            for branch in route.get("branches", {}).values():
                named.update(branch.get("deployments", []))
                if "route" in branch and branch["route"] not in routes:
                    routes[branch["route"]] = {"deployments": ["stand-in"]}
                    named.add("stand-in")
            judge = route.get("cascade", {}).get("checks", {}).get("judge")
            if judge and judge["route"] not in routes:
                routes[judge["route"]] = {"deployments": ["stand-in"]}
                named.add("stand-in")
        for name in named - set(deployments):
            deployments[name] = {"provider": "stand-in", "model": name}
        build_config(data)


def test_upstream_endpoints_need_the_openai_wire() -> None:
    """``legacy_completions`` and ``responses_api`` are refused on a deployment that does not speak
    OpenAI's wire (nothing there serves those endpoints)."""
    problems = _problems(
        """
providers:
  claude: {type: anthropic}
  local: {type: mock, wire: openai}
deployments:
  a: {provider: claude, model: c, responses_api: true, legacy_completions: true}
  b: {provider: local, model: m, responses_api: true, legacy_completions: true}
routes:
  r: {deployments: [a, b]}
"""
    )
    assert problems == [
        "deployments.a.legacy_completions: only OpenAI-wire upstreams serve /v1/completions",
        "deployments.a.responses_api: only OpenAI-wire upstreams serve /v1/responses",
    ]
