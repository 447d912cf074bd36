"""A suite's prompts: text, chat messages from a file, or a version of the gateway's prompt registry;
``{{ name }}`` templates compiled by ``core/templates.py`` and filled with a test's variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from breakwater.core.config.prompts import parse_ref
from breakwater.core.templates import Placeholder, Segment, TemplateError, compile_template, placeholders
from breakwater.engine.evals.asserts import SuiteError

#: the prefix of a prompt that names a version of the gateway's prompt registry
REGISTRY_PREFIX = "breakwater-prompt:"
ROLES = ("system", "developer", "user", "assistant")
CODE = "runs code, and suites are declarative"


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """A prompt: template messages, or a version of the gateway's prompt registry."""

    label: str
    messages: tuple[tuple[str, tuple[Segment, ...]], ...] = ()
    #: ``(name, version)`` for ``breakwater-prompt:NAME@VERSION`` (version ``None``: the current)
    registry: tuple[str, int | None] | None = None


def read_relative(base: Path, ref: str, path: str) -> str:
    """The text of ``file://PATH``, relative to ``base`` (Raises: SuiteError)."""
    target = base / ref.removeprefix("file://")
    try:
        return target.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteError(path, f"cannot read {ref}: {exc.strerror or exc}") from None


def prompt_spec(raw: Any, path: str, base: Path) -> PromptSpec:
    label: str | None = None
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - {"raw", "id", "label"})
        if unknown:
            raise SuiteError(f"{path}.{unknown[0]}", "not a supported prompt key (supported: raw, id, label)")
        label = raw.get("label")
        if label is not None and not isinstance(label, str):
            raise SuiteError(f"{path}.label", "must be a string")
        if ("raw" in raw) == ("id" in raw):
            raise SuiteError(path, "a prompt mapping has one of 'raw' (its text) or 'id' (file:// or a registry name)")
        path = f"{path}.raw" if "raw" in raw else f"{path}.id"
        raw = raw.get("raw", raw.get("id"))
    if not isinstance(raw, str) or not raw:
        raise SuiteError(path, "a prompt is text, file://PATH, breakwater-prompt:NAME@VERSION or {raw|id, label}")
    if raw.startswith(REGISTRY_PREFIX):
        ref = parse_ref(raw.removeprefix(REGISTRY_PREFIX))
        if ref is None:
            raise SuiteError(path, f"{raw!r}: expected {REGISTRY_PREFIX}NAME or {REGISTRY_PREFIX}NAME@VERSION")
        return PromptSpec(label or raw, registry=ref)
    if raw.startswith("file://"):
        name = raw.removeprefix("file://")
        if ":" in name or name.endswith((".py", ".js", ".mjs", ".cjs", ".ts")):
            raise SuiteError(path, f"{raw!r}: a prompt function {CODE}")
        text = read_relative(base, raw, path)
        if name.endswith((".json", ".yaml", ".yml")):
            try:
                loaded = yaml.safe_load(text)  # YAML reads JSON too
            except yaml.YAMLError as exc:
                raise SuiteError(path, f"{raw}: not valid JSON or YAML: {exc}") from None
            return PromptSpec(label or raw, _messages(loaded, f"{path} ({raw})"))
        return PromptSpec(label or raw, _chat_or_text(text, path))
    return PromptSpec(label or (raw if len(raw) <= 60 else raw[:57] + "..."), _chat_or_text(raw, path))


def _chat_or_text(text: str, path: str) -> tuple[tuple[str, tuple[Segment, ...]], ...]:
    """A JSON list of chat messages (promptfoo's chat prompt), else one user message."""
    if text.lstrip().startswith("["):
        try:
            loaded = orjson.loads(text)
        except orjson.JSONDecodeError:
            loaded = None
        if isinstance(loaded, list):
            return _messages(loaded, path)
    return (("user", template(text, path)),)


def _messages(raw: Any, path: str) -> tuple[tuple[str, tuple[Segment, ...]], ...]:
    if not isinstance(raw, list) or not raw:
        raise SuiteError(path, "chat messages are a non-empty list of {role, content}")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise SuiteError(f"{path}[{i}]", f"a message is {{role, content}}: role one of {', '.join(ROLES)}")
        out.append((str(m["role"]), template(m["content"], f"{path}[{i}].content")))
    return tuple(out)


def template(text: str, path: str) -> tuple[Segment, ...]:
    try:
        return compile_template(text)
    except TemplateError as exc:
        raise SuiteError(path, f"{exc} (templates take {{{{ name }}}} placeholders only: no filters or tags)") from None


def render(segments: tuple[Segment, ...], texts: Mapping[str, str], path: str, user: str) -> str:
    missing = [name for name in placeholders(segments) if name not in texts]
    if missing:
        raise SuiteError(path, f"{user} uses {{{{ {missing[0]} }}}}, which this test's vars do not set")
    return "".join(texts[s.name] if isinstance(s, Placeholder) else s for s in segments)
