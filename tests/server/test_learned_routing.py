"""A learned router in the gateway: an artifact trained with ``breakwater router train`` on a
small synthetic set (the weak model fails contract law, not astronomy) sends law questions to the
strong branch and astronomy to the cheap one; a missing or foreign artifact is a config error
with its key path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from breakwater.cli.main import main
from breakwater.core.config import ConfigError, build_config
from breakwater.runtime.loading import checked
from breakwater.server.app import create_app
from tests.cli.test_router_cli import STRONG, WEAK, _write
from tests.server.running import openai_sdk, serve
from tests.server.test_ledger import _row


def _config(tmp: Path, artifact: str) -> dict[str, Any]:
    return {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {"m": {"type": "mock"}},
        "deployments": {
            "small": {"provider": "m", "model": "mock-small"},
            "big": {"provider": "m", "model": "mock-big"},
        },
        "routes": {
            "small": {"deployments": ["small"]},
            "big": {"deployments": ["big"]},
            "smart": {
                "branches": {"cheap": {"route": "small"}, "strong": {"route": "big"}},
                "rules": [{"if": {"header": {"x-force": "strong"}}, "then": "strong"}],
                # the config's threshold over the artifact's: well between the two topics' scores
                # (law about 0.35-0.45 with its cost weighting, astronomy about 0.99)
                "learned": {"artifact": artifact, "cheap": "cheap", "strong": "strong", "threshold": 0.7},
                "default": "cheap",
            },
        },
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("learned")
    artifact = tmp / "router.json"
    data = _write(tmp / "data", 1, rows=200)
    assert main(["router", "train", "--data", *data, "--strong", STRONG, "--weak", WEAK, "--out", str(artifact)]) == 0
    return artifact


@pytest.fixture(scope="module")
def gateway(trained: Path) -> Iterator[tuple[openai.OpenAI, Path]]:
    tmp = trained.parent
    with serve(create_app(build_config(_config(tmp, str(trained))), environ={})) as url:
        yield openai_sdk(url), tmp / "ledger.db"


@pytest.mark.parametrize(
    ("question", "branch"),
    [
        ("which of the following is true about the plaintiff and the contract statute in court?", "strong"),
        ("which of the following is true about the planet orbit and the comet telescope?", "cheap"),
    ],
)
def test_the_learned_router_sends_each_topic_where_it_is_answered_well(
    gateway: tuple[openai.OpenAI, Path], question: str, branch: str
) -> None:
    client, ledger = gateway
    answer = client.chat.completions.with_raw_response.create(
        model="smart", messages=[{"role": "user", "content": question}]
    )
    assert answer.headers["x-breakwater-route-branch"] == branch
    row = _row(ledger, answer.headers["x-request-id"])
    assert row["branch"] == branch and row["decision"].startswith("learned ")


def test_rules_come_before_the_learned_router(gateway: tuple[openai.OpenAI, Path]) -> None:
    answer = gateway[0].chat.completions.with_raw_response.create(
        model="smart",
        messages=[{"role": "user", "content": "which planet has the most moons?"}],
        extra_headers={"x-force": "strong"},
    )
    assert answer.headers["x-breakwater-route-branch"] == "strong"


def test_a_missing_or_foreign_artifact_is_a_config_error(trained: Path, tmp_path: Path) -> None:
    missing = build_config(_config(tmp_path, str(tmp_path / "nowhere.json")))
    with pytest.raises(ConfigError) as caught:
        checked(missing, {})
    assert "routes.smart.learned.artifact" in str(caught.value)
    foreign = json.loads(trained.read_text())
    foreign["format"] = "breakwater-router/0"
    (tmp_path / "old.json").write_text(json.dumps(foreign))
    with pytest.raises(ConfigError) as caught:
        checked(build_config(_config(tmp_path, str(tmp_path / "old.json"))), {})
    assert "routes.smart.learned.artifact" in str(caught.value) and "version" in str(caught.value)
    other = json.loads(trained.read_text())
    other["embedder"] = "route:0123456789abcdef"
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ConfigError) as caught:
        checked(build_config(_config(tmp_path, str(tmp_path / "other.json"))), {})
    assert "trained on 'route:0123456789abcdef' embeddings" in str(caught.value)
