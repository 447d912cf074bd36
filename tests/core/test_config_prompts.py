"""The ``prompts`` section and route pins (core/config/prompts.py, parse.py): every problem with its
key path; and docs/prompts.md's examples are valid configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from breakwater.core.config import ConfigError, build_config, parse_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "prompts.md"

BASE = """
providers: {m: {type: mock}}
deployments: {d: {provider: m, model: x}}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + text, "t.yaml")
    return [str(p) for p in info.value.problems]


def test_prompt_problems_are_reported_with_their_paths() -> None:
    problems = _problems(
        """
routes:
  a: {deployments: [d], prompt: triage@4}
  b: {deployments: [d], prompt: nope}
  c: {deployments: [d], prompt: "triage@x"}
  "openai/*": {provider: m, prompt: triage}
prompts:
  triage:
    current: 7
    versions:
      1:
        messages:
          - {role: system, content: "Triage for {{ product }}."}
          - {role: user, content: "{{ ticket-id }}"}
          - {role: tool, content: "x"}
        variables:
          product: {type: integer, default: "three"}
          level: {type: enum}
          size: {type: number, max_length: 3}
      0:
        messages: [{role: user, content: "{{ undeclared }}"}]
  "bad name!":
    versions: {1: {messages: [{role: user, content: hi}], variables: {unused: {}}}}
"""
    )
    assert problems == [
        "prompts.triage.versions.1.messages[1].content: '{{' at character 0 opens no placeholder: "
        "write {{ name }}, or {{ '{{' }} for literal braces",
        "prompts.triage.versions.1.messages[2].role: Input should be 'system', 'developer', 'user' or 'assistant'",
        "prompts.triage.versions.1.variables.product: default: expected an integer",
        "prompts.triage.versions.1.variables.level: an enum variable needs its 'values'",
        "prompts.triage.versions.1.variables.size: only a string variable takes 'max_length'",
        "prompts.triage.versions.0: the key: Input should be greater than or equal to 1",
        "prompts.triage.versions.0: placeholders without a declared variable: undeclared",
        "prompts.bad name!.versions.1: variables no message uses: unused",
        "prompts.bad name!: a prompt name is letters, digits, '_', '.' and '-' (at most 64)",
        "routes.a.prompt: prompt 'triage' has no version 4 (versions: 1, 0)",
        "routes.b.prompt: unknown prompt 'nope' (expected one of: bad name!, triage)",
        "routes.c.prompt: expected 'name' or 'name@VERSION', got 'triage@x'",
        "routes.openai/*.prompt: a wildcard route cannot pin a prompt",
    ]


def test_current_must_be_a_version() -> None:
    problems = _problems(
        """
prompts:
  p:
    current: 3
    versions: {1: {messages: [{role: user, content: hi}]}}
"""
    )
    assert problems == ["prompts.p: current: no version 3 (versions: 1)"]


def test_the_default_version_is_current_else_the_highest() -> None:
    config = parse_config(
        BASE
        + """
prompts:
  latest: {versions: {1: {messages: [{role: user, content: a}]}, 2: {messages: [{role: user, content: b}]}}}
  held:
    current: 1
    versions: {1: {messages: [{role: user, content: a}]}, 2: {messages: [{role: user, content: b}]}}
"""
    )
    assert config.prompts["latest"].default_version == 2
    assert config.prompts["held"].default_version == 1


def test_docs_examples_are_valid() -> None:
    """Every ``yaml`` block of docs/prompts.md is a valid config (blocks without providers get the base ones)."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        data = yaml.safe_load(block)
        build_config({**yaml.safe_load(BASE), **data}, "docs/prompts.md")
