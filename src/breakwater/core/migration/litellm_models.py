"""A LiteLLM proxy's ``model_list`` entries as Breakwater providers and deployments.

Each entry (``model_name`` + ``litellm_params`` + ``model_info``) is one deployment; its
``litellm_params.model`` prefix (``azure/``, ``bedrock/``, ``vertex_ai/``...) picks the provider
type, and entries that share a provider's settings (type, endpoint, key reference, region...)
share one provider. Keys are never copied: ``os.environ/NAME`` becomes ``env:NAME``, and an
inline key becomes a reference to a variable the note names (its value is never written or
printed). Format followed: LiteLLM's proxy "Config.yaml" page (docs.litellm.ai/docs/proxy/configs,
read 2026-12).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from breakwater.core.migration.notes import Note

#: LiteLLM provider prefix -> (Breakwater wire type, OpenAI-compatible host or None)
_KINDS: dict[str, tuple[str, str | None]] = {
    "openai": ("openai", "openai"),
    "azure": ("openai", "azure"),
    "anthropic": ("anthropic", None),
    "gemini": ("gemini", None),
    "vertex_ai": ("vertex", None),
    "bedrock": ("bedrock", None),
    "ollama": ("openai", "ollama"),
    "ollama_chat": ("openai", "ollama"),
    "hosted_vllm": ("openai", "vllm"),
    "lm_studio": ("openai", "lmstudio"),
    "groq": ("openai", "groq"),
    "deepseek": ("openai", "deepseek"),
    "mistral": ("openai", "mistral"),
    "together_ai": ("openai", "together"),
    "openrouter": ("openai", "openrouter"),
    "fireworks_ai": ("openai", "fireworks"),
}
#: a bare model name (no prefix) is OpenAI's or Anthropic's, as LiteLLM infers it
_BARE = (
    (re.compile(r"^(gpt-|o[1-9]|chatgpt-|text-embedding-)"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
)
#: servers whose OpenAI-compatible API is under /v1 while LiteLLM's api_base is the server root
_ROOT_BASE = frozenset({"ollama", "vllm", "lmstudio"})
#: litellm_params keys handled here; any other is a request default or a LiteLLM-only setting
_HANDLED = frozenset(
    {
        "model",
        "api_key",
        "api_base",
        "api_version",
        "custom_llm_provider",
        "rpm",
        "tpm",
        "weight",
        "order",
        "timeout",
        "stream_timeout",
        "input_cost_per_token",
        "output_cost_per_token",
        "aws_region_name",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_profile_name",
        "vertex_project",
        "vertex_location",
        "vertex_credentials",
        "drop_params",
        "extra_headers",
    }
)
_REQUEST_DEFAULTS = frozenset(
    {"temperature", "max_tokens", "max_completion_tokens", "top_p", "stop", "seed", "frequency_penalty"}
)


@dataclass(slots=True)
class Entry:
    """One converted ``model_list`` entry: where it goes and how the route should weigh it."""

    group: str
    deployment: str
    weight: float | int | None = None
    rpm: float | int | None = None
    tpm: float | int | None = None
    order: float | int | None = None
    drop_params: bool = False
    #: a wildcard entry (``openai/*``): the route forwards to this provider, no deployment
    wildcard_provider: str | None = None


@dataclass(slots=True)
class ModelList:
    """What the entries become: providers and deployments by name, entries in file order."""

    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    _by_settings: dict[str, str] = field(default_factory=dict)

    def provider(self, kind: str, settings: dict[str, Any]) -> str:
        """The name of the provider with these settings, added (``kind``, ``kind-2``...) if new."""
        key = json.dumps(settings, sort_keys=True)
        if key not in self._by_settings:
            name = _unique(kind.replace("_", "-"), self.providers)
            self.providers[name] = settings
            self._by_settings[key] = name
        return self._by_settings[key]


def convert_models(models: Any, environ: Mapping[str, str], notes: list[Note]) -> ModelList:
    """Every entry of ``model_list`` converted; those that cannot be are listed in ``notes``."""
    out = ModelList()
    if models is None:
        return out
    if not isinstance(models, list):
        notes.append(Note("model_list", "unmapped", "expected a list of models"))
        return out
    for i, item in enumerate(models):
        _entry(out, f"model_list[{i}]", item, environ, notes)
    return out


def env_reference(value: Any) -> str | None:
    """``os.environ/NAME`` as ``env:NAME``; ``None`` for anything else."""
    if isinstance(value, str) and value.startswith("os.environ/") and len(value) > len("os.environ/"):
        return "env:" + value[len("os.environ/") :]
    return None


def secret(value: Any, path: str, suggested: str, notes: list[Note]) -> str | None:
    """A secret as a reference: ``os.environ/NAME`` kept as ``env:NAME``; an inline value is
    replaced by ``env:<suggested>`` (and never repeated anywhere)."""
    if value is None:
        return None
    reference = env_reference(value)
    if reference is not None:
        return reference
    notes.append(
        Note(
            path,
            "unmapped",
            f"an inline secret is never written into a Breakwater config: put it in ${suggested} (env:{suggested})",
        )
    )
    return f"env:{suggested}"


def plain(value: Any, path: str, environ: Mapping[str, str], notes: list[Note]) -> str | None:
    """A setting that is not secret (an endpoint, a region): taken as written, or read from the
    environment now when LiteLLM would have read it there (Breakwater takes these literally)."""
    if value is None:
        return None
    reference = env_reference(value)
    if reference is None:
        return str(value)
    name = reference[len("env:") :]
    if name in environ:
        notes.append(Note(path, "approximated", f"written as the value ${name} has now: Breakwater takes it literally"))
        return environ[name]
    notes.append(Note(path, "unmapped", f"${name} is not set here and Breakwater takes this key literally: fill it in"))
    return None


def _entry(out: ModelList, path: str, item: Any, environ: Mapping[str, str], notes: list[Note]) -> None:
    if not isinstance(item, dict) or not isinstance(item.get("model_name"), str):
        notes.append(Note(path, "unmapped", "an entry needs model_name and litellm_params"))
        return
    params = item.get("litellm_params")
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        notes.append(Note(f"{path}.litellm_params.model", "unmapped", "required key is missing"))
        return
    group: str = item["model_name"]
    for key in item:
        if key in ("rpm", "tpm") and key not in params:
            params = {**params, key: item[key]}
        elif key not in ("model_name", "litellm_params", "model_info", "rpm", "tpm"):
            notes.append(Note(f"{path}.{key}", "unmapped", "not a model_list key Breakwater knows"))
    prefix, _, model = params["model"].partition("/")
    if not model:
        prefix, model = _bare(params["model"]), params["model"]
    prefix = str(params.get("custom_llm_provider") or prefix)
    kind = _KINDS.get(prefix)
    where = f"{path}.litellm_params"
    if kind is None:
        notes.append(
            Note(
                f"{where}.model",
                "unmapped",
                f"provider {prefix!r} ({params['model']!r}) has no Breakwater provider type: the entry is left out",
            )
        )
        return
    settings = _provider(prefix, group, kind, params, where, environ, notes)
    provider = out.provider(prefix, settings)
    if "*" in group or "*" in model:
        if group.endswith("/*") and "*" not in group[:-2] and model == "*":
            out.entries.append(Entry(group, "", wildcard_provider=provider))
        else:
            notes.append(
                Note(
                    f"{path}.model_name",
                    "unmapped",
                    "only 'prefix/*' wildcards forwarding to 'provider/*' map to a route",
                )
            )
        return
    if prefix == "bedrock":
        model = _bedrock_model(model, f"{where}.model", notes)
    deployment: dict[str, Any] = {"provider": provider, "model": model}
    _timeouts(deployment, params)
    _price(deployment, params, item.get("model_info"), where, notes)
    raw_info = item.get("model_info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    _model_info(deployment, info, f"{path}.model_info", notes)
    _leftovers(params, where, notes)
    if isinstance(info.get("id"), str):
        name = _unique(info["id"], out.deployments)
    elif group in out.deployments:
        name = _unique(f"{group}-{provider}", out.deployments)  # a model group's next deployment
    else:
        name = group
    out.deployments[name] = deployment
    out.entries.append(
        Entry(
            group,
            name,
            weight=_number(params.get("weight")),
            rpm=_number(params.get("rpm")),
            tpm=_number(params.get("tpm")),
            order=_number(params.get("order")),
            drop_params=params.get("drop_params") is True,
        )
    )


def _bare(model: str) -> str:
    for pattern, prefix in _BARE:
        if pattern.match(model):
            return prefix
    return model


def _provider(
    prefix: str,
    group: str,
    kind: tuple[str, str | None],
    params: dict[str, Any],
    where: str,
    env: Mapping[str, str],
    notes: list[Note],
) -> dict[str, Any]:
    wire, host = kind
    # a variable of its own: the inline key may differ from the one other entries read
    suggested = re.sub(r"[^A-Z0-9]+", "_", f"{prefix}_{group}_API_KEY".upper())
    settings: dict[str, Any] = {"type": wire}
    base = plain(params.get("api_base"), f"{where}.api_base", env, notes)
    if wire == "bedrock":
        settings["aws"] = _aws(params, where, env, notes)
        return settings
    if wire == "vertex":
        return _vertex(settings, params, where, env, notes)
    if host is not None:
        if host == "openai" and base and "api.openai.com" not in base:
            host = "custom"  # an OpenAI-compatible server of the user's own
        settings["host"] = host
    if host in _ROOT_BASE and base and not base.rstrip("/").endswith("/v1"):
        base = base.rstrip("/") + "/v1"
    if host == "azure" and not base:
        notes.append(Note(f"{where}.api_base", "unmapped", "Azure needs the resource's endpoint: fill in base_url"))
        base = "https://YOUR-RESOURCE.openai.azure.com"
    if base and not (host == "openai" and "api.openai.com" in base):
        settings["base_url"] = base.rstrip("/")
    key = secret(params.get("api_key"), f"{where}.api_key", suggested, notes)
    if key is not None:
        settings["api_key"] = key
    version = plain(params.get("api_version"), f"{where}.api_version", env, notes)
    if host == "azure" and version is None:
        notes.append(Note(f"{where}.api_version", "approximated", "not given: api_version 2024-10-21 written"))
        version = "2024-10-21"
    if version is not None:
        settings["api_version"] = version
    headers = params.get("extra_headers")
    if isinstance(headers, dict):
        literal = {str(k): str(v) for k, v in headers.items() if env_reference(v) is None}
        if literal:
            settings["headers"] = literal
        if len(literal) < len(headers):
            notes.append(Note(f"{where}.extra_headers", "unmapped", "headers from the environment are not supported"))
    return settings


def _aws(params: dict[str, Any], where: str, env: Mapping[str, str], notes: list[Note]) -> dict[str, Any]:
    aws: dict[str, Any] = {}
    region = plain(params.get("aws_region_name"), f"{where}.aws_region_name", env, notes)
    if region is not None:
        aws["region"] = region
    profile = plain(params.get("aws_profile_name"), f"{where}.aws_profile_name", env, notes)
    if profile is not None:
        aws["profile"] = profile
    for ours, theirs, suggested in (
        ("access_key_id", "aws_access_key_id", "AWS_ACCESS_KEY_ID"),
        ("secret_access_key", "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
        ("session_token", "aws_session_token", "AWS_SESSION_TOKEN"),
    ):
        value = secret(params.get(theirs), f"{where}.{theirs}", suggested, notes)
        if value is not None:
            aws[ours] = value
    return aws


def _vertex(
    settings: dict[str, Any], params: dict[str, Any], where: str, env: Mapping[str, str], notes: list[Note]
) -> dict[str, Any]:
    project = plain(params.get("vertex_project"), f"{where}.vertex_project", env, notes)
    if project is None:
        notes.append(Note(f"{where}.vertex_project", "unmapped", "a vertex provider needs its project: fill it in"))
        project = "your-gcp-project"
    settings["project"] = project
    location = plain(params.get("vertex_location"), f"{where}.vertex_location", env, notes)
    if location is None:
        notes.append(
            Note(f"{where}.vertex_location", "approximated", "not given: us-central1 written (LiteLLM's default)")
        )
        location = "us-central1"
    settings["location"] = location
    credentials = params.get("vertex_credentials")
    if credentials is not None:
        reference = env_reference(credentials)
        if reference is not None:
            notes.append(
                Note(
                    f"{where}.vertex_credentials",
                    "approximated",
                    f"{reference}: Breakwater reads the credentials JSON itself from the variable, not a path to it",
                )
            )
        elif isinstance(credentials, str) and not credentials.lstrip().startswith("{"):
            reference = f"file:{credentials}"
        else:
            reference = secret("inline", f"{where}.vertex_credentials", "VERTEX_CREDENTIALS", notes)
        settings["credentials"] = reference
    return settings


def _bedrock_model(model: str, path: str, notes: list[Note]) -> str:
    route, _, rest = model.partition("/")
    if route == "converse" and rest:
        return rest
    if route == "invoke" and rest:
        notes.append(Note(path, "approximated", "Breakwater calls Bedrock's Converse API, not InvokeModel"))
        return rest
    return model


def _timeouts(deployment: dict[str, Any], params: dict[str, Any]) -> None:
    timeouts: dict[str, float] = {}
    total, first = _number(params.get("timeout")), _number(params.get("stream_timeout"))
    if total is not None and total > 0:
        timeouts["total"] = total
    if first is not None and first > 0:
        timeouts["first_token"] = first  # LiteLLM's stream timeout waits for the stream to start
    if timeouts:
        deployment["timeouts"] = timeouts


def _price(deployment: dict[str, Any], params: dict[str, Any], info: Any, where: str, notes: list[Note]) -> None:
    sources = [params, info if isinstance(info, dict) else {}]
    rates = {}
    for key in ("input_cost_per_token", "output_cost_per_token"):
        value = next((s[key] for s in sources if s.get(key) is not None), None)
        try:
            rates[key] = None if value is None else Decimal(str(value)) * 1_000_000
        except InvalidOperation:
            notes.append(Note(f"{where}.{key}", "unmapped", "not a number"))
            rates[key] = None
    if rates["input_cost_per_token"] is None and rates["output_cost_per_token"] is None:
        return
    deployment["price"] = {
        "input_per_mtok": _decimal(rates["input_cost_per_token"] or Decimal(0)),
        "output_per_mtok": _decimal(rates["output_cost_per_token"] or Decimal(0)),
    }


def _model_info(deployment: dict[str, Any], info: dict[str, Any], path: str, notes: list[Note]) -> None:
    for key, value in info.items():
        if key in ("id", "mode", "input_cost_per_token", "output_cost_per_token"):
            continue
        if key in ("max_input_tokens", "max_output_tokens") and isinstance(value, int) and value > 0:
            deployment["context_window" if key == "max_input_tokens" else "max_output_tokens"] = value
        elif key == "base_model":
            notes.append(
                Note(f"{path}.base_model", "unmapped", "prices follow the deployment's model; give it a price:")
            )
        else:
            notes.append(Note(f"{path}.{key}", "unmapped", "not used by Breakwater"))


def _leftovers(params: dict[str, Any], where: str, notes: list[Note]) -> None:
    for key in params:
        if key in _HANDLED:
            continue
        if key in _REQUEST_DEFAULTS:
            message = "a default request parameter: Breakwater sends what the client sends (see routes.*.max_tokens)"
        elif key == "max_retries":
            message = "retries are per route in Breakwater (routes.*.retry.max_attempts)"
        else:
            message = "not used by Breakwater"
        notes.append(Note(f"{where}.{key}", "unmapped", message))
    for key in ("rpm", "tpm"):
        if params.get(key) is not None:
            notes.append(
                Note(
                    f"{where}.{key}",
                    "approximated",
                    "used as the deployment's weight only; Breakwater limits rpm/tpm per route and per key",
                )
            )


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else float(value)


def _decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _unique(name: str, taken: Mapping[str, Any]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}-{n}" in taken:
        n += 1
    return f"{name}-{n}"
