"""Wire type name -> adapter. Adapters are stateless, so one instance of each serves everything."""

from __future__ import annotations

from breakwater.providers.anthropic import AnthropicAdapter
from breakwater.providers.base import Adapter
from breakwater.providers.bedrock import BedrockAdapter
from breakwater.providers.gemini import GeminiAdapter
from breakwater.providers.openai import OpenAIAdapter
from breakwater.providers.vertex import VertexAnthropicAdapter, VertexGeminiAdapter

#: default base URL per wire when a provider names neither ``base_url`` nor a known ``host``
DEFAULT_BASE_URLS = {
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}


def adapter_for(wire: str) -> Adapter:
    """A new adapter for ``wire`` ('openai', 'anthropic', 'gemini', 'vertex-gemini', 'vertex-anthropic' or 'bedrock')."""
    if wire == "openai":
        return OpenAIAdapter()
    if wire == "anthropic":
        return AnthropicAdapter()
    if wire == "gemini":
        return GeminiAdapter()
    if wire == "vertex-gemini":
        return VertexGeminiAdapter()
    if wire == "vertex-anthropic":
        return VertexAnthropicAdapter()
    if wire == "bedrock":
        return BedrockAdapter()
    raise ValueError(f"unknown wire protocol {wire!r}")
