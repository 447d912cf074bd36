"""The embedded default config: what ``breakwater serve`` runs with no ``--config``.

A ``mock`` route served in-process, the same model with its answers cached (``mock-cached``:
``cache: {mode: exact}``, docs/caching.md), plus a wildcard route for each provider whose key is in the
environment (``openai/*``, ``anthropic/*``, ``gemini/*``). Like the official SDKs, it honours
``OPENAI_BASE_URL`` and ``ANTHROPIC_BASE_URL``. Keys stay references (``env:NAME``).

It is the local quick start, so access control is off (``access.enabled: false``), which the
gateway says loudly at start-up and in ``/readyz``; a config file has it on unless it says
otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from breakwater.core.config import Config, build_config

_PROVIDERS = (
    # (name, wire, host, key variable, base URL variable)
    ("openai", "openai", "openai", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
    ("anthropic", "anthropic", None, "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    ("gemini", "gemini", None, "GEMINI_API_KEY", None),
)


def default_config(environ: Mapping[str, str]) -> Config:
    """Build the default config from an environment mapping (pure: the caller passes ``os.environ``)."""
    data: dict[str, Any] = {
        "access": {"enabled": False},
        "providers": {"mock": {"type": "mock"}},
        "deployments": {"mock": {"provider": "mock", "model": "mock-1", "context_window": 128000}},
        "routes": {
            "mock": {"deployments": ["mock"], "description": "the built-in mock model"},
            "mock-cached": {
                "deployments": ["mock"],
                "cache": {"mode": "exact"},
                "description": "the built-in mock model, deterministic answers cached (docs/caching.md)",
            },
        },
    }
    for name, wire, host, key_var, url_var in _PROVIDERS:
        if not environ.get(key_var):
            continue
        provider: dict[str, Any] = {"type": wire, "api_key": f"env:{key_var}"}
        if host is not None:
            provider["host"] = host
        if url_var and environ.get(url_var):
            provider["base_url"] = environ[url_var]
        data["providers"][name] = provider
        data["routes"][f"{name}/*"] = {"provider": name}
    return build_config(data, "<embedded default>")
