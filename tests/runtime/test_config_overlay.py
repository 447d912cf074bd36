"""Per-environment configs: ``extends`` lays a file over the config it names (``core/config/overlay.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from breakwater.core.config import ConfigError
from breakwater.core.config.overlay import merge
from breakwater.runtime.loading import load_config, read_config_text

BASE = """\
# shared by every environment
providers:
  openai: {type: openai, host: openai, api_key: env:OPENAI_API_KEY}
  m: {type: mock}
deployments:
  mini: {provider: openai, model: gpt-4o-mini}
  mock: {provider: m, model: mock-gpt}
routes:
  chat: {deployments: [mini], limits: {rpm: 600}}
  playground: {deployments: [mock]}
ledger: {url: 'sqlite:///ledger.db', spool_path: ledger.spool}
server: {drain_delay_s: 5}
"""

PROD = """\
extends: base.yaml
access: {store: env:KEYS_DATABASE_URL, hash_secret: env:BREAKWATER_HASH_SECRET}
ledger: {url: env:LEDGER_DATABASE_URL}
routes:
  chat: {limits: {rpm: 6000}}
  playground: null
redis: {url: env:REDIS_URL}
"""


def test_merge_merges_mappings_replaces_the_rest_and_null_removes() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}
    over = {"a": {"c": [3], "g": 2}, "d": {"x": 1}, "e": None}
    assert merge(base, over) == {"a": {"b": 1, "c": [3], "g": 2}, "d": {"x": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}  # unchanged


def test_a_prod_file_extends_the_base(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "prod.yaml").write_text(PROD)
    config = load_config(str(tmp_path / "prod.yaml"), {})
    assert config.routes["chat"].limits is not None and config.routes["chat"].limits.rpm == 6000
    assert config.routes["chat"].deployments[0].deployment == "mini"  # kept from the base
    assert "playground" not in config.routes  # removed by null
    assert config.ledger.url == "env:LEDGER_DATABASE_URL" and config.ledger.spool_path == str(tmp_path / "ledger.spool")
    assert config.server.drain_delay_s == 5 and config.redis is not None
    assert config.access.store == "env:KEYS_DATABASE_URL"
    dev = load_config(str(tmp_path / "base.yaml"), {})  # the base alone is the dev config
    assert "playground" in dev.routes and dev.redis is None


def test_the_merged_text_is_one_config_without_extends(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "prod.yaml").write_text(PROD)
    merged = yaml.safe_load(read_config_text(str(tmp_path / "prod.yaml")))
    assert "extends" not in merged and merged["routes"]["chat"]["limits"] == {"rpm": 6000}
    assert read_config_text(str(tmp_path / "base.yaml")) == BASE  # no extends: the file as written


def test_chains_cycles_and_missing_bases(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "staging.yaml").write_text("extends: base.yaml\nserver: {drain_delay_s: 2}\n")
    (tmp_path / "canary.yaml").write_text("extends: staging.yaml\nserver: {drain_timeout_s: 9}\n")
    config = load_config(str(tmp_path / "canary.yaml"), {})
    assert (config.server.drain_delay_s, config.server.drain_timeout_s) == (2, 9)
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match=r"cycle: a\.yaml -> b\.yaml -> a\.yaml"):
        load_config(str(tmp_path / "a.yaml"), {})
    (tmp_path / "orphan.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "orphan.yaml"), {})
    assert caught.value.problems[0].path == "extends" and "nowhere.yaml" in caught.value.problems[0].message
    (tmp_path / "odd.yaml").write_text("extends: [base.yaml]\n")
    with pytest.raises(ConfigError, match="extends"):
        load_config(str(tmp_path / "odd.yaml"), {})
