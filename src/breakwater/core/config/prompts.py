"""The ``prompts`` section: named prompt templates, each with numbered versions (docs/prompts.md).

A request names a prompt (``prompt: {id, version, variables}`` in its body) or its route pins
one (``routes.X.prompt: name@3``); the gateway renders the version's messages with the request's
variables and puts them before the request's own messages. A version is never edited in place:
a change is a new number, so ``name@3`` means the same text for as long as it exists.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from breakwater.core.config.base import _Model
from breakwater.core.templates import TemplateError, VariableType, check_value, compile_template, placeholders

#: a prompt's name: what requests and routes refer to it by
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REF = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(?:@([1-9][0-9]{0,8}))?$")


def parse_ref(text: str) -> tuple[str, int | None] | None:
    """``name@3`` -> ``("name", 3)``, ``name`` -> ``("name", None)``; ``None`` when malformed."""
    match = _REF.match(text)
    if match is None:
        return None
    return match.group(1), None if match.group(2) is None else int(match.group(2))


#: versions are numbered from 1
VersionNumber = Annotated[int, Field(ge=1, le=999_999_999)]


class PromptVariable(_Model):
    """A typed variable of a prompt version."""

    type: VariableType = "string"
    #: ``enum``: the values allowed
    values: list[str] = Field(default_factory=list)
    #: used when a request gives none (a variable without a default is required)
    default: str | int | float | bool | None = None
    #: ``string``: the most characters a value may have
    max_length: int | None = Field(default=None, ge=1)
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PromptVariable:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum variable needs its 'values'")
        if self.type != "enum" and self.values:
            raise ValueError("only an enum variable takes 'values'")
        if self.type != "string" and self.max_length is not None:
            raise ValueError("only a string variable takes 'max_length'")
        if self.default is not None:
            problem = check_value(self.type, self.default, values=tuple(self.values), max_length=self.max_length)
            if problem is not None:
                raise ValueError(f"default: {problem}")
        return self


class PromptMessage(_Model):
    """One message of a prompt version: its role and template text."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str = Field(min_length=1)

    @field_validator("content")
    @classmethod
    def _well_formed(cls, value: str) -> str:
        try:
            compile_template(value)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return value


class PromptVersion(_Model):
    """One version of a prompt: its messages and the variables they use."""

    messages: list[PromptMessage] = Field(min_length=1)
    variables: dict[str, PromptVariable] = Field(default_factory=dict)
    description: str | None = None

    @model_validator(mode="after")
    def _variables_match(self) -> PromptVersion:
        used: dict[str, None] = {}
        for message in self.messages:
            used.update(dict.fromkeys(placeholders(compile_template(message.content))))
        undeclared = [name for name in used if name not in self.variables]
        if undeclared:
            raise ValueError(f"placeholders without a declared variable: {', '.join(undeclared)}")
        unused = [name for name in self.variables if name not in used]
        if unused:
            raise ValueError(f"variables no message uses: {', '.join(unused)}")
        return self


class Prompt(_Model):
    """A named prompt: its versions by number, and which one a request that names none gets."""

    versions: dict[VersionNumber, PromptVersion] = Field(min_length=1)
    #: the version for requests (and pins) that name none; default: the highest
    current: int | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _current_exists(self) -> Prompt:
        if self.current is not None and self.current not in self.versions:
            raise ValueError(
                f"current: no version {self.current} (versions: {', '.join(map(str, sorted(self.versions)))})"
            )
        return self

    @property
    def default_version(self) -> int:
        """``current``, else the highest version."""
        return self.current if self.current is not None else max(self.versions)
