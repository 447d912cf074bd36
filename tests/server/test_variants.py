"""Variants end to end through the official OpenAI SDK: a route's arms take each user sticky, the
response says which (``x-breakwater-variant``), the ledger row keeps it, ``/metrics`` counts it;
the refusal detector marks refusals on every provider wire, from the answer's text and from the
provider's own signal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import openai_sdk, serve
from tests.server.test_ledger import _row

REFUSALS = {
    "en": "I'm sorry, but I can't help with that.",
    "de": "Ich kann dabei nicht helfen.",
    "fr": "Je ne peux pas vous aider avec cette demande.",
    "es": "Lo siento, pero no puedo ayudar con eso.",
}
ANSWERS = [{"matches": f"refuse-{lang}", "text": text} for lang, text in REFUSALS.items()]


def _config(tmp: Path) -> dict[str, Any]:
    return {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {
            "openai": {"type": "mock", "wire": "openai", "answers": ANSWERS},
            "anthropic": {"type": "mock", "wire": "anthropic", "answers": ANSWERS},
            "gemini": {"type": "mock", "wire": "gemini", "answers": ANSWERS},
        },
        "deployments": {
            "gpt": {"provider": "openai", "model": "mock-gpt"},
            "gpt-next": {"provider": "openai", "model": "mock-gpt-next"},
            "claude": {"provider": "anthropic", "model": "mock-claude"},
            "gemini": {"provider": "gemini", "model": "mock-gemini"},
        },
        "routes": {
            "gpt": {"deployments": ["gpt"], "retry": {"max_attempts": 1}},
            "claude": {"deployments": ["claude"], "retry": {"max_attempts": 1}},
            "gemini": {"deployments": ["gemini"], "retry": {"max_attempts": 1}},
            "chat": {
                "variants": {
                    "sticky": "user",
                    "arms": {"control": {"route": "gpt", "weight": 50}, "canary": {"deployments": ["gpt-next"], "weight": 50}},
                }
            },
            "routed": {"branches": {"strong": {"route": "claude"}, "cheap": {"route": "gemini"}}, "rules": [{"if": {"tools": True}, "then": "strong"}], "default": "cheap"},
            "mixed": {"variants": {"arms": {"plain": {"route": "gpt", "weight": 0}, "routed": {"route": "routed", "weight": 1}}}},
            "tenant": {
                "variants": {
                    "sticky": "header:x-tenant",
                    "arms": {"on": {"route": "gpt", "weight": 1}, "off": {"route": "claude", "weight": 0}},
                }
            },
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, Path, str]]:
    tmp = tmp_path_factory.mktemp("variants")
    with serve(create_app(build_config(_config(tmp)), environ={})) as url:
        yield openai_sdk(url), tmp / "ledger.db", url


def _ask(client: openai.OpenAI, model: str, text: str = "Hello", **extra: Any) -> Any:
    messages: Any = [{"role": "user", "content": text}]
    return client.chat.completions.with_raw_response.create(model=model, messages=messages, **extra)


def test_a_user_always_gets_the_same_variant_and_the_ledger_and_metrics_say_which(
    gateway: tuple[openai.OpenAI, Path, str],
) -> None:
    """Each user's requests all go to one arm (its deployment answers), the header names it, the
    ledger row has it under the route the client named, and /metrics counts it."""
    client, ledger, url = gateway
    seen: dict[str, str] = {}
    for user in (f"user-{i}" for i in range(12)):
        for stream in (False, True, False):
            extra: dict[str, Any] = {"extra_headers": {"x-breakwater-user": user}}
            if stream:
                answer = client.chat.completions.with_raw_response.create(
                    model="chat", messages=[{"role": "user", "content": "Hi"}], stream=True, **extra
                )
                list(answer.parse())
            else:
                answer = _ask(client, "chat", **extra)
            variant = answer.headers["x-breakwater-variant"]
            assert seen.setdefault(user, variant) == variant
            assert answer.headers["x-breakwater-deployment"] == ("gpt" if variant == "control" else "gpt-next")
    assert set(seen.values()) == {"control", "canary"}, "12 users at 50/50 reach both arms"
    row = _row(ledger, answer.headers["x-request-id"])
    assert (row["route"], row["variant"], row["refused"]) == ("chat", variant, 0)
    metrics = httpx2.get(f"{url}/metrics").text
    for arm in ("control", "canary"):
        count = sum(1 for v in seen.values() if v == arm) * 3
        assert f'breakwater_variant_requests_total{{route="chat",variant="{arm}"}} {count}.0' in metrics


def test_a_header_subject_and_an_arm_turned_off(gateway: tuple[openai.OpenAI, Path, str]) -> None:
    """``sticky: header:x-tenant``; an arm at weight 0 never takes a request."""
    client, _, _ = gateway
    for tenant in ("a", "b", "c", "d"):
        answer = _ask(client, "tenant", extra_headers={"x-tenant": tenant})
        assert answer.headers["x-breakwater-variant"] == "on"


def test_a_route_without_variants_has_no_variant(gateway: tuple[openai.OpenAI, Path, str]) -> None:
    client, ledger, _ = gateway
    answer = _ask(client, "gpt")
    assert "x-breakwater-variant" not in answer.headers
    assert _row(ledger, answer.headers["x-request-id"])["variant"] is None


@pytest.mark.parametrize("route", ["gpt", "claude", "gemini"])
@pytest.mark.parametrize("lang", sorted(REFUSALS))
@pytest.mark.parametrize("stream", [False, True])
def test_a_refusal_in_the_answer_text_is_detected_on_every_wire(
    gateway: tuple[openai.OpenAI, Path, str], route: str, lang: str, stream: bool
) -> None:
    """The mock answers with a refusal in each shipped language; the row says ``refused``."""
    client, ledger, _ = gateway
    answer = client.chat.completions.with_raw_response.create(
        model=route, messages=[{"role": "user", "content": f"refuse-{lang}"}], stream=stream
    )
    if stream:
        list(answer.parse())
    assert _row(ledger, answer.headers["x-request-id"])["refused"] == 1


@pytest.mark.parametrize("route", ["gpt", "claude", "gemini"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_providers_own_refusal_signal_is_detected(
    gateway: tuple[openai.OpenAI, Path, str], route: str, stream: bool
) -> None:
    """The vendor's content-filter outcome (OpenAI ``content_filter``, Anthropic ``refusal``,
    Gemini ``SAFETY``) counts as a refusal; /metrics counts refusals by route."""
    client, ledger, url = gateway
    answer = client.chat.completions.with_raw_response.create(
        model=route,
        messages=[{"role": "user", "content": "Hello"}],
        stream=stream,
        extra_headers={"x-mock-fault": "content_filter"},
    )
    if stream:
        list(answer.parse())
    assert _row(ledger, answer.headers["x-request-id"])["refused"] == 1
    assert f'breakwater_refusals_total{{route="{route}",variant=""}}' in httpx2.get(f"{url}/metrics").text


def test_an_ordinary_answer_is_not_a_refusal(gateway: tuple[openai.OpenAI, Path, str]) -> None:
    client, ledger, _ = gateway
    answer = _ask(client, "claude", "Tell me about the sea")
    assert _row(ledger, answer.headers["x-request-id"])["refused"] == 0


def test_an_arm_naming_a_branching_route(gateway: tuple[openai.OpenAI, Path, str]) -> None:
    """The variants stage picks the arm, then the router stage that route's branch; the row keeps
    the route the client named, with both."""
    client, ledger, _ = gateway
    answer = _ask(client, "mixed", extra_headers={"x-breakwater-user": "ann"})
    assert answer.headers["x-breakwater-variant"] == "routed"
    assert answer.headers["x-breakwater-route-branch"] == "cheap"
    assert answer.headers["x-breakwater-deployment"] == "gemini"
    row = _row(ledger, answer.headers["x-request-id"])
    assert (row["route"], row["variant"], row["branch"], row["decision"]) == ("mixed", "routed", "cheap", "default")


def test_arms_that_differ_by_prompt_version(tmp_path: Path) -> None:
    """Arms on the same route with two versions of a registry prompt: each user's requests get
    their arm's version, whatever the request names; the ledger keeps arm and version."""
    config = _config(tmp_path)
    config["prompts"] = {
        "triage": {
            "versions": {
                1: {"messages": [{"role": "system", "content": "Answer briefly."}]},
                2: {"messages": [{"role": "system", "content": "Answer briefly and politely."}]},
            }
        }
    }
    config["routes"]["prompted"] = {
        "variants": {
            "arms": {
                "control": {"route": "gpt", "prompt": "triage@1", "weight": 50},
                "canary": {"route": "gpt", "prompt": "triage@2", "weight": 50},
            }
        }
    }
    with serve(create_app(build_config(config))) as url:
        client = openai_sdk(url)
        seen: dict[str, str] = {}
        for i in range(20):
            raw = client.chat.completions.with_raw_response.create(
                model="prompted", messages=[{"role": "user", "content": "hi"}], user=f"user-{i}"
            )
            arm, prompt = raw.headers["x-breakwater-variant"], raw.headers["x-breakwater-prompt"]
            assert prompt == {"control": "triage@1", "canary": "triage@2"}[arm]
            seen[arm] = prompt
            if i == 19:
                row = _row(tmp_path / "ledger.db", raw.headers["x-request-id"])
                assert (row["route"], row["variant"], row["prompt_name"], row["prompt_version"]) == (
                    "prompted",
                    arm,
                    "triage",
                    int(prompt[-1]),
                )
        assert set(seen) == {"control", "canary"}


def test_a_prompt_arm_names_a_version_of_a_known_prompt() -> None:
    from breakwater.core.config import ConfigError

    base = {
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "x"}},
        "prompts": {"p": {"versions": {1: {"messages": [{"role": "system", "content": "hi"}]}}}},
    }
    for ref, expected in (("p", "expected 'name@VERSION'"), ("q@1", "unknown prompt 'q'"), ("p@2", "has no version 2")):
        arms = {"a": {"deployments": ["d"], "prompt": ref, "weight": 1}}
        with pytest.raises(ConfigError) as info:
            build_config({**base, "routes": {"r": {"variants": {"arms": arms}}}})
        problems = [str(p) for p in info.value.problems]
        assert any(p.startswith("routes.r.variants.arms.a.prompt") and expected in p for p in problems), problems
