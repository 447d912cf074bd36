"""Relative paths in a config file are anchored at the file's directory; everything else is left as written."""

from __future__ import annotations

from pathlib import PurePosixPath

from breakwater.core.config import build_config
from breakwater.core.config.paths import anchor_paths
from breakwater.core.defaults import default_config

DIRECTORY = PurePosixPath("/etc/breakwater")
BASE = {
    "providers": {"m": {"type": "mock"}},
    "deployments": {"d": {"provider": "m", "model": "x"}},
    "routes": {"r": {"deployments": ["d"]}},
}


def test_relative_defaults_are_anchored() -> None:
    """The default SQLite ledger, spool and key store land in the config file's directory."""
    config = anchor_paths(build_config(BASE), DIRECTORY)
    assert config.ledger.url == "sqlite:////etc/breakwater/breakwater-ledger.db"
    assert config.ledger.spool_path == "/etc/breakwater/breakwater-ledger.spool"
    assert config.access.store == "sqlite:////etc/breakwater/breakwater-keys.db"


def test_relative_paths_and_file_references_are_anchored() -> None:
    """Relative SQLite paths (in subdirectories too) and every relative file: reference are joined to the directory."""
    config = anchor_paths(
        build_config(
            {
                **BASE,
                "providers": {"p": {"type": "openai", "host": "openai", "api_key": "file:secrets/openai"}},
                "routes": {"openai/*": {"provider": "p"}},
                "deployments": {},
                "server": {"admin_key": "file:admin.key"},
                "access": {"store": "sqlite:///data/keys.db", "hash_secret": "file:../hash"},
                "ledger": {"url": "file:ledger-url", "spool_path": "spool/ledger.spool"},
                "redis": {"url": "file:redis-url"},
                "tracing": {"headers": {"x-token": "file:otel-token", "x-team": "platform"}},
                "alerts": {"webhook": "file:hook-url"},
            }
        ),
        DIRECTORY,
    )
    assert config.providers["p"].api_key == "file:/etc/breakwater/secrets/openai"
    assert config.server.admin_key == "file:/etc/breakwater/admin.key"
    assert config.access.store == "sqlite:////etc/breakwater/data/keys.db"
    assert config.access.hash_secret == "file:/etc/breakwater/../hash"
    assert config.ledger.url == "file:/etc/breakwater/ledger-url"
    assert config.ledger.spool_path == "/etc/breakwater/spool/ledger.spool"
    assert config.redis is not None and config.redis.url == "file:/etc/breakwater/redis-url"
    assert config.tracing.headers == {"x-token": "file:/etc/breakwater/otel-token", "x-team": "platform"}
    assert config.alerts.webhook == "file:/etc/breakwater/hook-url"


def test_absolute_paths_and_other_values_are_left_alone() -> None:
    """Absolute paths, env: references, PostgreSQL and Redis URLs, URLs and in-memory SQLite are unchanged."""
    data = {
        **BASE,
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"store": "postgresql://bw@db/keys", "hash_secret": "file:/run/secrets/hash"},
        "ledger": {"url": "sqlite:////var/lib/breakwater/ledger.db", "spool_path": "/var/spool/bw.spool"},
        "redis": {"url": "redis://cache:6379/0"},
        "alerts": {"webhook": "https://hooks.example/x"},
    }
    original = build_config(data)
    assert anchor_paths(original, DIRECTORY) == original
    access = {"store": "env:BW_STORE", "hash_secret": "env:BW_HASH"}
    memory = build_config({**BASE, "ledger": {"url": "sqlite:///:memory:"}, "access": access})
    anchored = anchor_paths(memory, DIRECTORY)
    assert (anchored.ledger.url, anchored.access.store) == ("sqlite:///:memory:", "env:BW_STORE")


def test_the_embedded_default_keeps_relative_paths() -> None:
    """The embedded default config (no file) is not anchored: its stores follow the current directory."""
    config = default_config({})
    assert config.ledger.url == "sqlite:///breakwater-ledger.db"
    assert config.access.store == "sqlite:///breakwater-keys.db"


def test_responses_store_is_anchored_like_the_key_store() -> None:
    """A relative SQLite responses store lands beside the config file; memory and unset stay as written."""
    anchored = anchor_paths(build_config({**BASE, "responses": {"store": "sqlite:///data/r.db"}}), DIRECTORY)
    assert anchored.responses.store == "sqlite:////etc/breakwater/data/r.db"
    assert anchor_paths(build_config({**BASE, "responses": {"store": "memory"}}), DIRECTORY).responses.store == "memory"
    assert anchor_paths(build_config(BASE), DIRECTORY).responses.store is None


def test_batches_store_is_anchored_like_the_key_store() -> None:
    """A relative SQLite batch store lands beside the config file; memory and unset stay as written."""
    anchored = anchor_paths(build_config({**BASE, "batches": {"store": "sqlite:///data/b.db"}}), DIRECTORY)
    assert anchored.batches.store == "sqlite:////etc/breakwater/data/b.db"
    assert anchor_paths(build_config({**BASE, "batches": {"store": "memory"}}), DIRECTORY).batches.store == "memory"
    assert anchor_paths(build_config(BASE), DIRECTORY).batches.store is None
