"""Reading eval suites: every section, file:// prompts and tests, list variables, the registry;
every mistake names the file and the key path, and keys outside the subset are refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.core.config.parse import parse_config
from breakwater.engine.evals.asserts import SuiteError
from breakwater.engine.evals.providers import route_provider
from breakwater.engine.evals.suite import load_suite


def write(tmp_path: Path, suite: dict[str, Any] | str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(suite if isinstance(suite, str) else yaml.safe_dump(suite), encoding="utf-8")
    return path


def test_a_whole_suite_becomes_cases(tmp_path: Path) -> None:
    """Prompts x tests, defaultTest's vars and assertions first, thresholds, options.provider."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "chat.json").write_text(
        '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of {{ country }}?"}]'
    )
    (tmp_path / "prompts" / "plain.txt").write_text("Name the capital of {{country}}.")
    (tmp_path / "long.txt").write_text("A very long country name")
    path = write(
        tmp_path,
        {
            "description": "capitals",
            "prompts": ["file://prompts/chat.json", {"id": "file://prompts/plain.txt", "label": "plain"}],
            "providers": [
                "breakwater:fast",
                {
                    "id": "openai:chat:gpt-x",
                    "label": "remote",
                    "config": {"apiBaseUrl": "http://127.0.0.1:4000/v1", "temperature": 0},
                },
            ],
            "defaultTest": {
                "vars": {"tone": "dry"},
                "assert": [{"type": "cost", "threshold": 0.01}],
                "options": {"provider": "breakwater:judge"},
                "threshold": 0.5,
            },
            "evaluateOptions": {"maxConcurrency": 3},
            "tests": [
                {
                    "description": "france",
                    "vars": {"country": "France"},
                    "assert": [{"type": "icontains", "value": "paris", "weight": 2}],
                },
                {"vars": {"country": "file://long.txt"}, "threshold": 0.9},
            ],
        },
    )
    suite = load_suite(path)
    assert suite.description == "capitals" and suite.max_concurrency == 3
    assert [p.label for p in suite.providers] == ["breakwater:fast", "remote"]
    remote = suite.providers[1]
    assert remote.kind == "openai" and remote.name == "gpt-x" and remote.params == {"temperature": 0}
    assert remote.base_url == "http://127.0.0.1:4000/v1" and remote.key_env == "OPENAI_API_KEY"
    assert len(suite.cases) == 4  # 2 tests x 2 prompts
    first = suite.cases[0]
    assert first.body == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
    }
    assert [a.type for a in first.assertions] == ["cost", "icontains"] and first.assertions[1].weight == 2
    assert first.threshold == 0.5 and first.judge == route_provider("judge") and first.path == "tests[0]"
    assert suite.cases[1].prompt == "plain"
    assert suite.cases[1].body == {"messages": [{"role": "user", "content": "Name the capital of France."}]}
    assert suite.cases[3].body["messages"][0]["content"] == "Name the capital of A very long country name."
    assert suite.cases[3].threshold == 0.9 and suite.cases[3].vars["tone"] == "dry"
    assert len({c.key for c in suite.cases}) == 4
    assert load_suite(path).cases[2].key == suite.cases[2].key  # stable across reads


def test_inline_prompts_chat_json_list_variables_and_assertion_values(tmp_path: Path) -> None:
    """An inline JSON chat prompt, list variables expanded to every combination, values rendered."""
    path = write(
        tmp_path,
        {
            "prompts": ['[{"role": "user", "content": "{{ a }} and {{ b }}"}]', "Say {{ a }}"],
            "tests": [
                {
                    "vars": {"a": ["x", "y"], "b": [1, True], "want": "{{"},
                    "assert": [{"type": "contains", "value": "{{ a }}"}],
                }
            ],
        },
    )
    suite = load_suite(path)
    assert len(suite.cases) == 8
    contents = [c.body["messages"][0]["content"] for c in suite.cases if c.prompt.startswith("[")]
    assert contents == ["x and 1", "x and true", "y and 1", "y and true"]
    assert [c.assertions[0].value for c in suite.cases[:2]] == ["x", "x"]
    assert "Say y" in [c.body["messages"][0]["content"] for c in suite.cases]


def test_repeated_cases_get_distinct_keys(tmp_path: Path) -> None:
    """Two identical tests are two cases with two keys (a baseline tells them apart)."""
    suite = load_suite(
        write(tmp_path, {"prompts": ["Hi"], "tests": [{"description": "same"}, {"description": "same"}]})
    )
    assert [c.key.endswith("-2") for c in suite.cases] == [False, True]


def test_no_tests_asks_each_prompt_once_and_tests_may_come_from_a_file(tmp_path: Path) -> None:
    """promptfoo's shapes: no tests at all, and tests: file://tests.yaml."""
    suite = load_suite(write(tmp_path, {"prompts": "Hello", "providers": "breakwater:chat"}))
    assert len(suite.cases) == 1 and suite.cases[0].body["messages"][0]["content"] == "Hello"
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump([{"vars": {"x": "1"}}, {"vars": {"x": "2"}}]))
    suite = load_suite(write(tmp_path, {"prompts": ["{{x}}"], "tests": "file://tests.yaml"}))
    assert [c.body["messages"][0]["content"] for c in suite.cases] == ["1", "2"]


def test_a_registry_prompt_sends_a_reference_with_its_declared_variables(tmp_path: Path) -> None:
    """breakwater-prompt:NAME@VERSION: the gateway renders it; known variables only, when the config is given."""
    config = parse_config(
        """
prompts:
  greet:
    versions:
      2:
        messages: [{role: user, content: "Hi {{ name }}"}]
        variables: {name: {type: string}}
"""
    )
    path = write(
        tmp_path,
        {"prompts": ["breakwater-prompt:greet@2"], "tests": [{"vars": {"name": "Ada", "expected": "Ada"}}]},
    )
    assert load_suite(path).cases[0].body == {
        "messages": [],
        "prompt": {"id": "greet", "version": 2, "variables": {"name": "Ada", "expected": "Ada"}},
    }
    body = load_suite(path, registry=config.prompts).cases[0].body
    assert body["prompt"] == {"id": "greet", "version": 2, "variables": {"name": "Ada"}}
    with pytest.raises(SuiteError, match=r"suite.yaml: prompts\[0\]: the configuration has no prompt 'other'"):
        load_suite(write(tmp_path, {"prompts": ["breakwater-prompt:other"]}), registry=config.prompts)


MISTAKES: list[tuple[Any, str]] = [
    (
        {"prompts": ["x"], "tests": [{"assert": [{"type": "nope"}]}]},
        r"tests\[0\]\.assert\[0\]\.type: unsupported assertion type 'nope'",
    ),
    (
        {"prompts": ["x"], "tests": [{}, {"assert": [{"type": "contains-any", "value": "a"}]}]},
        r"tests\[1\]\.assert\[0\]\.value: must be a list",
    ),
    (
        {"prompts": ["x"], "defaultTest": {"assert": [{"type": "javascript", "value": "1"}]}},
        r"defaultTest\.assert\[0\]\.type: a javascript assertion runs code",
    ),
    (
        {"prompts": ["x"], "tests": [{"assert": [{"type": "not-python", "value": "1"}]}]},
        r"tests\[0\]\.assert\[0\]\.type: a not-python assertion runs code",
    ),
    (
        {"prompts": ["x"], "tests": [{"assert": [{"type": "equals", "value": "1", "transform": "x"}]}]},
        r"assert\[0\]\.transform: runs code",
    ),
    (
        {"prompts": ["x"], "tests": [{"assert": [{"type": "llm-rubric", "value": "1", "provider": "x"}]}]},
        r"assert\[0\]\.provider: not supported here",
    ),
    (
        {"prompts": ["x"], "tests": [{"options": {"transform": "output.trim()"}}]},
        r"tests\[0\]\.options\.transform: runs code",
    ),
    ({"prompts": ["x"], "scenarios": []}, r"suite.yaml: scenarios: not supported"),
    ({"prompts": ["x"], "redteam": {}}, r"redteam: red-teaming is not supported"),
    ({"prompts": ["x"], "nunjucksFilters": {}}, r"nunjucksFilters: a template filter runs code"),
    ({"prompts": ["x"], "tests": [{"vars": {}, "foo": 1}]}, r"tests\[0\]\.foo: not a supported key"),
    ({"prompts": ["x"], "tests": [{"transform": "x"}]}, r"tests\[0\]\.transform: runs code"),
    ({"prompts": ["Hi {{ name | upper }}"]}, r"prompts\[0\]: .*placeholders only"),
    (
        {"prompts": ["Hi {{ name }}"], "tests": [{"vars": {"other": 1}}]},
        r"tests\[0\]\.vars: prompts\[0\] uses \{\{ name \}\}",
    ),
    (
        {"prompts": ["x"], "tests": [{"assert": [{"type": "equals", "value": "{{ missing }}"}]}]},
        r"assert\[0\]\.value: the value uses \{\{ missing \}\}",
    ),
    ({"prompts": ["file://prompt.py:make"]}, r"prompts\[0\]: 'file://prompt.py:make': a prompt function runs code"),
    ({"prompts": ["file://absent.txt"]}, r"prompts\[0\]: cannot read file://absent.txt"),
    (
        {"prompts": ["x"], "providers": ["anthropic:messages:claude"]},
        r"providers\[0\]: unsupported provider 'anthropic:messages:claude'",
    ),
    ({"prompts": ["x"], "providers": ["openai:embedding:e"]}, r"providers\[0\]: openai:embedding is not supported"),
    (
        {"prompts": ["x"], "providers": [{"id": "openai:chat:m", "config": {"apiKey": "sk-1"}}]},
        r"providers\[0\]\.config\.apiKey: keys are not written",
    ),
    (
        {"prompts": ["x"], "providers": [{"id": "breakwater:r", "config": {"bogus": 1}}]},
        r"providers\[0\]\.config\.bogus: not a supported provider setting",
    ),
    (
        {"prompts": ["x"], "providers": [{"id": "breakwater:r", "transform": "x"}]},
        r"providers\[0\]\.transform: not a supported provider key",
    ),
    (
        {"prompts": ["x"], "evaluateOptions": {"maxConcurrency": 0}},
        r"evaluateOptions\.maxConcurrency: must be an integer",
    ),
    ({"prompts": ["x"], "evaluateOptions": {"repeat": 2}}, r"evaluateOptions\.repeat: not a supported key"),
    ({"prompts": ["x"], "tests": [{"threshold": 2}]}, r"tests\[0\]\.threshold: must be a number between 0 and 1"),
    ({"prompts": ["{{ a }}"], "tests": [{"vars": {"a": []}}]}, r"tests\[0\]\.vars: a list variable is empty"),
    (
        {"prompts": ["{{ a }}{{ b }}"], "tests": [{"vars": {"a": list(range(40)), "b": list(range(40))}}]},
        r"expand to 1600 cases",
    ),
    ({"tests": []}, r"suite.yaml: prompts: required"),
    ({"prompts": ["x"], "tests": {"a": 1}}, r"tests: a list of tests"),
    ("prompts: [x\n", r"suite.yaml: line \d+, column \d+: not valid YAML"),
    ("- just a list", r"suite.yaml: a suite is a mapping"),
]


@pytest.mark.parametrize(("suite", "says"), MISTAKES)
def test_each_mistake_names_the_file_and_the_path(tmp_path: Path, suite: Any, says: str) -> None:
    """The message starts with the file's name, then the key path, then what is wrong."""
    with pytest.raises(SuiteError) as caught:
        load_suite(write(tmp_path, suite))
    assert str(caught.value).startswith(str(tmp_path / "suite.yaml"))
    assert caught.value.path.startswith(str(tmp_path / "suite.yaml"))
    import re

    assert re.search(says, str(caught.value)), str(caught.value)


def test_an_unreadable_suite_file_says_so(tmp_path: Path) -> None:
    """A missing file is a SuiteError naming it."""
    with pytest.raises(SuiteError, match=r"absent\.yaml: cannot read the suite"):
        load_suite(tmp_path / "absent.yaml")
