"""Every ``breakwater ...`` command in docs/safe-change.md's shell blocks is one the CLI takes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from breakwater.cli.main import _parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "safe-change.md"


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("breakwater ")]


def test_the_page_has_commands() -> None:
    assert len(_commands()) >= 8


@pytest.mark.parametrize("command", _commands())
def test_each_command_parses(command: str) -> None:
    args = _parser().parse_args(shlex.split(command)[1:])
    assert callable(args.run)


def test_the_page_s_config_examples_are_valid() -> None:
    """Every YAML example validates once the deployments it only names are stood in for."""
    import yaml

    from breakwater.core.config import build_config

    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        data = yaml.safe_load(block)
        data["providers"] = {"stand-in": {"type": "mock"}}
        named = {t for route in data["routes"].values() for t in route.get("deployments", [])}
        data["deployments"] = {name: {"provider": "stand-in", "model": name} for name in named}
        build_config(data)
