"""Prompt token counts on a running gateway: the ``anthropic`` SDK's ``messages.count_tokens``
(``/v1/messages/count_tokens``) and ``POST /v1/tokens/count``, on routes of each upstream wire."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest

from breakwater.core.tokens import estimate_prompt_tokens
from breakwater.infra.tokenizers import Tokenizers
from breakwater.infra.tokenizers.estimate import CLAUDE_IMAGE, CLAUDE_TOOLS_AUTO
from breakwater.providers import openai_serve
from tests.server.conftest import ROUTES
from tests.server.running import HELLO, anthropic_sdk

EPHEMERAL = {"type": "ephemeral"}
TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def client(gateway_url: str) -> anthropic.Anthropic:
    return anthropic_sdk(gateway_url)


def _count(client: anthropic.Anthropic, model: str, **kwargs: Any) -> int:
    return client.messages.count_tokens(model=model, **kwargs).input_tokens


@pytest.mark.parametrize("model", ROUTES)
def test_count_tokens_grows_with_each_part_of_the_prompt(client: anthropic.Anthropic, model: str) -> None:
    """System prompt, longer messages, tool definitions and images each add to the count."""
    base = _count(client, model, messages=HELLO)
    assert base > 0
    with_system = _count(client, model, system="You answer in one short sentence.", messages=HELLO)
    longer = _count(client, model, messages=[{"role": "user", "content": "Hello there " * 50}])
    with_tools = _count(client, model, messages=HELLO, tools=[TOOL])
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}
    with_image = _count(client, model, messages=[{"role": "user", "content": [image, {"type": "text", "text": "Hi"}]}])
    assert with_system > base
    assert longer > base + 50
    assert with_tools > base + 10
    assert with_image > base + 80


def test_claude_counts_its_tool_prompt_and_images_as_anthropic_does(client: anthropic.Anthropic) -> None:
    """On an Anthropic route, tools add Claude's tool-use system prompt and an image counts Claude's maximum."""
    base = _count(client, "mock-claude", messages=HELLO)
    only_image = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}]
    assert _count(client, "mock-claude", messages=[{"role": "user", "content": only_image}]) >= CLAUDE_IMAGE
    assert _count(client, "mock-claude", messages=HELLO, tools=[TOOL]) > base + CLAUDE_TOOLS_AUTO


def test_cache_control_and_thinking_are_accepted(client: anthropic.Anthropic) -> None:
    """Breakpoints on system, message and tool blocks and a thinking budget do not change the count."""
    plain = _count(client, "mock-claude", system="Stable instructions", messages=HELLO, tools=[TOOL])
    marked = _count(
        client,
        "mock-claude",
        system=[{"type": "text", "text": "Stable instructions", "cache_control": EPHEMERAL}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hello there", "cache_control": EPHEMERAL}]}],
        tools=[{**TOOL, "cache_control": EPHEMERAL}],
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    assert marked == plain


def test_count_tokens_errors_are_anthropic_errors(client: anthropic.Anthropic) -> None:
    """An unknown model is Anthropic's not_found_error; a bad body its invalid_request_error."""
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="nope", messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.count_tokens(model="mock", messages=[{"role": "robot", "content": "x"}])  # type: ignore[list-item]
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "error"


def test_openai_count_says_which_tokenizer_counted(gateway_url: str) -> None:
    """/v1/tokens/count answers the chat body's prompt tokens with OpenAI's chat framing, the
    tokenizer (a model name no family claims: cl100k_base, an estimate) and whether it is exact."""
    body = {
        "model": "mock",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there, how are you?"},
        ],
    }
    raw = httpx2.post(f"{gateway_url}/v1/tokens/count", json=body, timeout=10)
    assert raw.status_code == 200, raw.text
    answer = raw.json()
    assert answer["object"] == "token_count" and answer["input_tokens"] > 0
    assert answer["tokenizer"] == "cl100k_base" and answer["exact"] is False  # mock-gpt: not an OpenAI model name
    assert raw.headers["x-breakwater-tokenizer"] == "cl100k_base"
    assert raw.headers["x-breakwater-token-count"] == "estimate"
    encoding = Tokenizers().encoding("cl100k_base")
    request = openai_serve.decode_chat_request(body)
    assert answer["input_tokens"] == estimate_prompt_tokens(request, lambda t: len(encoding.encode_ordinary(t)))


def test_openai_count_errors_are_openai_errors(gateway_url: str) -> None:
    """A bad body is OpenAI's 400 naming the field; an unknown model a 404."""
    bad = httpx2.post(f"{gateway_url}/v1/tokens/count", json={"model": "mock", "messages": "hi"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "messages"
    unknown = httpx2.post(f"{gateway_url}/v1/tokens/count", json={"model": "nope", "messages": HELLO}, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
