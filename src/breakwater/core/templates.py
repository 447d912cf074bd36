"""The prompt template language: text with ``{{ name }}`` placeholders, and typed variable values.

Deliberately tiny (docs/prompts.md says why): a template is literal text and placeholders, nothing
else. There are no expressions, filters, attribute or item access, conditionals or loops, so
rendering cannot run code, read anything but the variables it was given, or take longer than
copying its text. A template compiles once to a tuple of segments (a literal string, or a
``Placeholder``) and renders by joining them.

- ``{{ name }}`` (spaces optional): the variable's value; a name is ``[A-Za-z_][A-Za-z0-9_]*``;
- ``{{ '{{' }}`` and ``{{ '}}' }}``: literal double braces;
- any other ``{{`` is an error, so a typo (``{{ ticket-id }}``) never reaches a model as text.

A variable's value is typed (``string``, ``integer``, ``number``, ``boolean``, ``enum``);
``check_value`` says what is wrong with one, and ``as_text`` is how it appears in the prompt.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

VariableType = Literal["string", "integer", "number", "boolean", "enum"]

_TOKEN = re.compile(r"\{\{\s*(?:([A-Za-z_][A-Za-z0-9_]*)|'(\{\{|\}\})')\s*\}\}")
_OPEN = "{{"


@dataclass(frozen=True, slots=True)
class Placeholder:
    """Where a variable's value goes."""

    name: str


Segment = str | Placeholder


class TemplateError(ValueError):
    """The template text is not well formed (``offset``: the character where the problem starts)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def compile_template(text: str) -> tuple[Segment, ...]:
    """The template as segments: literal strings and placeholders, in order (adjacent literals merged).

    Raises:
        TemplateError: a ``{{`` that opens no placeholder.
    """
    segments: list[Segment] = []
    literal: list[str] = []
    pos = 0
    while True:
        start = text.find(_OPEN, pos)
        if start < 0:
            literal.append(text[pos:])
            break
        literal.append(text[pos:start])
        match = _TOKEN.match(text, start)
        if match is None:
            raise TemplateError(
                f"'{{{{' at character {start} opens no placeholder: write {{{{ name }}}}, or {{{{ '{{{{' }}}} for literal braces",
                start,
            )
        name, escaped = match.group(1), match.group(2)
        if escaped is not None:
            literal.append(escaped)
        else:
            segments.append("".join(literal))
            literal = []
            segments.append(Placeholder(name))
        pos = match.end()
    segments.append("".join(literal))
    return tuple(s for s in segments if s != "")


def placeholders(segments: tuple[Segment, ...]) -> list[str]:
    """The variable names a compiled template uses, in order of first use."""
    return list(dict.fromkeys(s.name for s in segments if isinstance(s, Placeholder)))


def check_value(
    kind: VariableType, value: Any, *, values: tuple[str, ...] = (), max_length: int | None = None
) -> str | None:
    """What is wrong with ``value`` for a variable of this type, or ``None`` when it fits.

    JSON has one number type: ``integer`` takes a number with no fraction (``3``, ``3.0``),
    ``number`` any finite number; neither takes a boolean.
    """
    if kind == "string":
        if not isinstance(value, str):
            return "expected a string"
        if max_length is not None and len(value) > max_length:
            return f"too long: {len(value)} characters, at most {max_length}"
        return None
    if kind == "enum":
        if not isinstance(value, str) or value not in values:
            return f"expected one of: {', '.join(values)}"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else "expected a boolean"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected {'an integer' if kind == 'integer' else 'a number'}"
    if isinstance(value, float) and not math.isfinite(value):
        return "expected a finite number"
    if kind == "integer" and isinstance(value, float) and not value.is_integer():
        return "expected an integer"
    return None


def as_text(kind: VariableType, value: Any) -> str:
    """A checked value as it appears in the prompt (booleans as JSON spells them)."""
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "integer":
        return str(int(value))
    return str(value)
