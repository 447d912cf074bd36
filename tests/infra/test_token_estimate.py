"""The prompt token estimate per model family (``infra/tokenizers/estimate.py``)."""

from __future__ import annotations

import pytest

from breakwater.core.types import ChatRequest, ImagePart, Message, TextPart, Tool, ToolChoice
from breakwater.infra.tokenizers import Tokenizers
from breakwater.infra.tokenizers.estimate import (
    CLAUDE_IMAGE,
    CLAUDE_TOOLS_AUTO,
    CLAUDE_TOOLS_FORCED,
    estimate_chat,
    estimate_text,
    family_of,
)

SYSTEM, QUESTION = "You are terse.", "What is the capital of France, and why?"


@pytest.fixture(scope="module")
def tokenizers() -> Tokenizers:
    return Tokenizers()


def _chat(
    *parts: TextPart | ImagePart, tools: list[Tool] | None = None, choice: ToolChoice | None = None
) -> ChatRequest:
    messages = [Message("system", [TextPart(SYSTEM)]), Message("user", list(parts) or [TextPart(QUESTION)])]
    return ChatRequest("m", messages, tools=tools or [], tool_choice=choice)


def test_an_openai_model_is_counted_exactly_with_openais_chat_framing(tokenizers: Tokenizers) -> None:
    """gpt-4o on OpenAI: o200k_base, exact; 3 priming tokens, 4 a message, the texts joined by newlines."""
    estimate = estimate_chat(tokenizers, "openai", "gpt-4o", _chat())
    encode = tokenizers.encoding("o200k_base").encode_ordinary
    assert (estimate.encoding, estimate.exact, estimate.family) == ("o200k_base", True, "openai")
    assert estimate.tokens == 3 + 2 * 4 + len(encode(SYSTEM + "\n" + QUESTION))
    assert estimate_chat(tokenizers, "openai", "gpt-4-turbo", _chat()).encoding == "cl100k_base"


def test_claude_is_cl100k_scaled_with_its_image_and_tool_rules(tokenizers: Tokenizers) -> None:
    """A Claude estimate: cl100k_base x1.1, not exact; an image adds Claude's maximum; tools add
    the tool-use system prompt (less when a tool is forced)."""
    plain = estimate_chat(tokenizers, "anthropic", "claude-sonnet-4", _chat())
    assert (plain.tokenizer, plain.exact, plain.family) == ("cl100k_base x1.1", False, "anthropic")
    image = estimate_chat(tokenizers, "anthropic", "claude-sonnet-4", _chat(TextPart(QUESTION), ImagePart("data:x")))
    assert image.tokens == plain.tokens + CLAUDE_IMAGE
    tool = Tool("lookup", "Look it up", {"type": "object"})
    auto = estimate_chat(tokenizers, "anthropic", "claude-sonnet-4", _chat(tools=[tool]))
    forced = estimate_chat(
        tokenizers, "anthropic", "claude-sonnet-4", _chat(tools=[tool], choice=ToolChoice("named", "lookup"))
    )
    assert auto.tokens - forced.tokens == CLAUDE_TOOLS_AUTO - CLAUDE_TOOLS_FORCED
    assert forced.tokens > plain.tokens + CLAUDE_TOOLS_FORCED


def test_openai_images_follow_openais_rule(tokenizers: Tokenizers) -> None:
    """An image in an OpenAI prompt adds 765 tokens at high detail and 85 at low."""
    plain = estimate_chat(tokenizers, "openai", "gpt-4o", _chat(TextPart(QUESTION)))
    high = estimate_chat(tokenizers, "openai", "gpt-4o", _chat(TextPart(QUESTION), ImagePart("data:x")))
    low = estimate_chat(tokenizers, "openai", "gpt-4o", _chat(TextPart(QUESTION), ImagePart("data:x", detail="low")))
    assert (high.tokens - plain.tokens, low.tokens - plain.tokens) == (765, 85)


def test_family_follows_the_wire_and_the_host(tokenizers: Tokenizers) -> None:
    """A deployment's family is its wire, or its OpenAI host; Gemini is o200k_base, an estimate."""
    assert family_of("anthropic", "anthropic") == "anthropic"
    assert family_of("openai", "azure") == "azure"
    gemini = estimate_text(tokenizers, family_of("gemini", None), "gemini-2.5-flash", "hello world")
    assert (gemini.encoding, gemini.exact, gemini.family, gemini.tokens) == ("o200k_base", False, "gemini", 2)
