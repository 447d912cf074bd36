"""A suite's providers: where its cases are answered and who judges them (docs/evals.md).

Two kinds, as promptfoo spells them, and nothing that runs code:

- ``breakwater:ROUTE``: a route of the gateway's configuration, served in-process;
- ``openai:chat:MODEL`` (or promptfoo's short ``openai:MODEL``): any OpenAI-compatible server,
  ``config.apiBaseUrl`` naming it (a running Breakwater, vLLM, OpenAI itself; without it, as in
  promptfoo, ``$OPENAI_BASE_URL`` or ``$OPENAI_API_BASE_URL``, else OpenAI's); its key is read
  from the environment variable ``config.apiKeyEnvar`` names (default ``OPENAI_API_KEY``), never
  written in the suite.

Either takes request parameters in ``config`` (``temperature``, ``max_tokens``, ``tools``, ...),
sent with every case. The targets themselves are built by the command line (``cli/eval.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from breakwater.engine.evals.asserts import SuiteError

#: the request parameters a provider's ``config`` may set (sent in every case's body)
PARAMS = frozenset(
    {
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "top_p",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "logprobs",
        "top_logprobs",
        "user",
    }
)
#: the OpenAI kinds promptfoo has besides chat, refused by name
_OTHER_OPENAI = ("completion", "embedding", "embeddings", "responses", "assistant", "image", "moderation", "realtime")
#: promptfoo's default key variable for its OpenAI provider
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider of a suite (or a judge): what to call and the parameters every case sends."""

    id: str
    label: str
    kind: Literal["breakwater", "openai"]
    #: the route (``breakwater``) or the model (``openai``)
    name: str
    #: the server's API root (``openai``; ``None``: from the environment, see ``base_url_of``)
    base_url: str | None = None
    #: the environment variable holding the API key (``openai``)
    key_env: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


def base_url_of(spec: ProviderSpec, environ: Mapping[str, str]) -> str:
    """An ``openai`` provider's API root: ``apiBaseUrl``, else promptfoo's environment variables,
    else OpenAI's."""
    chosen = spec.base_url or environ.get("OPENAI_BASE_URL") or environ.get("OPENAI_API_BASE_URL")
    return chosen or "https://api.openai.com/v1"


def route_provider(route: str) -> ProviderSpec:
    """``breakwater:ROUTE`` with no parameters (``--route``, ``--compare``, ``--judge``)."""
    if not route or (":" in route and not route.startswith("breakwater:")):
        raise SuiteError("--route", f"{route!r} is not a route name (or breakwater:ROUTE)")
    name = route.removeprefix("breakwater:")
    return ProviderSpec(f"breakwater:{name}", f"breakwater:{name}", "breakwater", name)


def parse_provider(raw: Any, path: str) -> ProviderSpec:
    """A provider from its YAML form: an id string, or ``{id, label, config}``.

    Raises:
        SuiteError: an unsupported provider or key, or a bad parameter.
    """
    if isinstance(raw, str):
        return _of(raw, None, {}, path)
    if not isinstance(raw, Mapping):
        raise SuiteError(path, "a provider is an id (breakwater:ROUTE, openai:chat:MODEL) or {id, label, config}")
    unknown = sorted(set(raw) - {"id", "label", "config"})
    if unknown:
        raise SuiteError(f"{path}.{unknown[0]}", "not a supported provider key (supported: id, label, config)")
    ident, label, config = raw.get("id"), raw.get("label"), raw.get("config", {})
    if not isinstance(ident, str):
        raise SuiteError(f"{path}.id", "required: the provider's id (breakwater:ROUTE or openai:chat:MODEL)")
    if label is not None and not isinstance(label, str):
        raise SuiteError(f"{path}.label", "must be a string")
    if not isinstance(config, Mapping):
        raise SuiteError(f"{path}.config", "must be a mapping")
    return _of(ident, label, config, f"{path}.id")


def _of(ident: str, label: str | None, config: Mapping[str, Any], path: str) -> ProviderSpec:
    kind, _, rest = ident.partition(":")
    config_path = path.removesuffix(".id") + ".config"
    if kind == "breakwater" and rest:
        params = _params(config, config_path, allowed=frozenset())
        return ProviderSpec(ident, label or ident, "breakwater", rest, params=params)
    if kind == "openai":
        sub, _, model = rest.partition(":")
        if not model and sub and sub not in (*_OTHER_OPENAI, "chat"):
            sub, model = "chat", sub  # promptfoo's openai:MODEL is a chat model
        if sub in _OTHER_OPENAI:
            raise SuiteError(path, f"openai:{sub} is not supported: only openai:chat:MODEL")
        if sub != "chat" or not model:
            raise SuiteError(path, f"{ident!r}: expected openai:chat:MODEL")
        if "apiKey" in config:
            raise SuiteError(
                f"{config_path}.apiKey", "keys are not written in suites: name the variable holding it in apiKeyEnvar"
            )
        params = _params(config, config_path, allowed=frozenset({"apiBaseUrl", "apiKeyEnvar"}))
        base_url = config.get("apiBaseUrl")
        key_env = config.get("apiKeyEnvar", DEFAULT_KEY_ENV)
        for key, value in (("apiBaseUrl", base_url or "http://"), ("apiKeyEnvar", key_env)):
            if not isinstance(value, str) or not value:
                raise SuiteError(f"{config_path}.{key}", "must be a string")
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise SuiteError(f"{config_path}.apiBaseUrl", "must be an http:// or https:// URL")
        return ProviderSpec(ident, label or ident, "openai", model, base_url, key_env, params)
    raise SuiteError(
        path,
        f"unsupported provider {ident!r}: only breakwater:ROUTE (this gateway's routes, which reach every "
        "vendor it is configured for) and openai:chat:MODEL (any OpenAI-compatible server) are supported",
    )


def _params(config: Mapping[str, Any], path: str, *, allowed: frozenset[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in config.items():
        if key in allowed:
            continue
        if key not in PARAMS:
            raise SuiteError(
                f"{path}.{key}", f"not a supported provider setting (request parameters: {', '.join(sorted(PARAMS))})"
            )
        params[key] = value
    return params
