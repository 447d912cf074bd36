"""The cache key: every field that can change an answer changes it; nothing else does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from breakwater.core.keys import Team
from breakwater.engine.cache.key import cache_key, tenant_of
from breakwater.engine.context import Caller
from breakwater.providers import anthropic_serve_request, openai_serve

BASE: dict[str, Any] = {
    "model": "support",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "temperature": 0,
}


def _key(body: dict[str, Any], fingerprint: str = "fp", tenant: str = "key:k1") -> str:
    return cache_key(openai_serve.decode_chat_request(copy.deepcopy(body)), fingerprint, tenant)


@pytest.mark.parametrize(
    "change",
    [
        {"messages": [*BASE["messages"][:3], {"role": "user", "content": "What is 2+3?"}]},  # the question
        {"messages": [{"role": "system", "content": "You are verbose."}, *BASE["messages"][1:]]},  # system prompt
        {"messages": [BASE["messages"][0], {"role": "user", "content": "Hey"}, *BASE["messages"][2:]]},  # earlier turn
        {"temperature": 0.5},
        {"top_p": 0.9},
        {"seed": 3},
        {"max_tokens": 10},
        {"max_completion_tokens": 10},
        {"stop": ["\n"]},
        {"n": 2},
        {"logprobs": True},
        {"presence_penalty": 0.1},
        {"frequency_penalty": 0.1},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]},
        {"reasoning_effort": "high"},  # a field the gateway does not model still reaches the upstream
    ],
)
def test_an_output_affecting_field_changes_the_key(change: dict[str, Any]) -> None:
    """Each of these is sent upstream and can change the answer: a different key."""
    assert _key({**BASE, **change}) != _key(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"user": "alice"},
        {"metadata": {"feature": "search"}},
        {"store": True},
        {"model": "support-alias"},
        {"temperature": 0.0},  # the same number
        {"breakwater_cache": "no-store"},
    ],
)
def test_a_field_that_cannot_change_the_answer_leaves_the_key(change: dict[str, Any]) -> None:
    """Streaming, attribution, the model alias (the route fingerprint stands for it), number spelling
    and the directives themselves do not change the key."""
    assert _key({**BASE, **change}) == _key(BASE)


def test_the_order_of_json_keys_does_not_matter() -> None:
    """The same body with its keys in another order is the same key."""
    reordered = {k: BASE[k] for k in reversed(list(BASE))}
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in BASE["messages"]]
    assert _key(reordered) == _key(BASE)


def test_route_and_tenant_are_part_of_the_key() -> None:
    """Another route fingerprint or another tenant never shares an entry."""
    assert _key(BASE, fingerprint="other") != _key(BASE)
    assert _key(BASE, tenant="key:k2") != _key(BASE)


def test_tenants_by_scope() -> None:
    """Scope key: the key id; team: the team (a key without one is its own tenant); shared: one tenant."""
    caller = Caller(key_id="k1", team=Team("blue"))
    alone = Caller(key_id="k2")
    assert tenant_of(caller, "key") == "key:k1"
    assert tenant_of(caller, "team") == "team:blue" and tenant_of(alone, "team") == "key:k2"
    assert tenant_of(caller, "shared") == tenant_of(alone, "shared") == ""


def test_an_anthropic_request_keys_on_its_canonical_form_without_breakpoints() -> None:
    """A Messages request is keyed on what it asks; a prompt-cache breakpoint does not change it,
    its system prompt and temperature do."""
    body: dict[str, Any] = {
        "model": "claude",
        "max_tokens": 64,
        "temperature": 0,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": "Hi"}],
    }

    def key(b: dict[str, Any]) -> str:
        return cache_key(anthropic_serve_request.decode_chat_request(copy.deepcopy(b)), "fp", "")

    marked = copy.deepcopy(body)
    marked["system"][0]["cache_control"] = {"type": "ephemeral"}
    assert key(marked) == key(body)
    assert key({**body, "system": [{"type": "text", "text": "Be verbose."}]}) != key(body)
    assert key({**body, "temperature": 0.7}) != key(body)
    assert key({**body, "stream": True}) == key(body)
