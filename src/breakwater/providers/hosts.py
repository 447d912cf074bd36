"""OpenAI-compatible hosts as data rows: base URL, auth header style, and what each cannot do.

A new OpenAI-compatible host is a row here, not a class. ``unsupported`` lists OpenAI-spelled
parameters the host rejects or silently ignores (from each host's API reference); the engine
turns those into a 400 that names the parameter, or drops them when the route says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    base_url: str | None
    auth: Literal["bearer", "api-key"] = "bearer"
    #: Azure OpenAI addresses a *deployment* in the URL and needs ``api-version``
    azure: bool = False
    unsupported: frozenset[str] = frozenset()
    #: embeds token-id inputs (``input: [[15339, 1917]]``) itself; other hosts get them decoded to text
    token_input: bool = False


_LOCAL = frozenset({"n", "logprobs", "top_logprobs", "parallel_tool_calls"})

HOSTS: dict[str, Host] = {
    h.name: h
    for h in (
        Host("openai", "https://api.openai.com/v1", token_input=True),
        Host("azure", None, auth="api-key", azure=True, token_input=True),
        Host("vllm", "http://127.0.0.1:8000/v1", token_input=True),
        Host("ollama", "http://127.0.0.1:11434/v1", unsupported=_LOCAL),
        Host("tgi", "http://127.0.0.1:8080/v1", unsupported=frozenset({"n", "parallel_tool_calls"})),
        Host("lmstudio", "http://127.0.0.1:1234/v1", unsupported=_LOCAL),
        Host("together", "https://api.together.xyz/v1"),
        Host("groq", "https://api.groq.com/openai/v1", unsupported=frozenset({"n", "logprobs", "top_logprobs"})),
        Host("deepseek", "https://api.deepseek.com/v1", unsupported=frozenset({"n", "seed"})),
        Host("mistral", "https://api.mistral.ai/v1", unsupported=frozenset({"seed", "logprobs", "top_logprobs"})),
        Host("openrouter", "https://openrouter.ai/api/v1"),
        Host("fireworks", "https://api.fireworks.ai/inference/v1"),
        # a `breakwater mock` server (and the in-process mock): x-mock-* headers go through
        Host("mock", "http://127.0.0.1:9000/v1", token_input=True),
        Host("custom", None),
    )
}


def host(name: str | None) -> Host:
    """The row for ``name``; unknown or missing names are plain OpenAI-compatible servers."""
    return HOSTS.get(name or "custom", HOSTS["custom"])
