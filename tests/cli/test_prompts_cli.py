"""``breakwater prompts list | show | diff`` on a config file (cli/prompts.py): the diff's verdict on
the provider's cacheable prefix (kept, shortened, broken, uncached) and its exit code, which a CI
step reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from breakwater.cli.main import main

#: a long static system prompt: about 3,400 tokens (o200k_base), well past the 1,024-token minimum
POLICY = [f"Rule {i}: answer the customer politely and cite the relevant policy section {i}." for i in range(200)]


def _system(lines: list[str], tail: str) -> dict[str, Any]:
    return {"role": "system", "content": "\n".join(lines) + "\n" + tail}


def _config(versions: dict[int, Any], name: str = "support") -> dict[str, Any]:
    return {
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "x"}},
        "routes": {"chat": {"deployments": ["d"]}},
        "prompts": {
            name: {"versions": versions},
            "short": {
                "versions": {
                    1: {"messages": [{"role": "system", "content": "Be brief."}]},
                    2: {"messages": [{"role": "system", "content": "Be very brief."}]},
                }
            },
        },
    }


PRODUCT = {"product": {"type": "string", "default": "Breakwater"}}
ticket_turn = {"role": "user", "content": "Ticket: {{ ticket }}"}
TICKET = {"ticket": {"type": "string"}}

VERSIONS: dict[int, Any] = {
    1: {"messages": [_system(POLICY, "Product: {{ product }}"), ticket_turn], "variables": {**PRODUCT, **TICKET}},
    # only after the first placeholder: the static prefix is the same
    2: {
        "messages": [_system(POLICY, "Product: {{ product }}. Be brief."), ticket_turn],
        "variables": {**PRODUCT, **TICKET},
    },
    # a date before the policy: the static prefix is a few tokens long
    3: {
        "messages": [_system(["Today is {{ date }}.", *POLICY], "Product: {{ product }}"), ticket_turn],
        "variables": {"date": {"type": "string"}, **PRODUCT, **TICKET},
    },
    # rule 150 reworded: about 2,200 tokens still shared
    4: {
        "messages": [
            _system([*POLICY[:150], "Rule 150: be terse.", *POLICY[151:]], "Product: {{ product }}"),
            ticket_turn,
        ],
        "variables": {**PRODUCT, **TICKET},
    },
    # one fully static message more, before the ticket: A's whole prefix is still B's start
    5: {
        "messages": [
            _system(POLICY, "Product: {{ product }}"),
            {"role": "assistant", "content": "Understood."},
            ticket_turn,
        ],
        "variables": {**PRODUCT, **TICKET},
    },
}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "breakwater.yaml"
    path.write_text(yaml.safe_dump(_config(VERSIONS)))
    return path


def _diff(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str]:
    code = main(["prompts", "diff", *args, "--config", str(config)])
    return code, capsys.readouterr().out


def test_a_change_after_the_first_variable_keeps_the_prefix(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _diff(capsys, config_file, "support@1", "support@2")
    assert code == 0
    assert "-Product: {{ product }}" in out and "+Product: {{ product }}. Be brief." in out
    assert out.strip().splitlines()[-1].startswith("prefix kept: B starts with all ")


def test_a_new_static_message_keeps_the_prefix(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _diff(capsys, config_file, "support@1", "support@5")
    assert code == 0 and "prefix kept" in out


def test_a_variable_before_the_static_text_breaks_the_prefix(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1, and where: the shared prefix is ``[system]\\nToday is`` at most."""
    code, out = _diff(capsys, config_file, "support@1", "support@3")
    assert code == 1
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("prefix broken at token ")
    token = int(verdict.split("token ")[1].split(" ")[0])
    char = int(verdict.split("character ")[1].split(":")[0])
    assert token < 10 and char == len("[system]\n")
    assert "+date: string, required" in out


def test_a_change_deep_in_the_prefix_shortens_it(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Past the minimum: exit 0 (the first tokens still hit the cache), 1 with ``--strict``."""
    code, out = _diff(capsys, config_file, "support@1", "support@4")
    assert code == 0
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("prefix shortened at token ")
    assert int(verdict.split("token ")[1].split(" ")[0]) > 1024
    strict, _ = _diff(capsys, config_file, "support@1", "support@4", "--strict")
    assert strict == 1


def test_the_minimum_decides_between_shortened_and_broken(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The change at about token 2,550 of A's 3,400: under a 3,000-token minimum it breaks the prefix;
    under a 4,096-token minimum (some Claude models) A was never cached, so there is nothing to break."""
    code, out = _diff(capsys, config_file, "support@1", "support@4", "--min-tokens", "4096")
    assert code == 0 and "prefix uncached" in out
    code, out = _diff(capsys, config_file, "support@1", "support@4", "--min-tokens", "3000")
    assert code == 1 and "prefix broken" in out


def test_a_short_prompt_has_nothing_cached(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _diff(capsys, config_file, "short@1", "short@2")
    assert code == 0 and "prefix uncached" in out and "-Be brief." in out


def test_a_is_read_from_the_base_config(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CI step comparing main's config with a change: the same version number, edited in place."""
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(_config({1: VERSIONS[3]})))
    code, out = _diff(capsys, changed, "support@1", "support@1", "--base-config", str(config_file))
    assert code == 1 and "prefix broken" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["support@1", "support@9"], "has no version 9"),
        (["nope@1", "support@1"], "no prompt 'nope'"),
        (["support", "support@1"], "expected NAME@VERSION"),
    ],
)
def test_bad_references_exit_2(
    config_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(["prompts", "diff", *args, "--config", str(config_file)]) == 2
    assert says in capsys.readouterr().err


def test_list_and_show(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "list", "--config", str(config_file)]) == 0
    assert "support  versions 1, 2, 3, 4, 5  current 5" in capsys.readouterr().out
    assert main(["prompts", "show", "support@3", "--config", str(config_file)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[:3] == ["support@3", "[system]", "Today is {{ date }}."]
    assert "ticket: string, required" in shown
