"""Prompt versions compiled once per config, and rendered with a request's variables.

Rendering checks the variables against the version's declarations first, so every refusal is
an ``InvalidRequest`` (400 in the caller's wire format) naming the variable
(``param: prompt.variables.NAME``), and only then joins the compiled segments: no template
code runs, whatever the values are (``core/templates.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from breakwater.core.config.prompts import Prompt, PromptVariable, PromptVersion
from breakwater.core.errors import InvalidRequest
from breakwater.core.templates import Placeholder, Segment, VariableType, as_text, check_value, compile_template
from breakwater.core.types import Message, Role, TextPart

#: a client's variable name is quoted in an error up to this many characters
_NAME_SHOWN = 64


@dataclass(frozen=True, slots=True)
class Variable:
    type: VariableType
    values: tuple[str, ...]
    max_length: int | None
    #: the default as it appears in the prompt (``None``: the variable is required)
    default: str | None

    @classmethod
    def of(cls, spec: PromptVariable) -> Variable:
        default = None if spec.default is None else as_text(spec.type, spec.default)
        return cls(spec.type, tuple(spec.values), spec.max_length, default)


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    """One version of a prompt, ready to render."""

    name: str
    version: int
    messages: tuple[tuple[Role, tuple[Segment, ...]], ...]
    variables: Mapping[str, Variable]
    #: the messages' texts for a request that gives no variables, when every variable has a
    #: default (rendered once: the common case of a pinned prompt costs no joining)
    default_texts: tuple[str, ...] | None = None

    @classmethod
    def of(cls, name: str, version: int, spec: PromptVersion) -> CompiledVersion:
        messages = tuple((m.role, compile_template(m.content)) for m in spec.messages)
        variables = {k: Variable.of(v) for k, v in spec.variables.items()}
        compiled = cls(name, version, messages, variables)
        if all(v.default is not None for v in variables.values()):
            compiled = cls(name, version, messages, variables, compiled.texts({}))
        return compiled

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def values(self, given: Mapping[str, Any]) -> dict[str, str]:
        """Each variable's text: the request's value, checked, or the default.

        Raises:
            InvalidRequest: a variable missing, not declared, of the wrong type or too long.
        """
        declared = self.variables
        for key in given:
            if key not in declared:
                expected = ", ".join(declared) or "none"
                raise _refused(self, key, f"unknown variable (this version takes: {expected})")
        texts: dict[str, str] = {}
        for key, var in declared.items():
            if key in given:
                value = given[key]
                problem = check_value(var.type, value, values=var.values, max_length=var.max_length)
                if problem is not None:
                    raise _refused(self, key, problem)
                texts[key] = as_text(var.type, value)
            elif var.default is not None:
                texts[key] = var.default
            else:
                raise _refused(self, key, "missing: this variable has no default")
        return texts

    def texts(self, given: Mapping[str, Any]) -> tuple[str, ...]:
        """Each message's text with the variables filled in (see ``values`` for what is refused)."""
        if not given and self.default_texts is not None:
            return self.default_texts
        values = self.values(given)
        return tuple(
            "".join([values[s.name] if isinstance(s, Placeholder) else s for s in segments])
            for _, segments in self.messages
        )

    def render(self, given: Mapping[str, Any]) -> list[Message]:
        """The version's messages with the variables filled in (see ``values`` for what is refused)."""
        texts = self.texts(given)
        return [Message(role, [TextPart(text)]) for (role, _), text in zip(self.messages, texts, strict=True)]


def _refused(version: CompiledVersion, key: str, problem: str) -> InvalidRequest:
    shown = key if len(key) <= _NAME_SHOWN else key[:_NAME_SHOWN] + "..."
    param = f"prompt.variables.{shown}"
    return InvalidRequest(f"'{param}' ({version.label}): {problem}", param=param, code="invalid_prompt_variable")


@dataclass(frozen=True, slots=True)
class CompiledPrompt:
    """A named prompt: its versions and the one a request that names none gets."""

    name: str
    versions: Mapping[int, CompiledVersion]
    default: int

    @classmethod
    def of(cls, name: str, spec: Prompt) -> CompiledPrompt:
        versions = {n: CompiledVersion.of(name, n, v) for n, v in sorted(spec.versions.items())}
        return cls(name, versions, spec.default_version)


def compile_prompts(prompts: Mapping[str, Prompt]) -> dict[str, CompiledPrompt]:
    """Every prompt of a config, compiled (once per runtime)."""
    return {name: CompiledPrompt.of(name, spec) for name, spec in prompts.items()}
