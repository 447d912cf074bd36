"""docs/evals.md: its example suite reads as written, and every ``breakwater eval`` command in its
shell blocks is one the CLI takes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from breakwater.cli.main import _parser
from breakwater.engine.evals.suite import build_suite

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "evals.md"


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S)
    # a command continued on the next line (a trailing backslash) is one command
    joined = [block.replace("\\\n", " ") for block in blocks]
    lines = [line.split("#")[0].strip() for block in joined for line in block.splitlines()]
    return [line for line in lines if line.startswith("breakwater ")]


@pytest.mark.parametrize("command", _commands())
def test_each_command_parses(command: str) -> None:
    """The documented command line is accepted by the parser."""
    args = _parser().parse_args(shlex.split(command)[1:])
    assert callable(args.run)


def test_the_example_suite_reads() -> None:
    """The page's suite (its file:// prompt taken from the tests' data) becomes cases."""
    block = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)[0]
    suite = build_suite(yaml.safe_load(block), ROOT / "tests" / "data" / "evals", "docs/evals.md")
    assert len(suite.prompts) == 3 and len(suite.providers) == 2
    assert len(suite.cases) == 9  # (1 + 2 expanded) tests x 3 prompts
    assert suite.max_concurrency == 4 and suite.cases[0].judge is not None


def test_the_gated_rollout_example_is_a_valid_config(tmp_path: Path) -> None:
    """The eval-gated rollout example passes check-config once its deployments and suite exist."""
    from breakwater.core.config import build_config
    from breakwater.runtime.eval_gate import check_gates

    section = DOC.read_text().split("## Eval-gated rollout", 1)[1]
    data = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", section, re.S)[0])
    data["providers"] = {"m": {"type": "mock"}}
    data["deployments"] = {name: {"provider": "m", "model": name} for name in ("gpt-4o", "gpt-5-mini")}
    gate = data["routes"]["support"]["variants"]["ramp"]["gate"]
    (tmp_path / "support.yaml").write_text("prompts: [hi]\ntests: [{assert: [{type: contains, value: hi}]}]\n")
    gate["suite"] = str(tmp_path / "support.yaml")
    config = build_config(data)
    assert config.routes["support"].variants is not None and check_gates(config) == []
    assert config.routes["gpt-4o"].drift is not None
