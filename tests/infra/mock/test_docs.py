"""The examples in docs/mock.md are true: its YAML validates and its curl examples answer as shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import yaml

from breakwater.core.config import build_config
from breakwater.infra.mock.faults import parse_faults, validate_faults
from breakwater.infra.mock.model import ScriptedAnswer
from breakwater.infra.mock.service import MockService
from tests.infra.mock.harness import call

DOC = (Path(__file__).parents[3] / "docs" / "mock.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


def test_yaml_examples_validate() -> None:
    """The --faults file, the provider config and the scripted answers in the doc are valid."""
    chaos, config, scripted = (yaml.safe_load(b) for b in blocks("yaml"))
    assert validate_faults(chaos) == []
    built = build_config(config)
    for provider in built.providers.values():
        assert validate_faults(provider.faults) == []
    answers = [ScriptedAnswer.parse(a) for a in build_config(scripted).providers["mock"].answers]
    assert [a.model for a in answers] == ["mock-small", "mock-small", "mock-large"]
    assert answers[1].matches is not None and answers[1].matches.search("what is 2+2?") is not None


def test_documented_problem_message() -> None:
    """The check-config message quoted in the doc is the one validate_faults produces."""
    assert validate_faults([{"fault": "reset", "rate": 1.5}]) == [
        "faults[0].rate: expected a number from 0 to 1, got 1.5"
    ]


def test_curl_headers_parse() -> None:
    """Every x-mock-fault value in the doc's curl examples is valid grammar."""
    specs = re.findall(r"x-mock-fault: ([^']+)'", "\n".join(blocks("bash")))
    assert len(specs) == 2
    for spec in specs:
        parse_faults(spec)


async def test_curl_429_answers_as_shown(service: MockService) -> None:
    """The documented 429 example's status, headers and body are what the mock sends."""
    example = blocks("bash")[1]
    shown: Any = orjson.loads(re.search(r"# (\{.*\})", example).group(1))  # type: ignore[union-attr]
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    reply, out = await call(service, "/v1/chat/completions", body, headers={"x-mock-fault": "status=429;retry_after=2"})
    assert reply.status == 429
    assert reply.headers["retry-after"] == "2" and reply.headers["retry-after-ms"] == "2000"
    assert orjson.loads(out) == shown
