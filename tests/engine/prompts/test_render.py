"""The template language and rendering with typed variables (core/templates.py, engine/prompts/render.py):
placeholders and their escapes, every kind of refusal naming the variable, and a property test that no
variables whatever make rendering fail with anything but that 400."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakwater.core.config.prompts import PromptVersion
from breakwater.core.errors import InvalidRequest
from breakwater.core.templates import Placeholder, TemplateError, compile_template, placeholders
from breakwater.engine.prompts.render import CompiledVersion


def test_a_template_is_literals_and_placeholders() -> None:
    assert compile_template("Hi {{ name }}, {{x}}!") == ("Hi ", Placeholder("name"), ", ", Placeholder("x"), "!")
    assert compile_template("{{ '{{' }} not a var {{ '}}' }}") == ("{{ not a var }}",)
    assert compile_template("single { braces } are text") == ("single { braces } are text",)
    assert placeholders(compile_template("{{ a }}{{ b }}{{ a }}")) == ["a", "b"]


@pytest.mark.parametrize(
    "text", ["{{ ticket-id }}", "{{ a.b }}", "{{ a | upper }}", "{{ __class__.__mro__ }}", "{{", "{{ }}", "{{ 'x' }}"]
)
def test_anything_else_in_double_braces_is_refused_where_it_is(text: str) -> None:
    """No expressions, attributes, filters or stray braces: a config error with the character offset."""
    with pytest.raises(TemplateError) as caught:
        compile_template("ok " + text)
    assert caught.value.offset == 3


VERSION = PromptVersion.model_validate(
    {
        "messages": [
            {"role": "system", "content": "Product {{ product }}; {{ count }} x {{ ratio }}; on: {{ on }}"},
            {"role": "user", "content": "[{{ level }}] {{ text }}"},
        ],
        "variables": {
            "product": {"default": "Breakwater"},
            "count": {"type": "integer", "default": 2},
            "ratio": {"type": "number", "default": 0.25},
            "on": {"type": "boolean", "default": True},
            "level": {"type": "enum", "values": ["low", "high"]},
            "text": {"type": "string", "max_length": 10},
        },
    }
)
COMPILED = CompiledVersion.of("triage", 3, VERSION)


def test_render_fills_values_and_defaults() -> None:
    messages = COMPILED.render({"level": "high", "text": "{{ x }}", "count": 5.0, "on": False})
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[0].text() == "Product Breakwater; 5 x 0.25; on: false"
    assert messages[1].text() == "[high] {{ x }}"  # a value is never a template


@pytest.mark.parametrize(
    ("variables", "param", "says"),
    [
        ({"level": "low"}, "prompt.variables.text", "missing"),
        ({"level": "low", "text": "a", "extra": 1}, "prompt.variables.extra", "unknown variable"),
        ({"level": "low", "text": ["a"]}, "prompt.variables.text", "expected a string"),
        ({"level": "low", "text": "a" * 11}, "prompt.variables.text", "too long: 11 characters, at most 10"),
        ({"level": "mid", "text": "a"}, "prompt.variables.level", "expected one of: low, high"),
        ({"level": "low", "text": "a", "count": "2"}, "prompt.variables.count", "expected an integer"),
        ({"level": "low", "text": "a", "ratio": float("nan")}, "prompt.variables.ratio", "expected a finite number"),
        ({"level": "low", "text": "a", "on": 1}, "prompt.variables.on", "expected a boolean"),
        ({"level": "low", "text": "a", "k" * 200: 1}, "prompt.variables." + "k" * 64 + "...", "unknown variable"),
    ],
)
def test_each_refusal_names_the_variable(variables: dict[str, Any], param: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        COMPILED.render(variables)
    assert caught.value.param == param
    assert says in caught.value.message and "triage@3" in caught.value.message


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
NAMES = st.sampled_from(["product", "count", "ratio", "on", "level", "text"]) | st.text(max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(NAMES, JSON, max_size=8))
def test_arbitrary_variables_render_or_are_refused_with_400(variables: dict[str, Any]) -> None:
    """Whatever a client sends as variables, rendering returns messages or raises InvalidRequest (a
    400 naming a variable), nothing else."""
    try:
        messages = COMPILED.render(variables)
    except InvalidRequest as exc:
        assert exc.param is not None and exc.param.startswith("prompt.variables.")
    else:
        assert len(messages) == 2 and all(isinstance(m.text(), str) for m in messages)
